/**
 * A tiny initramfs for test VMs, made of what the host has: busybox-static, modules of an
 * installed kernel (with what modules.dep says they need), host executables with the shared
 * libraries ldd names, and the test's own shell script. Written as a newc cpio archive directly
 * (no cpio tool, no staging copy) and cached under /var/tmp by a hash of all of it, so a second
 * run with the same inputs reuses the archive and any change rebuilds it.
 */
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readdirSync, realpathSync, renameSync, rmSync, statSync, utimesSync, writeSync } from "node:fs";
import { dirname, join } from "node:path";
import { createHash } from "node:crypto";
import { spawnSync } from "bun";

/** Where archives are kept between runs. */
const CACHE_DIR = "/var/tmp/stor-vm";

/** The line prefix of everything the guest reports; see {@link parseConsole}. */
export const MARK = "@@vm";

export interface InitramfsSpec {
  /** Kernel release whose modules go in, from /lib/modules/<kernel>. */
  kernel: string;
  /** Modules by name (`xfs`, `virtio_blk`), loaded in this order, each after its dependencies. */
  modules: string[];
  /** Host executables, copied to the same path (or `[host, guest]`) with their shared libraries. */
  binaries: (string | [string, string])[];
  /** The test, a busybox sh script that /init runs as /test.sh; it may use `say` and `check` (see {@link INIT}). */
  script: string;
}

/**
 * /init: mounts the basics, loads the modules listed in /etc/vm-modules, runs /test.sh, then
 * reports `@@vm done <status>` and powers off whatever happened (qemu runs with -no-reboot, so
 * a panic ends the VM too). The test script gets two helpers:
 * - `say WORDS`: prints `@@vm WORDS` on the console;
 * - `check NAME DETAIL CONDITION`: evaluates the shell CONDITION and prints
 *   `@@vm check NAME ok|FAIL DETAIL` (DETAIL on one line: the evidence either way).
 */
const INIT = `#!/bin/busybox sh
/bin/busybox mkdir -p /dev /proc /sys /tmp /sbin /usr/bin /usr/sbin
/bin/busybox --install -s
mount -t devtmpfs dev /dev
mount -t proc proc /proc
mount -t sysfs sys /sys
say() { echo "${MARK} $*"; }
check() {
  if eval "$3"; then r=ok; else r=FAIL; fi
  say "check $1 $r $(echo "$2" | tr '\\n' ' ')"
}
for m in $(cat /etc/vm-modules); do insmod "$m" || say "error insmod $m"; done
(. /test.sh)
say "done $?"
sync
poweroff -f
`;

interface Entry {
  path: string; // without the leading slash
  mode: number; // with the file type bits
  data?: Buffer | string; // content, or a host file to read it from
  rdev?: [number, number];
}

/** Builds (or finds in the cache) the initramfs for `spec`; returns the archive's path. */
export function buildInitramfs(spec: InitramfsSpec): string {
  const entries = collect(spec);
  const hash = createHash("sha256");
  for (const e of entries) {
    hash.update(`${e.path}\0${e.mode}\0${e.rdev ?? ""}\0`);
    if (e.data !== undefined) hash.update(typeof e.data === "string" ? readFileSync(e.data) : e.data);
  }
  const out = join(CACHE_DIR, `initramfs-${hash.digest("hex").slice(0, 16)}.cpio`);
  if (existsSync(out)) {
    utimesSync(out, new Date(), new Date()); // in use: see below
    return out;
  }

  mkdirSync(CACHE_DIR, { recursive: true });
  // Each new stor binary makes a new archive of ~120 MB: those unused for 10 minutes go (not
  // younger ones, which a concurrent run may be about to boot).
  for (const old of readdirSync(CACHE_DIR)) {
    const path = join(CACHE_DIR, old);
    if (old.startsWith("initramfs-") && Date.now() - statSync(path).mtimeMs > 600_000) rmSync(path, { force: true });
  }
  const tmp = `${out}.${process.pid}.tmp`;
  writeCpio(tmp, entries);
  renameSync(tmp, out);
  return out;
}

