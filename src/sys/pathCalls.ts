/**
 * The file calls of stor's everyday commands, made straight through libc: a small file's text, a
 * path's stat, whether it exists or may be written, directories made and removed, renames,
 * owners and modes, and output to a descriptor; and the *at calls on one name in a directory
 * held open by descriptor (never following a symlink there), of which each path form here is
 * the call at AT_FDCWD. Through node:fs they would first load it
 * (src/nodeFs.ts), which costs more than a command's own work. Failures throw a SysError naming
 * the call and the path; {@link errnoCode} reads its errno name.
 */
import { ptr } from "bun:ffi";
import { InvalidArgumentError } from "../errors.ts";
import { dirname } from "../path.ts";
import { concatBytes, decodeName, encodeName, isUtf8, showPath } from "../fileName.ts";
import { makedev } from "./devno.ts";
import { AT, O, RESOLVE, openat2 } from "./openat2.ts";
import { libc, check, cstr, errno, Errno, errnoName, failed, retry, SysError } from "./libc.ts";

const W_OK = 2;
const STATX_BASIC_STATS = 0x7ff;
const STATX_ATTR_MOUNT_ROOT = 0x2000;
/** The file type bits of st_mode, the same on every Linux architecture. */
export const S = {
  IFMT: 0o170000,
  IFIFO: 0o10000,
  IFCHR: 0o20000,
  IFDIR: 0o40000,
  IFBLK: 0o60000,
  IFREG: 0o100000,
  IFLNK: 0o120000,
  IFSOCK: 0o140000,
} as const;

let textDecoder: TextDecoder | undefined;

/**
 * The text (UTF-8) of the file at `path`, or undefined when there is none; other failures throw.
 * With `bound`, for a path a user names (which may be /dev/zero, or a FIFO), no more than
 * `bound + 1` bytes are read, without waiting: more than `bound`, or a failed read, is an
 * InvalidArgumentError naming what the file is when it is not a regular file (a symlink
 * followed). The kind is asked only then: a text read whole needs no stat, which is a symbol
 * bound and a call every command would pay for. Whatever gives its text and ends is read: a pipe
 * as `--config <(…)`, /dev/null. A FIFO that gives nothing is refused: its writer may be yet to come.
 */
export function readText(path: string, bound?: number): string | undefined {
  const bytes = readBytes(path, bound);
  return bytes && decodeText(bytes);
}

/** `bytes` as UTF-8, a byte that is not as U+FFFD, a BOM kept (as Buffer kept it). */
const decodeText = (bytes: Uint8Array) => (textDecoder ??= new TextDecoder("utf-8", { ignoreBOM: true })).decode(bytes);

/**
 * {@link readText} of a file whose text names files (a configuration, a plugin's spec), refused
 * when it is not UTF-8: decoded, each byte that is not would be U+FFFD, and the text would name
 * another file. The bytes are read once and checked only when the text holds U+FFFD: read again,
 * a pipe (`--config <(…)`) would give nothing, and a file may have changed.
 */
export function readUtf8Text(path: string, bound?: number): string | undefined {
  const bytes = readBytes(path, bound);
  if (!bytes) return undefined;
  const text = decodeText(bytes);
  if (text.includes("\ufffd") && !isUtf8(bytes)) throw new InvalidArgumentError(`read ${path}`, "is not UTF-8");
  return text;
}

