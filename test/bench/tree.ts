/**
 * A deterministic, root-filesystem-like tree for the copy benchmark: a few thousand directories,
 * many small files of varied sizes and modes, a few large files, symlinks (relative, absolute,
 * dangling), hardlinks across directories, fifos, files owned by another user, a setuid binary.
 */
import { randomBytes } from "node:crypto";
import { chmodSync, chownSync, closeSync, linkSync, mkdirSync, openSync, symlinkSync, writeSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { must } from "./proc.ts";

export interface TreeSpec {
  /** Regular files other than the large ones (each hardlink and symlink is extra). */
  smallFiles: number;
  /** The tree grows large files (16–48 MiB) until the file data reaches this many bytes. */
  minBytes: number;
  seed?: number;
}

export interface TreeStats {
  dirs: number;
  files: number;
  largeFiles: number;
  symlinks: number;
  hardlinks: number;
  special: number;
  bytes: number;
  /** Every name in the tree (directories, files, links), the root excluded. */
  entries: number;
}

/** mulberry32: a small seeded PRNG, so every run builds the same tree. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const TOP = ["usr", "etc", "var", "opt", "lib", "srv", "home"];
const EXT = ["so", "py", "conf", "txt", "h", "json", "js", "mo", "gz", "png", "html", ""];

/** Builds the tree inside the existing directory `root`. */
export function generateTree(root: string, spec: TreeSpec): TreeStats {
  const rnd = prng(spec.seed ?? 20240601);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
  const data = randomBytes(8 << 20); // incompressible content, reused at varying offsets
  const stats: TreeStats = { dirs: 0, files: 0, largeFiles: 0, symlinks: 0, hardlinks: 0, special: 0, bytes: 0, entries: 0 };

  // Directories: a wide, shallow-biased hierarchy (~1 directory per 15 files).
  const dirs: string[] = [];
  for (const t of TOP) {
    mkdirSync(join(root, t));
    dirs.push(t);
  }
  const nDirs = Math.max(20, Math.round(spec.smallFiles / 15));
  for (let i = 0; i < nDirs; i++) {
    const parent = dirs[Math.floor(Math.pow(rnd(), 1.5) * dirs.length)]!;
    const d = join(parent, `d${i}`);
    mkdirSync(join(root, d));
    dirs.push(d);
  }
  stats.dirs = dirs.length;

  const write = (rel: string, size: number, mode: number) => {
    const fd = openSync(join(root, rel), "wx", mode);
    try {
      let left = size;
      while (left > 0) {
        const n = Math.min(left, 1 << 20);
        const off = Math.floor(rnd() * (data.length - n));
        writeSync(fd, data, off, n);
        left -= n;
      }
    } finally {
      closeSync(fd);
    }
    chmodSync(join(root, rel), mode); // not left to the umask
    stats.bytes += size;
  };

  // Small files: half under 1 KiB, most under 16 KiB, a tail up to 1 MiB.
  const files: string[] = [];
  for (let i = 0; i < spec.smallFiles; i++) {
    const r = rnd();
    const size =
      r < 0.5 ? Math.floor(rnd() * 1024) : r < 0.85 ? 1024 + Math.floor(rnd() * 15 * 1024) : r < 0.98 ? 16384 + Math.floor(rnd() * 48 * 1024) : 65536 + Math.floor(rnd() * 960 * 1024);
    const ext = pick(EXT);
    const rel = join(pick(dirs), `f${i}${ext ? `.${ext}` : ""}`);
    const m = rnd();
    write(rel, size, m < 0.1 ? 0o755 : m < 0.15 ? 0o600 : 0o644);
    if (rnd() < 0.05) chownSync(join(root, rel), 1000, 1000);
    files.push(rel);
  }
  stats.files = files.length;

  // Large files (libraries, databases, archives) until the data reaches minBytes.
  for (let i = 0; stats.bytes < spec.minBytes; i++) {
    const size = Math.min((16 + Math.floor(rnd() * 32)) << 20, Math.max(1 << 20, spec.minBytes - stats.bytes));
    write(join(pick(dirs), `large${i}.bin`), size, 0o644);
    stats.largeFiles++;
  }
  stats.files += stats.largeFiles;

  // Symlinks: relative to other files mostly, some absolute, some dangling, some to directories.
  const nSym = Math.round(spec.smallFiles / 10);
  for (let i = 0; i < nSym; i++) {
    const rel = join(pick(dirs), `l${i}`);
    const r = rnd();
    const target = r < 0.7 ? relative(dirname(rel), pick(files)) : r < 0.85 ? `/${pick(files)}` : r < 0.95 ? relative(dirname(rel), pick(dirs)) || "." : `missing-${i}`;
    symlinkSync(target, join(root, rel));
  }
  stats.symlinks = nSym;

  // Hardlinks: a second and sometimes third name for small files, in other directories.
  const nHard = Math.round(spec.smallFiles / 40);
  for (let i = 0; i < nHard; i++) {
    linkSync(join(root, pick(files)), join(root, pick(dirs), `h${i}`));
  }
  stats.hardlinks = nHard;

  // Special files and modes a root filesystem has.
  mkdirSync(join(root, "run"));
  mkdirSync(join(root, "tmp"), 0o777);
  chmodSync(join(root, "tmp"), 0o1777);
  must(["mkfifo", join(root, "run", "initctl"), join(root, "run", "fifo2")]);
  stats.special = 2;
  write("usr/sudo", 200_000, 0o755);
  chmodSync(join(root, "usr/sudo"), 0o4755);
  stats.files++;
  stats.dirs += 2;

  stats.entries = stats.dirs + stats.files + stats.symlinks + stats.hardlinks + stats.special;
  return stats;
}
