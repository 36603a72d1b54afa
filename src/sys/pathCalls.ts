/**
 * The few file calls of a command that only reads, made straight through libc: a small file's
 * text, a path's type and size, whether it exists or may be written, and output to a descriptor.
 * Through node:fs they would first load it (src/nodeFs.ts), which costs more than the command.
 */
import { decodeName } from "../fileName.ts";
import { libc, check, cstr, errno, Errno, errnoName, retry, SysError } from "./libc.ts";

const O_RDONLY = 0;
const O_CLOEXEC = 0o2000000;
const AT_FDCWD = -100;
const W_OK = 2;
const STATX_TYPE = 0x1;
const STATX_MODE = 0x2;
const STATX_SIZE = 0x200;
const S_IFMT = 0o170000;
const S_IFDIR = 0o40000;
const S_IFREG = 0o100000;
const S_IFSOCK = 0o140000;
const AT_SYMLINK_NOFOLLOW = 0x100;

/** The text (UTF-8) of the file at `path`, or undefined when there is none; other failures throw. */
export function readText(path: string): string | undefined {
  const fd = libc.open(cstr(path), O_RDONLY | O_CLOEXEC, 0);
  if (fd < 0) {
    if (errno() === Errno.ENOENT) return undefined;
    throw new SysError(`open ${path}`, errno());
  }
  try {
    const chunks: Buffer[] = [];
    for (;;) {
      const chunk = Buffer.allocUnsafe(64 * 1024);
      const n = check(retry(() => Number(libc.read(fd, chunk, chunk.length))), () => `read ${path}`);
      if (n === 0) break;
      chunks.push(chunk.subarray(0, n));
    }
    return Buffer.concat(chunks).toString("utf8");
  } finally {
    libc.close(fd);
  }
}

/** What stat(2) says of a path. */
export interface PathStat {
  isDirectory: boolean;
  isFile: boolean;
  isSocket: boolean;
  size: number;
}

/**
 * {@link PathStat} of `path`, a symlink followed unless not `follow` (then the link's own, as
 * lstat); undefined when nothing is there. Other failures (ENOTDIR…) throw.
 */
export function statPath(path: string, follow = true): PathStat | undefined {
  const raw = new Uint8Array(256); // struct statx
  if (libc.statx(AT_FDCWD, cstr(path), follow ? 0 : AT_SYMLINK_NOFOLLOW, STATX_TYPE | STATX_MODE | STATX_SIZE, raw) !== 0) {
    if (errno() === Errno.ENOENT) return undefined;
    throw new SysError(`stat ${path}`, errno());
  }
  const buf = new DataView(raw.buffer);
  const type = buf.getUint16(28, true) & S_IFMT; // stx_mode
  return { isDirectory: type === S_IFDIR, isFile: type === S_IFREG, isSocket: type === S_IFSOCK, size: Number(buf.getBigUint64(40, true)) };
}

/** The canonical absolute path of `path` (symlinks resolved), as realpath(3); a failure throws. */
export function realPath(path: string): string {
  const out = new Uint8Array(4097); // PATH_MAX and its NUL
  if (libc.realpath(cstr(path), out) === null) throw new SysError(`realpath ${path}`, errno());
  return decodeName(out.subarray(0, out.indexOf(0)));
}

/** Whether something is at `path` (symlinks followed), as node's existsSync: false on any failure. */
export function pathExists(path: string): boolean {
  return libc.access(cstr(path), 0) === 0;
}

/** Why `path` cannot be written (`EROFS`, `EACCES`…), or undefined when it can. */
export function notWritable(path: string): string | undefined {
  return libc.access(cstr(path), W_OK) === 0 ? undefined : errnoName(errno());
}

/** Writes all of `bytes` to descriptor `fd`, waiting while a non-blocking pipe is full. */
export function writeAll(fd: number, bytes: Uint8Array): void {
  for (let off = 0; off < bytes.length; ) {
    const n = Number(libc.write(fd, bytes.subarray(off), bytes.length - off));
    if (n >= 0) off += n;
    else if (errno() === Errno.EAGAIN) Bun.sleepSync(1); // a parent's pipe in non-blocking mode, full: wait for it to drain
    else if (errno() !== Errno.EINTR) throw new SysError(`write to descriptor ${fd}`, errno());
  }
}