/** The bytes of the file at `path`, or undefined when there is none: as {@link readText}, undecoded. */
export function readBytes(path: string, bound?: number): Uint8Array | undefined {
  // Not blocking: a FIFO is refused below, not waited on at the open.
  const fd = libc.open(cstr(path), O.RDONLY | O.CLOEXEC | (bound === undefined ? 0 : O.NONBLOCK), 0);
  if (fd < 0) {
    const e = errno();
    if (e === Errno.ENOENT) return undefined;
    throw new SysError(`open ${path}`, e);
  }
  try {
    const most = bound === undefined ? Infinity : bound + 1;
    const chunks: Uint8Array[] = [];
    let total = 0;
    let failure: unknown;
    try {
      // Most files read so are small (a config, /proc/filesystems, mountinfo): reads start at 4 KiB.
      for (let size = 4096; total < most; size = Math.min(size * 4, 64 * 1024)) {
        const chunk = new Uint8Array(Math.min(size, most - total));
        const n = check(retry(() => Number(libc.read(fd, chunk, chunk.length))), () => `read ${path}`);
        if (n === 0) break;
        chunks.push(chunk.subarray(0, n));
        total += n;
      }
    } catch (err) {
      if (bound === undefined) throw err;
      failure = err;
    }
    if (bound !== undefined && (failure !== undefined || total === most)) {
      if (!statFd(fd).isFile) throw new InvalidArgumentError(`read ${path}`, "not a regular file");
      if (failure !== undefined) throw failure;
      if (total === most) throw new InvalidArgumentError(`read ${path}`, `larger than ${bound} bytes`);
    }
    // A FIFO read before anyone opened it to write ends at once: the text its writer is about to
    // give would be taken for none (a configuration of defaults, another root).
    if (bound !== undefined && total === 0 && statFd(fd).type === S.IFIFO) throw new InvalidArgumentError(`read ${path}`, "a FIFO that gave nothing: no writer had it open");
    return concatBytes(chunks);
  } finally {
    libc.close(fd);
  }
}

/** What stat(2) says of a path. */
export interface PathStat {
  /** The file type bits of st_mode (S.IFMT). */
  type: number;
  isDirectory: boolean;
  isSymbolicLink: boolean;
  isFile: boolean;
  isSocket: boolean;
  isCharacterDevice: boolean;
  /** The permission bits (and setuid, setgid, sticky). */
  mode: number;
  uid: number;
  gid: number;
  size: number;
  /** Bytes allocated, as 512-byte blocks. */
  blocks: number;
  nlink: number;
  ino: bigint;
  /** The device, `major:minor`. */
  dev: string;
  /** A device file's own device number, as mknod(2) takes it. */
  rdev: bigint;
  atimeNs: bigint;
  mtimeNs: bigint;
  /** When the inode last changed: no one can set it (unlike mtime). */
  ctimeNs: bigint;
  /** atime and mtime as utimensat(2) takes them, two struct timespec: what a copy sets, as it is. */
  times: Uint8Array;
  /**
   * Whether something is mounted here (a bind of a file or directory too); undefined where the
   * kernel does not say (STATX_ATTR_MOUNT_ROOT came in Linux 5.8).
   */
  isMountRoot: boolean | undefined;
}

/**
 * {@link PathStat} of `path`, a symlink followed unless not `follow` (then the link's own, as
 * lstat); undefined when nothing is there. Other failures (ENOTDIR…) throw.
 */
export function statPath(path: string | Uint8Array, follow = true): PathStat | undefined {
  return statAt(AT.FDCWD, path, follow);
}

/** {@link statPath} of `name` in directory `dir` (a descriptor; the name may be a relative path). */
export function statAt(dir: number, name: string | Uint8Array, follow = true): PathStat | undefined {
  if (libc.statx(dir, cstr(name), follow ? 0 : AT.SYMLINK_NOFOLLOW, STATX_BASIC_STATS, STATX) === 0) return fromStatx();
  const e = errno();
  if (e === Errno.ENOENT) return undefined;
  throw new SysError(`stat ${showPath(name)}`, e);
}

/**
 * Opens regular file `path` beneath directory `dir`, through no symlink, to read, when it is still
 * inode `ino`; else the negated errno, ESTALE when another file is there now. It is looked at
 * through an O_PATH descriptor and reopened through that, so nothing else found there is ever
 * opened: a FIFO, whose open waits for a writer for ever, or a device, whose open may do
 * something (a watchdog's arms it) and whose reads are the host's.
 */
