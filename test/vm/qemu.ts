/**
 * Boots a test VM with qemu: an installed Debian kernel, an initramfs from ./initramfs.ts,
 * blank virtio disks, no network, the serial console as the only output. The run is bounded
 * (qemu is killed at the deadline) and leaves nothing behind.
 */
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync, statSync, truncateSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { MARK } from "./initramfs.ts";

export const QEMU = "qemu-system-x86_64";

// Without arch-capabilities: nested under another hypervisor, KVM may refuse that MSR
// ("failed to set MSR 0x10a") and qemu aborts. It only describes CPU bug mitigations.
const KVM_CPU = "host,-arch-capabilities";

/**
 * The newest kernel release with /boot/vmlinuz-R, /lib/modules/R and every `CONFIG_…` option in
 * `config` set (y or m) in /boot/config-R; STOR_VM_KERNEL names one instead. Undefined if none.
 */
export function findKernel(config: string[]): string | undefined {
  const wanted = process.env.STOR_VM_KERNEL;
  const releases = wanted ? [wanted] : existsSync("/lib/modules") ? readdirSync("/lib/modules") : [];
  const fits = (r: string) => {
    if (!existsSync(`/boot/vmlinuz-${r}`) || !existsSync(`/lib/modules/${r}/modules.dep`) || !existsSync(`/boot/config-${r}`)) return false;
    const text = readFileSync(`/boot/config-${r}`, "utf8");
    return config.every((c) => new RegExp(`^${c}=[ym]$`, "m").test(text));
  };
  return releases.filter(fits).sort((a, b) => b.localeCompare(a, undefined, { numeric: true }))[0];
}

/**
 * True when KVM really runs this kernel: /dev/kvm opens and a boot under it prints the kernel's
 * banner within 10 s. (Nested under some hypervisors /dev/kvm is there but a guest hangs in
 * its first instructions; then TCG, slower but sure, is the way.)
 */
async function kvmWorks(kernel: string): Promise<boolean> {
  try {
    closeSync(openSync("/dev/kvm", "r+"));
  } catch {
    return false;
  }
  const proc = Bun.spawn(
    [QEMU, "-accel", "kvm", "-cpu", KVM_CPU, "-m", "256", "-nodefaults", "-display", "none", "-serial", "stdio", "-no-reboot", "-kernel", `/boot/vmlinuz-${kernel}`, "-append", "console=ttyS0 panic=-1"],
    { stdin: "ignore", stdout: "pipe", stderr: "ignore" },
  );
  const timer = setTimeout(() => proc.kill("SIGKILL"), 10_000);
  try {
    let seen = "";
    for await (const chunk of proc.stdout) {
      seen += new TextDecoder().decode(chunk);
      if (seen.includes("Linux version")) return true;
    }
    return false;
  } finally {
    clearTimeout(timer);
    proc.kill("SIGKILL");
    await proc.exited;
  }
}

export interface VmOptions {
  kernel: string;
  initramfs: string;
  /** Sizes in MiB of blank (sparse) disks: /dev/vda, /dev/vdb, … in the guest. */
  disksMiB: number[];
  /** Killed after this long. */
  timeoutMs: number;
}

export interface VmRun {
  console: string;
  /** qemu's own messages (e.g. why it would not start). */
  stderr: string;
  exitCode: number | null;
  timedOut: boolean;
  accel: "kvm" | "tcg";
  ms: number;
}

/**
 * Boots the VM (KVM if {@link kvmWorks}, else TCG) and returns its console once it powers off
 * or is killed at the deadline; the disks are removed either way.
 */
export async function bootVm(o: VmOptions): Promise<VmRun> {
  const accel = (await kvmWorks(o.kernel)) ? "kvm" : "tcg";
  const dir = mkdtempSync(join(tmpdir(), "stor-vm-"));
  // The initramfs is unpacked into RAM next to its own copy: three times its size, and room to run.
  const memMiB = 256 + Math.ceil((3 * statSync(o.initramfs).size) / 2 ** 20);
  const cmd = [
    QEMU,
    ...["-accel", accel, "-cpu", accel === "kvm" ? KVM_CPU : "max", "-smp", "2", "-m", String(memMiB)],
    ...["-nodefaults", "-display", "none", "-serial", "stdio", "-nic", "none", "-no-reboot"],
    ...["-kernel", `/boot/vmlinuz-${o.kernel}`, "-initrd", o.initramfs],
    ...["-append", "console=ttyS0 panic=-1 quiet loglevel=3"],
  ];
  o.disksMiB.forEach((size, i) => {
    const image = join(dir, `disk${i}.img`);
    closeSync(openSync(image, "w", 0o600));
    truncateSync(image, size * 2 ** 20);
    cmd.push("-drive", `file=${image},format=raw,if=virtio,cache=unsafe`);
  });

  const start = Date.now();
  const proc = Bun.spawn(cmd, { stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    proc.kill("SIGKILL");
  }, o.timeoutMs);
  try {
    const [out, err, exitCode] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
    return { console: out.replaceAll("\r", ""), stderr: err, exitCode, timedOut, accel, ms: Date.now() - start };
  } finally {
    clearTimeout(timer);
    proc.kill("SIGKILL"); // a no-op once it has exited
    rmSync(dir, { recursive: true, force: true });
  }
}

export interface GuestReport {
  /** Every `check NAME ok|FAIL DETAIL` line, by name. */
  checks: Map<string, { ok: boolean; detail: string }>;
  /** The status after `done`, if /init got that far. */
  done?: number;
  /** Other reported lines (`error …`). */
  other: string[];
}

/** Reads the `@@vm …` lines of a console (see INIT in ./initramfs.ts). */
export function parseConsole(text: string): GuestReport {
  const report: GuestReport = { checks: new Map(), other: [] };
  for (const line of text.split("\n")) {
    const at = line.indexOf(`${MARK} `);
    if (at < 0) continue;
    const words = line.slice(at + MARK.length + 1);
    const check = /^check (\S+) (ok|FAIL) ?(.*)$/.exec(words);
    const done = /^done (\d+)$/.exec(words);
    if (check) report.checks.set(check[1]!, { ok: check[2] === "ok", detail: check[3]!.trim() });
    else if (done) report.done = Number(done[1]);
    else report.other.push(words);
  }
  return report;
}
