/**
 * File operations on one name inside a directory held open by descriptor: the *at system calls.
 * The directory was resolved safely once; each call here touches only `name` in it and never
 * follows a symlink in that last component. Calls without an *at form (extended attributes,
 * lstat, readdir) go through `/proc/self/fd/DIR/NAME`, which resolves to the same place. Names
 * are strings that may hold escaped bytes (see ../fileName.ts); they reach the kernel as bytes.
 */
import { lstatSync, readdirSync, readlinkSync, type BigIntStats } from "../nodeFs.ts";
import { decodeName, nameBuffer } from "../fileName.ts";
import { libc, check, cstr, Errno, errno, SysError } from "./libc.ts";
import { getXattr, setXattr, timespecs } from "./file.ts";
import { AT, O } from "./openat2.ts";


/** The path of `name` in directory `dir` through procfs, for calls that have no *at form. */
export function procPath(dir: number, name: string): string {
  return `/proc/self/fd/${dir}/${name}`;
}

/** lstat of `name` in `dir`, or undefined when nothing has that name. */
export function lstatAt(dir: number, name: string): BigIntStats | undefined {
  return lstatSync(nameBuffer(procPath(dir, name)), { bigint: true, throwIfNoEntry: false });
}

/** The names in directory `name` of `dir` (`.` for `dir` itself). */
export function readdirAt(dir: number, name: string): string[] {
  return readdirSync(nameBuffer(procPath(dir, name)), { encoding: "buffer" }).map(decodeName);
}

/** The target of symlink `name` in `dir`. */
export function readlinkAt(dir: number, name: string): string {
  return decodeName(readlinkSync(nameBuffer(procPath(dir, name)), { encoding: "buffer" }));
}

/** openat(2) of `name` in `dir` that never follows a symlink there; returns the descriptor. */
export function openAt(dir: number, name: string, flags: number, mode: number, what: () => string): number {
  return check(libc.openat(dir, cstr(name), flags | O.NOFOLLOW | O.CLOEXEC, mode), what);
}

/** Makes directory `name`; false when the name is taken (by anything). */
export function mkdirAt(dir: number, name: string, mode: number, what: () => string): boolean {
  if (libc.mkdirat(dir, cstr(name), mode) === 0) return true;
  if (errno() === Errno.EEXIST) return false;
  throw new SysError(what(), errno());
}

export function symlinkAt(target: string, dir: number, name: string, what: () => string): void {
  check(libc.symlinkat(cstr(target), dir, cstr(name)), what);
}

/** A hard link `newName` in `newDir` to `oldName` in `oldDir` (a symlink there is linked, not followed). */
export function linkAt(oldDir: number, oldName: string, newDir: number, newName: string, what: () => string): void {
  check(libc.linkat(oldDir, cstr(oldName), newDir, cstr(newName), 0), what);
}

/** Removes `name` (an empty directory when `isDir`); false when it did not exist. */
export function unlinkAt(dir: number, name: string, isDir: boolean, what: () => string): boolean {
  if (libc.unlinkat(dir, cstr(name), isDir ? AT.REMOVEDIR : 0) === 0) return true;
  if (errno() === Errno.ENOENT) return false;
  throw new SysError(what(), errno());
}

/** A device node or fifo (`mode` carries the type bits). */
export function mknodAt(dir: number, name: string, mode: number, rdev: bigint, what: () => string): void {
  check(libc.mknodat(dir, cstr(name), mode, rdev), what);
}

export function chownAt(dir: number, name: string, uid: number, gid: number, what: () => string): void {
  check(libc.fchownat(dir, cstr(name), uid, gid, AT.SYMLINK_NOFOLLOW), what);
}

/** chmod that refuses symlinks instead of following them (glibc emulates the flag). */
export function chmodAt(dir: number, name: string, mode: number, what: () => string): void {
  check(libc.fchmodat(dir, cstr(name), mode, AT.SYMLINK_NOFOLLOW), what);
}

/** Access and modification times with nanoseconds, of the name itself, not a symlink's target. */
export function setTimesAt(dir: number, name: string, atimeNs: bigint, mtimeNs: bigint, what: () => string): void {
  check(libc.utimensat(dir, cstr(name), timespecs(atimeNs, mtimeNs), AT.SYMLINK_NOFOLLOW), what);
}

export function setXattrAt(dir: number, name: string, key: string, value: Uint8Array): void {
  setXattr(procPath(dir, name), key, value);
}

/** Extended attribute `key` of `name` in `dir`; undefined when it has none or its filesystem has no xattrs. */
export function getXattrAt(dir: number, name: string, key: string): Buffer | undefined {
  try {
    return getXattr(procPath(dir, name), key);
  } catch (err) {
    if (err instanceof SysError && err.errno === Errno.EOPNOTSUPP) return undefined;
    throw err;
  }
}