export function openFileBeneath(dir: number, path: string, ino: bigint): number {
  const at = openat2(dir, path, O.PATH | O.NOFOLLOW, RESOLVE.BENEATH | RESOLVE.NO_SYMLINKS | RESOLVE.NO_MAGICLINKS);
  if (at < 0) return at;
  try {
    const st = statFd(at);
    if (!st.isFile || st.ino !== ino) return -Errno.ESTALE;
    const fd = retry(() => libc.open(cstr(`/proc/self/fd/${at}`), O.RDONLY | O.CLOEXEC, 0));
    return fd >= 0 ? fd : -errno();
  } finally {
    libc.close(at);
  }
}

/** {@link PathStat} of the open descriptor `fd`. */
export function statFd(fd: number): PathStat {
  check(libc.statx(fd, EMPTY, AT.EMPTY_PATH, STATX_BASIC_STATS, STATX), () => `stat descriptor ${fd}`);
  return fromStatx();
}

const EMPTY = new Uint8Array(1);

/** The struct statx every call fills (calls are synchronous; each thread has its own). */
const STATX = new Uint8Array(256);

/** The {@link PathStat} in {@link STATX}. */
function fromStatx(): PathStat {
  return new Statx(STATX.slice(0, STATX_USED));
}

/** The bytes of a struct statx that a {@link PathStat} reads: up to stx_dev_minor. */
const STATX_USED = 144;

/**
 * A {@link PathStat} of a struct statx's bytes. What is a BigInt or a string is made when it is
 * read: a tree walk stats every entry and reads the inode and the times of few of them.
 */
class Statx implements PathStat {
  readonly type: number;
  readonly isDirectory: boolean;
  readonly isSymbolicLink: boolean;
  readonly isFile: boolean;
  readonly isSocket: boolean;
  readonly isCharacterDevice: boolean;
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  readonly size: number;
  readonly blocks: number;
  readonly nlink: number;
  readonly #raw: Uint8Array;

  constructor(raw: Uint8Array) {
    this.#raw = raw;
    const v = new DataView(raw.buffer);
    const mode = v.getUint16(28, true);
    this.type = mode & S.IFMT;
    this.isDirectory = this.type === S.IFDIR;
    this.isSymbolicLink = this.type === S.IFLNK;
    this.isFile = this.type === S.IFREG;
    this.isSocket = this.type === S.IFSOCK;
    this.isCharacterDevice = this.type === S.IFCHR;
    this.mode = mode & 0o7777;
    this.uid = v.getUint32(20, true);
    this.gid = v.getUint32(24, true);
    this.size = v.getUint32(40, true) + v.getUint32(44, true) * 2 ** 32;
    this.blocks = v.getUint32(48, true) + v.getUint32(52, true) * 2 ** 32;
    this.nlink = v.getUint32(16, true);
  }

  get #view(): DataView {
    return new DataView(this.#raw.buffer);
  }

  get ino(): bigint {
    return this.#view.getBigUint64(32, true);
  }

  get isMountRoot(): boolean | undefined {
    const v = this.#view; // stx_attributes_mask says which bits of stx_attributes the kernel set
    return v.getUint32(56, true) & STATX_ATTR_MOUNT_ROOT ? (v.getUint32(8, true) & STATX_ATTR_MOUNT_ROOT) !== 0 : undefined;
  }

  get dev(): string {
    return `${this.#view.getUint32(136, true)}:${this.#view.getUint32(140, true)}`;
  }

