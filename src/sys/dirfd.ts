/**
 * File operations on one name inside a directory held open by descriptor that need more than a
 * plain *at system call (those are in pathCalls.ts): times, extended attributes, and lstat,
 * readdir and readlink through node:fs. None follows a symlink in that last component. Calls
 * without an *at form go through `/proc/self/fd/DIR/NAME`, which resolves to the same place.
 * Names are strings that may hold escaped bytes (see ../fileName.ts).
 */
import { lstatSync, readdirSync, readlinkSync, type BigIntStats } from "../nodeFs.ts";
import { decodeName, nameBuffer } from "../fileName.ts";
import { libc, check, cstr, Errno, SysError } from "./libc.ts";
import { getXattr, setXattr, timespecs } from "./file.ts";
import { AT } from "./openat2.ts";


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
