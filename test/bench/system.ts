/**
 * The machine side of the benchmark: Debian packages it needs, the page cache, an XFS loop
 * device, mounts below the work directory, and the clean-up that runs however the run ends.
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import { must, run, shell } from "./proc.ts";

// ---------------------------------------------------------------- clean-up

const cleanups: { what: string; fn: () => void | Promise<void> }[] = [];
let cleaning: Promise<void> | undefined;

/** Registers `fn` to run at the end (last registered runs first), whatever happens. */
export function atCleanup(what: string, fn: () => void | Promise<void>): void {
  cleanups.push({ what, fn });
}

/** Runs every registered clean-up once, newest first; a failing step is reported and skipped. */
export function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    while (cleanups.length) {
      const c = cleanups.pop()!;
      try {
        await c.fn();
      } catch (err) {
        console.error(`bench: clean-up "${c.what}" failed: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
  })();
  return cleaning;
}

/** On SIGINT/SIGTERM: clean up, then exit with the conventional code. */
export function cleanupOnSignals(): void {
  for (const [sig, code] of [
    ["SIGINT", 130],
    ["SIGTERM", 143],
    ["SIGHUP", 129],
  ] as const) {
    process.on(sig, () => {
      console.error(`\nbench: ${sig}, cleaning up`);
      void cleanup().finally(() => process.exit(code));
    });
  }
}

// ---------------------------------------------------------------- packages

let aptUpdated = false;

/** Installs the Debian packages whose command is missing; returns the packages it installed. */
export function ensurePackages(wanted: readonly { pkg: string; bin: string }[]): string[] {
  const missing = wanted.filter((w) => !Bun.which(w.bin) && !Bun.which(w.bin, { PATH: "/usr/sbin:/usr/bin:/sbin:/bin" }));
  if (missing.length === 0) return [];
  const pkgs = missing.map((m) => m.pkg);
  console.log(`bench: installing ${pkgs.join(", ")} with apt-get`);
  const env = { DEBIAN_FRONTEND: "noninteractive" };
  if (!aptUpdated) {
    const u = run(["apt-get", "update", "-qq"], { env });
    if (u.code !== 0) console.error(`bench: apt-get update failed (continuing): ${u.stderr.trim().split("\n").pop()}`);
    aptUpdated = true;
  }
  // policy-rc.d (if the host has one) keeps the packages' own services from starting; we start our own daemons.
  must(["apt-get", "install", "-y", "-qq", "--no-install-recommends", ...pkgs], { env });
  return pkgs;
}

/**
 * A copy of executable `path` in `dir`, under its own name, for every tool the bench times to run
 * from. How a binary's file sits in the page cache changes its start-up: on this VM a copy of
 * /usr/bin/ctr made a moment before started 1.1-1.3 ms faster than /usr/bin/ctr itself, and a
 * stor built 12 minutes and one large copy earlier 1.1 ms slower than a fresh copy of it. A just
 * built stor against a long-installed ctr would be timed with that head start.
 */
export function freshCopy(dir: string, path: string): string {
  mkdirSync(dir, { recursive: true });
  const copy = join(dir, basename(path));
  // A new file whatever was there (so its mode is set), written through the page cache as a
  // build writes one: a reflinked copy would share the original's extents and read them cold.
  rmSync(copy, { force: true });
  writeFileSync(copy, readFileSync(path), { mode: 0o755 });
  return copy;
}

/** Finds `bin` on PATH or in the sbin directories root's PATH may lack. */
export function findBin(bin: string): string | undefined {
  return Bun.which(bin) ?? Bun.which(bin, { PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" }) ?? undefined;
}

// ---------------------------------------------------------------- page cache

/** Writes back dirty data and drops the page, dentry and inode caches. */
export function dropCaches(): void {
  shell("sync");
  writeFileSync("/proc/sys/vm/drop_caches", "3\n");
}

/**
 * Before a timed run: no dirty pages, and the `inputs` (files) out of the page cache, unless
 * `warm` (then read into it). The `programs` are read back in either way: what is timed is reading
 * the input, not loading the program. It matters for stor: a compiled Bun program started with
 * nothing of it in the cache reads 94 MiB of itself here (an 8 MiB read-ahead a page fault) and
 * starts 70 ms later; cp, tar and the like are a few hundred KiB.
 */
export function settle(warm: boolean, inputs: readonly string[], programs: readonly string[]): void {
  if (!warm) dropCaches();
  const files = warm ? [...inputs, ...programs] : programs;
  shell(`cat ${files.map((f) => `'${f}'`).join(" ")} > /dev/null; sync`);
}

// ---------------------------------------------------------------- filesystems and mounts

/** The type of the filesystem holding `path` (ext4, xfs, tmpfs, …). */
export function fsType(path: string): string {
  return must(["findmnt", "-n", "-o", "FSTYPE", "-T", path]).stdout.trim();
}

const unescapeMountinfo = (s: string) => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));

/** Mount points at or below `prefix`, deepest first. */
export function mountsBelow(prefix: string): string[] {
  return readFileSync("/proc/self/mountinfo", "utf8")
    .split("\n")
    .map((l) => l.split(" ")[4])
    .filter((p): p is string => p !== undefined)
    .map(unescapeMountinfo)
    .filter((p) => p === prefix || p.startsWith(prefix.endsWith("/") ? prefix : `${prefix}/`))
    .sort((a, b) => b.length - a.length);
}

/** Unmounts everything at or below `prefix`, lazily when a plain unmount fails. */
export function unmountBelow(prefix: string): void {
  for (let pass = 0; pass < 20; pass++) {
    const points = mountsBelow(prefix);
    if (points.length === 0) return;
    for (const p of points) {
      if (run(["umount", p]).code !== 0) run(["umount", "-l", p]);
    }
  }
}

/** Runs `mount -t TYPE SOURCE TARGET -o OPTIONS` lines, as `ctr snapshots mounts` prints them. */
export function runMountLines(lines: string): void {
  for (const line of lines.split("\n").filter((l) => l.trim())) {
    const m = /^mount -t (\S+) (\S+) (\S+) -o (\S+)$/.exec(line.trim());
    if (!m) throw new Error(`unexpected mount line: ${line}`);
    must(["mount", "-t", m[1]!, m[2]!, m[3]!, "-o", m[4]!]);
  }
}

export interface Loop {
  device: string;
  mountpoint: string;
}

/**
 * Makes a sparse image of `sizeBytes`, formats it with `mkfs` (argv without the device), attaches
 * it to a loop device and mounts it on `mountpoint`; clean-up unmounts and detaches it.
 */
export function makeLoopFs(image: string, sizeBytes: number, mkfs: readonly string[], mountpoint: string, mountOpts?: string): Loop {
  shell(`truncate -s ${sizeBytes} '${image}'`);
  const device = must(["losetup", "--find", "--show", image]).stdout.trim();
  atCleanup(`detach ${device}`, () => {
    if (run(["losetup", "-d", device]).code !== 0) console.error(`bench: could not detach ${device}`);
  });
  must([...mkfs, device]);
  mkdirSync(mountpoint, { recursive: true });
  must(["mount", ...(mountOpts ? ["-o", mountOpts] : []), device, mountpoint]);
  atCleanup(`unmount ${mountpoint}`, () => unmountBelow(mountpoint));
  return { device, mountpoint };
}

/** Bytes in use on the filesystem of `path` after a sync (for seeing whether a copy shared extents). */
export function usedBytes(path: string): number {
  shell("sync");
  const out = shell(`df -B1 --output=used '${path}' | tail -1`);
  return Number(out.trim());
}

/**
 * What a first touch of a page costs here, in µs: a command's start-up takes hundreds of page
 * faults (a Bun hello about 680, ctr about 1,070), and on a VM whose host takes freed pages back
 * (a balloon's free page reporting) each costs ten times what it does on bare metal.
 */
export function pageFaultMicros(): number {
  const pages = 10_000;
  const before = process.resourceUsage().minorPageFault;
  const memory = new Uint8Array(pages * 4096);
  const start = performance.now();
  for (let i = 0; i < pages; i++) memory[i * 4096] = 1;
  const took = performance.now() - start;
  return (took * 1000) / Math.max(1, process.resourceUsage().minorPageFault - before);
}

/** One line describing the load on the machine, since other work shares the CPUs. */
export function loadLine(): string {
  const [l1, l5] = readFileSync("/proc/loadavg", "utf8").split(" ");
  return `load average ${l1} (1 min), ${l5} (5 min)`;
}