  get rdev(): bigint {
    return makedev(this.#view.getUint32(128, true), this.#view.getUint32(132, true));
  }

  get atimeNs(): bigint {
    return this.#timeNs(64);
  }

  get mtimeNs(): bigint {
    return this.#timeNs(112);
  }

  get ctimeNs(): bigint {
    return this.#timeNs(96);
  }

  /**
   * stx_atime and stx_mtime as two struct timespec. A struct statx_timestamp is tv_sec (s64),
   * tv_nsec (u32) and four reserved bytes: on a little-endian machine, tv_sec and tv_nsec with four
   * zero bytes after them are the bytes of a timespec (two s64) of the same time.
   */
  get times(): Uint8Array {
    const out = new Uint8Array(32);
    out.set(this.#raw.subarray(64, 76), 0);
    out.set(this.#raw.subarray(112, 124), 16);
    return out;
  }

  #timeNs(at: number): bigint {
    const v = this.#view;
    return v.getBigInt64(at, true) * 1_000_000_000n + BigInt(v.getUint32(at + 8, true));
  }
}

const STATX_MNT_ID_UNIQUE = 0x4000;

/**
 * The unique id (statmount(2)'s) of the mount `path` (followed) is on; undefined where the kernel
 * does not say (before Linux 6.8). A failure throws.
 */
export function mountIdOf(path: string): number | undefined {
  check(libc.statx(AT.FDCWD, cstr(path), 0, STATX_MNT_ID_UNIQUE, STATX), () => `stat ${path}`);
  const v = new DataView(STATX.buffer);
  return v.getUint32(0, true) & STATX_MNT_ID_UNIQUE ? v.getUint32(144, true) + v.getUint32(148, true) * 2 ** 32 : undefined;
}

/** Whether `path` (a symlink not followed) is root's and no one else may write it. */
export function rootOnly(path: string): boolean {
  const st = statPath(path, false);
  return st !== undefined && st.uid === 0 && (st.mode & 0o022) === 0;
}

/** The canonical absolute path of `path` (symlinks resolved), as realpath(3); a failure throws. */
export function realPath(path: string): string {
  const out = new Uint8Array(4097); // PATH_MAX and its NUL
  if (libc.realpath(cstr(path), out) === null) throw failed(() => `realpath ${path}`);
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
    if (n >= 0) {
      off += n;
      continue;
    }
    const e = errno();
    if (e === Errno.EAGAIN) Bun.sleepSync(1); // a parent's pipe in non-blocking mode, full: wait for it to drain
    else if (e !== Errno.EINTR) throw new SysError(`write to descriptor ${fd}`, e);
  }
}

/** Writes `text` whole to descriptor `fd`: a name's escaped bytes as the bytes they stand for (see encodeName). */
export function writeText(fd: number, text: string): void {
  writeAll(fd, encodeName(text));
}

/** openat(2) of `name` in `dir` that never follows a symlink there; returns the descriptor. */
export function openAt(dir: number, name: string | Uint8Array, flags: number, mode: number, what: () => string): number {
  return check(libc.openat(dir, cstr(name), flags | O.NOFOLLOW | O.CLOEXEC, mode), what);
}

/** Whether anything has `name` in directory `dir` (a symlink itself, not what it leads to). */
export function existsAt(dir: number, name: string | Uint8Array): boolean {
  if (libc.faccessat(dir, cstr(name), 0, AT.SYMLINK_NOFOLLOW) === 0) return true;
  const code = errno();
  if (code === Errno.ENOENT) return false;
  throw new SysError(`look up ${showPath(name)}`, code);
}

/** Makes directory `name`; false when the name is taken (by anything). */
export function mkdirAt(dir: number, name: string | Uint8Array, mode: number, what: () => string): boolean {
  if (libc.mkdirat(dir, cstr(name), mode) === 0) return true;
  const code = errno(); // read before the message is made, which may call into libc
  if (code === Errno.EEXIST) return false;
  throw new SysError(what(), code);
}

export function symlinkAt(target: string | Uint8Array, dir: number, name: string | Uint8Array, what: () => string): void {
  check(libc.symlinkat(cstr(target), dir, cstr(name)), what);
}

/** A hard link `newName` in `newDir` to `oldName` in `oldDir` (a symlink there is linked, not followed). */
export function linkAt(oldDir: number, oldName: string | Uint8Array, newDir: number, newName: string | Uint8Array, what: () => string): void {
  check(libc.linkat(oldDir, cstr(oldName), newDir, cstr(newName), 0), what);
}

/** unlinkat(2) of `name` in `dir` with `flags`: 0, or the errno it failed with (read before anything else may call into libc). */
export function unlinkErrno(dir: number, name: string | Uint8Array, flags: number): number {
  return libc.unlinkat(dir, cstr(name), flags) === 0 ? 0 : errno();
}

/**
 * Opens directory `name` in `dir` (a descriptor) to read, never through a symlink: the
 * descriptor, or undefined when `name` is gone or is not a directory (a file or a link put in
 * its place meanwhile). A tree walk by descriptor so stays in the tree whatever is renamed or
 * replaced in it while it runs, as a walk by path does not.
 */
export function openDirAt(dir: number, name: string | Uint8Array, what: () => string): number | undefined {
  const fd = libc.openat(dir, cstr(name), O.RDONLY | O.DIRECTORY | O.NOFOLLOW | O.CLOEXEC, 0);
  if (fd >= 0) return fd;
  const code = errno();
  if (code === Errno.ENOENT || code === Errno.ENOTDIR || code === Errno.ELOOP) return undefined;
  throw new SysError(what(), code);
}

/** renameat2(2) of `from` in `fromDir` to `to` in `toDir`, never over an existing name: 0, or the errno it failed with. */
export function renameAtErrno(fromDir: number, from: string | Uint8Array, toDir: number, to: string | Uint8Array): number {
  return libc.renameat2(fromDir, cstr(from), toDir, cstr(to), RENAME_NOREPLACE) === 0 ? 0 : errno();
}

/** Removes `name` (an empty directory when `isDir`); false when it did not exist. */
export function unlinkAt(dir: number, name: string | Uint8Array, isDir: boolean, what: () => string): boolean {
  const code = unlinkErrno(dir, name, isDir ? AT.REMOVEDIR : 0);
  if (code === Errno.ENOENT) return false;
  if (code !== 0) throw new SysError(what(), code);
  return true;
}

/** A device node or fifo (`mode` carries the type bits). */
export function mknodAt(dir: number, name: string | Uint8Array, mode: number, rdev: bigint, what: () => string): void {
  check(libc.mknodat(dir, cstr(name), mode, rdev), what);
}

export function chownAt(dir: number, name: string | Uint8Array, uid: number, gid: number, what: () => string): void {
  check(libc.fchownat(dir, cstr(name), uid, gid, AT.SYMLINK_NOFOLLOW), what);
}

/** fchmodat2(2), Linux 6.6: the same number on every architecture, as all calls since 424. */
const SYS_fchmodat2 = 452;
/** Until the kernel says it has no fchmodat2. */
let fchmodat2Known = true;

/**
 * chmod that refuses symlinks instead of following them. One fchmodat2 where the kernel has it:
 * glibc before 2.39 emulates the flag with four calls (an O_PATH open, fstat, chmod through
 * /proc, close), which cost a layer's apply a directory each. A refusal (a seccomp filter that
 * knows no fchmodat2 says EPERM) is asked again of glibc, whose answer stands.
 */
export function chmodAt(dir: number, name: string | Uint8Array, mode: number, what: () => string): void {
  const path = cstr(name);
  let refused = false;
  if (fchmodat2Known) {
    if (Number(libc.syscall(SYS_fchmodat2, dir, Number(ptr(path)), mode, AT.SYMLINK_NOFOLLOW, 0, 0)) === 0) return;
    const e = errno();
    if (e === Errno.ENOSYS) fchmodat2Known = false;
    else if (e !== Errno.EPERM) throw new SysError(what(), e);
    refused = e === Errno.EPERM;
  }
  check(libc.fchmodat(dir, path, mode, AT.SYMLINK_NOFOLLOW), what);
  // glibc could where fchmodat2 could not: a filter refuses the call, not the change. Not asked again.
  if (refused) fchmodat2Known = false;
}

/** Makes directory `path` (`mode` less the umask): true when made, false when something is there. */
export function makeDir(path: string | Uint8Array, mode: number): boolean {
  return mkdirAt(AT.FDCWD, path, mode, () => `mkdir ${showPath(path)}`);
}

/**
 * Makes directory `path` and any missing above it, as `mkdir -p`: the first one made, or
 * undefined when `path` was a directory already. Something else in the way is EEXIST or ENOTDIR.
 */
export function makeDirs(path: string, mode: number): string | undefined {
  if (libc.mkdir(cstr(path), mode) === 0) return path;
  const e = errno();
  if (e === Errno.EEXIST && statPath(path)?.isDirectory) return undefined;
  const parent = dirname(path);
  if (e !== Errno.ENOENT || parent === path) throw new SysError(`mkdir ${path}`, e);
  const first = makeDirs(parent, mode);
  // Once, not again recursively: procfs answers ENOENT below an existing directory.
  if (libc.mkdir(cstr(path), mode) === 0) return first ?? path;
  const again = errno();
  if (again === Errno.EEXIST && statPath(path)?.isDirectory) return first; // another process made it meanwhile
  throw new SysError(`mkdir ${path}`, again);
}

/** Makes a new directory named `prefix` and six random characters (mode 0700), as mkdtemp(3). */
export function makeTempDir(prefix: string): string {
  const template = cstr(`${prefix}XXXXXX`);
  if (libc.mkdtemp(template) === null) throw failed(() => `mkdtemp ${prefix}XXXXXX`);
  return decodeName(template.subarray(0, template.length - 1));
}

/** Renames `from` to `to`, as rename(2): an empty directory or a file at `to` is replaced. */
export function renamePath(from: string, to: string): void {
  check(libc.rename(cstr(from), cstr(to)), () => `rename ${from} to ${to}`);
}

/** renameat2(2)'s flag: fail with EEXIST rather than replace what is at the new name. */
const RENAME_NOREPLACE = 1;

/** What {@link renameAway}'s names end in: mkdtemp's alphabet. */
const TEMP_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/**
 * Renames `from` to a new name `${prefix}XXXXXX` that nothing had (as mkdtemp names a directory it
 * makes), and returns it: `rename` to a trash without making one first. Never replaces anything
 * but, on a filesystem without RENAME_NOREPLACE, the empty directory it makes to rename over.
 */
export function renameAway(from: string, prefix: string): string {
  for (;;) {
    // Math.random, not crypto.getRandomValues, whose first call costs a command 0.1 ms: a name
    // guessed or taken is only tried again, as RENAME_NOREPLACE never replaces it.
    let to = prefix;
    for (let i = 0; i < 6; i++) to += TEMP_CHARS[Math.floor(Math.random() * TEMP_CHARS.length)];
    if (libc.renameat2(AT.FDCWD, cstr(from), AT.FDCWD, cstr(to), RENAME_NOREPLACE) === 0) return to;
    const code = errno();
    if (code === Errno.EINVAL) break; // a filesystem without the flag
    if (code !== Errno.EEXIST) throw new SysError(`rename ${from} to ${to}`, code);
  }
  // There, rename(2) over an empty directory mkdtemp made: what it replaces is only that.
  const to = makeTempDir(prefix);
  renamePath(from, to);
  return to;
}

/** Removes the file (or symlink) `path`: false when there was none. */
export function removeFile(path: string): boolean {
  return unlinkAt(AT.FDCWD, path, false, () => `unlink ${path}`);
}

/** Removes the empty directory `path`: false when there was none. */
export function removeDir(path: string): boolean {
  return unlinkAt(AT.FDCWD, path, true, () => `rmdir ${path}`);
}

/**
 * Removes directory `path` if it is empty, and says whether it is gone (removed, or there was
 * none): false when it has entries (ENOTEMPTY; EEXIST, as POSIX lets a filesystem say it).
 */
export function removeDirIfEmpty(path: string): boolean {
  const code = unlinkErrno(AT.FDCWD, path, AT.REMOVEDIR);
  if (code === Errno.ENOTEMPTY || code === Errno.EEXIST) return false;
  if (code !== 0 && code !== Errno.ENOENT) throw new SysError(`rmdir ${path}`, code);
  return true;
}

/** Sets the permission bits of `path` (symlinks followed) to exactly `mode`. */
export function chmodPath(path: string | Uint8Array, mode: number): void {
  check(libc.fchmodat(AT.FDCWD, cstr(path), mode, 0), () => `chmod ${showPath(path)}`);
}

/** Sets the owner of `path` (symlinks followed). */
export function chownPath(path: string, uid: number, gid: number): void {
  check(libc.fchownat(AT.FDCWD, cstr(path), uid, gid, 0), () => `chown ${path}`);
}

/**
 * Writes `bytes` to a new file `path` (mode `mode`, refused when something is there), synced to
 * disk before it is closed.
 */
export function writeNewFile(path: string, bytes: Uint8Array, mode: number): void {
  const fd = check(libc.open(cstr(path), O.WRONLY | O.CREAT | O.EXCL | O.CLOEXEC, mode), () => `open ${path}`);
  try {
    writeAll(fd, bytes);
    check(libc.fsync(fd), () => `fsync ${path}`);
  } finally {
    libc.close(fd);
  }
}

/** Makes file `path` (mode `mode`) when there is none; a file there is left as it is. */
export function touchFile(path: string, mode: number): void {
  // O_EXCL: a file that is there is never opened. Closing any descriptor of a file drops every
  // POSIX lock the process holds on it, and a database open elsewhere in the process (serve's
  // threads) would lose SQLite's locks: another client then took its WAL for no one's and removed it.
  const fd = libc.open(cstr(path), O.WRONLY | O.CREAT | O.EXCL | O.CLOEXEC, mode);
  if (fd >= 0) libc.close(fd);
  else if (errno() !== Errno.EEXIST) throw failed(`open ${path}`);
}

/** Opens `path` as open(2) with `flags` (close-on-exec added), making it with `mode` if asked. */
export function openPath(path: string | Uint8Array, flags: number, mode = 0): number {
  return check(libc.open(cstr(path), flags | O.CLOEXEC, mode), () => `open ${showPath(path)}`);
}

/** Closes descriptor `fd`. */
export function closeFd(fd: number): void {
  libc.close(fd);
}

/**
 * Sets the owner of the open descriptor `fd` (before its mode: a chown clears setuid and setgid).
 * `what` names the file in an error, where the caller knows it.
 */
export function chownFd(fd: number, uid: number, gid: number, what: () => string = () => `chown descriptor ${fd}`): void {
  check(libc.fchown(fd, uid, gid), what);
}

/** Sets the permission bits (and setuid, setgid, sticky) of the open descriptor `fd`. */
export function chmodFd(fd: number, mode: number, what: () => string = () => `chmod descriptor ${fd}`): void {
  check(libc.fchmod(fd, mode), what);
}

/** Makes `path` a new name of the file `existing` (a hardlink). */
export function linkPath(existing: string | Uint8Array, path: string | Uint8Array): void {
  linkAt(AT.FDCWD, existing, AT.FDCWD, path, () => `link ${showPath(path)} to ${showPath(existing)}`);
}

/** Makes symlink `path` pointing to `target` (bytes as they are). */
export function symlinkPath(target: Uint8Array, path: string | Uint8Array): void {
  symlinkAt(target, AT.FDCWD, path, () => `symlink ${showPath(path)}`);
}

const ONE_BYTE = new Uint8Array(1);

/**
 * Whether `path` is a symlink (itself, not followed); undefined when nothing is there, or
 * something on the way is no directory. One readlink(2), where a stat would also make a result.
 */
export function isSymlink(path: string): boolean | undefined {
  if (Number(libc.readlink(cstr(path), ONE_BYTE, 1)) >= 0) return true;
  const e = errno();
  if (e === Errno.EINVAL) return false;
  if (e === Errno.ENOENT || e === Errno.ENOTDIR) return undefined;
  throw new SysError(`readlink ${path}`, e);
}

/** The target of symlink `path`, as bytes. */
export function readLink(path: string | Uint8Array): Uint8Array {
  for (let size = 256; ; size *= 2) {
    const buf = new Uint8Array(size);
    const n = check(Number(libc.readlink(cstr(path), buf, size)), () => `readlink ${showPath(path)}`);
    if (n < size) return buf.subarray(0, n);
  }
}

