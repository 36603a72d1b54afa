/**
 * openat2(2): path resolution that the kernel confines to a directory. With RESOLVE_IN_ROOT the
 * directory acts as `/` for the whole walk: `..` stops at it and absolute symlinks restart at
 * it, so no name in a layer, however crafted, resolves to anything outside the snapshot.
 */
import { ptr } from "bun:ffi";
import { libc, cstr, errno, retry, SysError } from "./libc.ts";

const SYS_openat2 = 437;

/** O_DIRECTORY and O_NOFOLLOW: arm64 numbers them apart from x86-64 (and most others). */
const [DIRECTORY, NOFOLLOW] = process.arch === "arm64" ? [0o40000, 0o100000] : [0o200000, 0o400000];

/** open(2) flags, as Linux numbers them on this architecture. */
export const O = {
  RDONLY: 0,
  WRONLY: 0o1,
  NONBLOCK: 0o4000,
  CREAT: 0o100,
  EXCL: 0o200,
  DIRECTORY,
  NOFOLLOW,
  CLOEXEC: 0o2000000,
  PATH: 0o10000000,
  RDWR: 0o2,
  TMPFILE: 0o20000000 | DIRECTORY,
  NOATIME: 0o1000000,
} as const;

/** Flags of the `*at` calls (and AT_FDCWD, the directory a relative path is taken from). */
export const AT = {
  FDCWD: -100,
  SYMLINK_NOFOLLOW: 0x100,
  REMOVEDIR: 0x200,
  SYMLINK_FOLLOW: 0x400,
  EMPTY_PATH: 0x1000,
  RECURSIVE: 0x8000,
} as const;

/** `resolve` flags of struct open_how. */
export const RESOLVE = {
  NO_XDEV: 0x01,
  NO_MAGICLINKS: 0x02,
  NO_SYMLINKS: 0x04,
  BENEATH: 0x08,
  IN_ROOT: 0x10,
} as const;

/**
 * Opens `path` relative to directory `dirFd` with `resolve` constraints. Returns the new file
 * descriptor, or the negated errno when it fails, so that callers can treat ENOENT as an answer.
 */
export function openat2(dirFd: number, path: string, flags: number, resolve: number, mode = 0): number {
  const how = new BigUint64Array([BigInt(flags | O.CLOEXEC), BigInt(mode), BigInt(resolve)]);
  const name = cstr(path);
  const fd = retry(() => Number(libc.syscall(SYS_openat2, dirFd, Number(ptr(name)), Number(ptr(how)), how.byteLength, 0, 0)));
  return fd >= 0 ? fd : -errno();
}

/** Like {@link openat2}, but a failure throws a {@link SysError} naming `what`. */
export function mustOpenat2(dirFd: number, path: string, flags: number, resolve: number, what: () => string): number {
  const fd = openat2(dirFd, path, flags, resolve);
  if (fd < 0) throw new SysError(what(), -fd);
  return fd;
}
