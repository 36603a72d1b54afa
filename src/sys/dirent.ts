/**
 * Directory entries as the kernel returns them: their names and d_type, read with getdents64 in
 * one call per buffer, without node:fs (see src/nodeFs.ts).
 */
import { childCPath, decodeName, showPath } from "../fileName.ts";
import { O } from "./openat2.ts";
import { libc, check, cstr, retry } from "./libc.ts";
import { openDirAt, statPath } from "./pathCalls.ts";

const DT_UNKNOWN = 0;
const SEEK_SET = 0;
const DT_DIR = 4;
const D_TYPE_OFFSET = 18; // struct dirent64: d_ino u64, d_off i64, d_reclen u16, d_type u8, d_name
const D_RECLEN_OFFSET = 16;
const D_NAME_OFFSET = 19;

/** An entry of a directory: its name, and whether it is a directory (DT_UNKNOWN asks lstat). */
export interface DirEntry {
  name: string;
  isDirectory: boolean;
}

/** A {@link DirEntry} with its name as the kernel gave it, bytes, and its inode number. */
export interface RawDirEntry {
  name: Uint8Array;
  /** As d_type says; undefined where the filesystem leaves it unknown. */
  isDirectory: boolean | undefined;
  /** d_ino (as a number: exact below 2^53, and only ever compared). */
  ino: number;
}

/** getdents64's buffer, one for the thread: every entry is copied out before listDir returns. */
let direntBuffer: Uint8Array | undefined;

/**
 * The entries of directory `path`, without `.` and `..`, in the kernel's order. A filesystem that
 * leaves d_type unknown is asked by lstat. Unless `follow`, a symlink at `path` is refused (ELOOP):
 * a tree walk that found a directory there lists that directory or nothing, never where a link
 * put in its place meanwhile leads. Failures throw (ENOENT for a missing `path`).
 */
export function listDir(path: string | Uint8Array, follow = true): DirEntry[] {
  const dir = cstr(path);
  const entries: DirEntry[] = [];
  for (const e of listDirBytes(dir, follow)) {
    const isDirectory = e.isDirectory ?? statPath(childCPath(dir, e.name), false)?.isDirectory ?? false;
    entries.push({ name: decodeName(e.name), isDirectory });
  }
  return entries;
}

/**
 * {@link listDir} with the names as bytes, and whether each is a directory only as d_type says
 * (undefined where the filesystem does not say): a tree walk that stats every entry anyway and
 * only hands the names back to the kernel (a copy) spares a stat and the decoding of each name.
 * `flags` go to the open (O.NOATIME: a read-ahead that leaves the directory's atime as it was).
 */
export function listDirBytes(path: string | Uint8Array, follow = true, flags = 0): RawDirEntry[] {
  return reading(path, entriesOf, (follow ? 0 : O.NOFOLLOW) | flags);
}

/** {@link listDirBytes} of the directory open as `fd`, all of it however often it was read; `shown` names it in an error. */
export function listDirFd(fd: number, shown: () => string): RawDirEntry[] {
  check(Number(libc.lseek(fd, 0, SEEK_SET)), () => `read directory ${shown()}`);
  return entriesOf((buf) => check(retry(() => Number(libc.getdents64(fd, buf, buf.length))), () => `read directory ${shown()}`));
}

/** The entries, but `.` and `..`, that `read` gives (getdents64 into the buffer given; 0 at the end). */
function entriesOf(read: (buf: Uint8Array) => number): RawDirEntry[] {
  const entries: RawDirEntry[] = [];
  const buf = (direntBuffer ??= new Uint8Array(64 * 1024));
  const view = new DataView(buf.buffer);
  for (let n = read(buf); n > 0; n = read(buf)) {
    for (let at = 0; at < n; at += view.getUint16(at + D_RECLEN_OFFSET, true)) {
      const start = at + D_NAME_OFFSET;
      if (isDotEntry(buf, start)) continue;
      const name = buf.slice(start, buf.indexOf(0, start)); // a copy: the buffer is read into again
      const type = buf[at + D_TYPE_OFFSET];
      const ino = view.getUint32(at, true) + view.getUint32(at + 4, true) * 2 ** 32;
      entries.push({ name, isDirectory: type === DT_UNKNOWN ? undefined : type === DT_DIR, ino });
    }
  }
  return entries;
}

/**
 * `entries` sorted by inode number: the order their inodes most likely lie in on the disk, which
 * is how cp reads a directory. With a cold cache, a walk that looks at them so reads ahead.
 */
export function inInodeOrder(entries: RawDirEntry[]): RawDirEntry[] {
  return entries.sort((a, b) => a.ino - b.ino);
}

/**
 * True when the filesystem of `dir` fills in d_type, as overlayfs needs of its layers. The first
 * entry (`.` where the filesystem lists it) answers: a filesystem that records types records them
 * for every entry.
 */
export function supportsDType(dir: string): boolean {
  return reading(dir, (read) => {
    // Room for one entry of the longest name, not a listing: a directory of 10,000 would fill 64 KiB.
    const buf = new Uint8Array(512);
    return read(buf) === 0 || buf[D_TYPE_OFFSET] !== DT_UNKNOWN;
  });
}

/** True when directory `dir` has no entry but `.` and `..`; it reads no further than the first other. */
export function isEmptyDir(dir: string): boolean {
  return reading(dir, (read) => {
    const buf = new Uint8Array(1024);
    const view = new DataView(buf.buffer);
    for (let n = read(buf); n > 0; n = read(buf)) {
      for (let at = 0; at < n; at += view.getUint16(at + D_RECLEN_OFFSET, true)) if (!isDotEntry(buf, at + D_NAME_OFFSET)) return false;
    }
    return true;
  });
}

/** Whether the NUL-terminated name at `buf[start]` is `.` or `..`. */
function isDotEntry(buf: Uint8Array, start: number): boolean {
  return buf[start] === 0x2e && (buf[start + 1] === 0 || (buf[start + 1] === 0x2e && buf[start + 2] === 0));
}

/**
 * Runs `fn` on directory `name` of the directory open as `dir`, opened through no symlink (see
 * openDirAt) and closed afterwards; undefined, `fn` not run, when `name` is gone or no directory now.
 */
export function withDirAt<T>(dir: number, name: string | Uint8Array, fn: (fd: number) => T, what: () => string): T | undefined {
  const fd = openDirAt(dir, name, what);
  if (fd === undefined) return undefined;
  try {
    return fn(fd);
  } finally {
    libc.close(fd);
  }
}

/** Runs `fn` on a descriptor of directory `path` (opened with `flags` more), closed afterwards. */
export function withDir<T>(path: string | Uint8Array, fn: (fd: number) => T, flags = 0): T {
  const fd = check(libc.open(cstr(path), O.RDONLY | O.DIRECTORY | O.CLOEXEC | flags, 0), () => `open ${showPath(path)}`);
  try {
    return fn(fd);
  } finally {
    libc.close(fd);
  }
}

/**
 * Runs `fn` with a reader of directory `dir` (getdents64 into the buffer given; 0 at the end),
 * opened with `flags` more.
 */
function reading<T>(dir: string | Uint8Array, fn: (read: (buf: Uint8Array) => number) => T, flags = 0): T {
  return withDir(dir, (fd) => fn((buf) => check(retry(() => Number(libc.getdents64(fd, buf, buf.length))), () => `read directory ${showPath(dir)}`)), flags);
}