/** Every directory, file and node of the archive, parents first. */
function collect(spec: InitramfsSpec): Entry[] {
  const files = new Map<string, Entry>(); // by guest path
  const add = (guest: string, mode: number, data: Buffer | string) => {
    const path = guest.replace(/^\/+/, "");
    files.set(path, { path, mode: 0o100000 | mode, data });
  };

  add("/init", 0o755, Buffer.from(INIT));
  add("/test.sh", 0o644, Buffer.from(spec.script));
  add("/bin/busybox", 0o755, staticBusybox());
  for (const b of spec.binaries) {
    const [host, guest] = typeof b === "string" ? [b, b] : b;
    add(guest, 0o755, host);
    for (const lib of sharedLibraries(host)) add(lib, 0o755, realpathSync(lib));
  }
  const modules = moduleFiles(spec.kernel, spec.modules);
  for (const m of modules) add(m, 0o644, m);
  add("/etc/vm-modules", 0o644, Buffer.from(modules.join("\n") + "\n"));

  const dirs = new Set<string>(["dev"]);
  for (const p of files.keys()) for (let d = dirname(p); d !== "."; d = dirname(d)) dirs.add(d);
  return [
    ...[...dirs].sort().map((d) => ({ path: d, mode: 0o040755 })),
    // The kernel opens /dev/console for /init before anything is mounted.
    { path: "dev/console", mode: 0o020600, rdev: [5, 1] as [number, number] },
    ...[...files.values()].sort((a, b) => a.path.localeCompare(b.path)),
  ];
}

function staticBusybox(): string {
  const p = "/bin/busybox";
  if (!existsSync(p) || sharedLibraries(p).length > 0) throw new Error(`${p}: missing or not static (install busybox-static)`);
  return p;
}

/** The shared libraries (and the loader) ldd says `exe` needs; none for a static executable. */
function sharedLibraries(exe: string): string[] {
  const r = spawnSync({ cmd: ["ldd", exe], stdout: "pipe", stderr: "pipe" });
  const text = r.stdout.toString();
  if (r.exitCode !== 0) {
    if (/not a dynamic executable/.test(text + r.stderr.toString())) return [];
    throw new Error(`ldd ${exe}: ${r.stderr.toString().trim()}`);
  }
  return [...text.matchAll(/(?:=>\s*|^\s*)(\/\S+)\s+\(0x/gm)].map((m) => m[1]!);
}

/** Host paths of `names` and their dependencies, each after what it depends on. */
function moduleFiles(kernel: string, names: string[]): string[] {
  const base = `/lib/modules/${kernel}`;
  const deps = new Map<string, string[]>(); // relative path -> its dependencies
  for (const line of readFileSync(join(base, "modules.dep"), "utf8").split("\n")) {
    const [mod, rest] = line.split(":");
    if (mod && rest !== undefined) deps.set(mod, rest.split(" ").filter(Boolean));
  }
  const byName = new Map([...deps.keys()].map((p) => [moduleName(p), p]));
  const order: string[] = [];
  const visit = (rel: string) => {
    if (order.includes(rel)) return;
    for (const d of deps.get(rel) ?? []) visit(d);
    order.push(rel);
  };
  for (const n of names) {
    const rel = byName.get(moduleName(n));
    if (!rel) throw new Error(`module ${n}: not in ${base}/modules.dep (built in, or not this kernel's?)`);
    visit(rel);
  }
  for (const rel of order) if (!rel.endsWith(".ko")) throw new Error(`${rel}: compressed modules are not supported`);
  return order.map((rel) => join(base, rel));
}

function moduleName(path: string): string {
  return path.split("/").pop()!.replace(/\.ko(\..*)?$/, "").replaceAll("-", "_");
}

/** Writes a newc ("070701") cpio archive, the format the kernel unpacks into its rootfs. */
function writeCpio(path: string, entries: Entry[]): void {
  const fd = openSync(path, "w", 0o644);
  let offset = 0;
  const put = (b: Buffer) => {
    writeSync(fd, b);
    offset += b.length;
  };
  const pad = () => put(Buffer.alloc((4 - (offset % 4)) % 4));
  const record = (name: string, mode: number, data: Buffer, rdev: [number, number] = [0, 0], ino = 0) => {
    const fields = [ino, mode, 0, 0, 1, 0, data.length, 0, 0, rdev[0], rdev[1], name.length + 1, 0];
    put(Buffer.from(`070701${fields.map((f) => f.toString(16).padStart(8, "0")).join("")}${name}\0`));
    pad();
    put(data);
    pad();
  };
  try {
    entries.forEach((e, i) => {
      const data = e.data === undefined ? Buffer.alloc(0) : typeof e.data === "string" ? readFileSync(e.data) : e.data;
      record(e.path, e.mode, data, e.rdev, i + 1);
    });
    record("TRAILER!!!", 0, Buffer.alloc(0));
  } finally {
    closeSync(fd);
  }
}
