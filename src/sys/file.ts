/**
 * File-level system calls that Node's fs lacks or does imprecisely: reflink and
 * copy_file_range, nanosecond timestamps, device nodes, extended attributes, flock, fsync,
 * fallocate, and the filesystem's type and block size.
 */
import { decodeName, showPath } from "../fileName.ts";
import { AT, O } from "./openat2.ts";
import { withDir } from "./dirent.ts";
import { libc, check, cstr, Errno, errno, failed, retry, SysError } from "./libc.ts";
import { chownAt, makeTempDir, mknodAt, removeDir, removeFile, statFd, statPath, type PathStat } from "./pathCalls.ts";

const FICLONE = 0x40049409;
const SEEK_DATA = 3;
const SEEK_HOLE = 4;
const POSIX_FADV_SEQUENTIAL = 2;
const LOCK_SH = 1;
const LOCK_EX = 2;
const LOCK_NB = 4;
const LOCK_UN = 8;

/** Remembers, for one copy job, whether reflinks work, so a failing FICLONE is tried once. */
export interface CopyState {
  reflink: boolean;
}

/**
 * Copies the data of `src` into the empty `dst` (both open file descriptors): a reflink where the
 * filesystem shares extents (XFS, btrfs), else copy_file_range, which stays in the kernel. A
 * source with fewer bytes `allocated` than its `size` has holes: only its data is copied, so the
 * copy has the same holes (a sparse lastlog stays a few KiB, not gigabytes of zeros).
 */
export function copyData(src: number, dst: number, size: number, allocated: number, state: CopyState, what: () => string): void {
  if (size === 0) return;
  if (state.reflink) {
    if (libc.ioctl(dst, FICLONE, src) === 0) return;
    const e = errno();
    // Not supported here or across filesystems: fall back for the rest of the job.
    if (e === Errno.EOPNOTSUPP || e === Errno.EXDEV || e === Errno.EINVAL || e === Errno.ENOTTY || e === Errno.EPERM) state.reflink = false;
    else throw new SysError(what(), e);
  }
  // Read front to back: a larger read-ahead, as cp asks for, keeps a cold source's reads large.
  // A file within the default read-ahead (128 KiB) is read whole at once anyway: no call for it.
  if (size > 128 * 1024) libc.posix_fadvise(src, 0, 0, POSIX_FADV_SEQUENTIAL);
  if (allocated < size) return copySparse(src, dst, size, what);
  copyRange(src, dst, 0, size, what);
}

/** copy_file_range of bytes [start, end) to the same offsets; false when the source ended early. */
function copyRange(src: number, dst: number, start: number, end: number, what: () => string): boolean {
  const offIn = new BigInt64Array([BigInt(start)]);
  const offOut = new BigInt64Array([BigInt(start)]);
  for (let at = start; at < end; ) {
    const n = retry(() => Number(libc.copy_file_range(src, offIn, dst, offOut, Math.min(end - at, 1 << 30), 0)));
    if (n < 0) throw failed(what);
    if (n === 0) return false; // the source shrank while copying
    at += n;
  }
  return true;
}

/** Copies the data segments of `src` (SEEK_DATA, SEEK_HOLE), then gives `dst` the full size. */
function copySparse(src: number, dst: number, size: number, what: () => string): void {
  for (let at = 0; at < size; ) {
    const data = Number(libc.lseek(src, at, SEEK_DATA));
    if (data < 0) {
      const e = errno();
      if (e === Errno.ENXIO) break; // nothing but a hole up to the end
      throw new SysError(what(), e);
    }
    const hole = Number(libc.lseek(src, data, SEEK_HOLE));
    if (hole < 0) throw failed(what);
    const end = Math.min(hole, size);
    if (data >= end) break;
    if (!copyRange(src, dst, data, end, what)) return; // the source shrank: the copy has what there was
    at = end;
  }
  check(libc.ftruncate(dst, size), what); // the last hole, a length, not data
}

/**
 * Writes all of `bytes` to descriptor `fd` at offset `position` (pwrite(2), whatever the file
 * offset). A direct call: for the many small writes of a layer's files, node's writeSync costs more.
 */
export function writeAllAt(fd: number, bytes: Uint8Array, position: number, what: () => string): void {
  for (let done = 0; done < bytes.length; ) {
    const rest = done === 0 ? bytes : bytes.subarray(done);
    const n = retry(() => Number(libc.pwrite(fd, rest, rest.length, position + done)));
    // A regular file never takes nothing; were it to, failing beats looping.
    if (n < 0) throw failed(what);
    if (n === 0) throw new SysError(what(), Errno.EIO);
    done += n;
  }
}

/** The two struct timespec that utimensat and futimens take, from nanoseconds. */
export function timespecs(atimeNs: bigint, mtimeNs: bigint): BigInt64Array {
  // Seconds rounded down, so that the nanoseconds are never negative (the kernel refuses them).
  const seconds = (ns: bigint) => ns / 1_000_000_000n - (ns % 1_000_000_000n < 0n ? 1n : 0n);
  const [a, m] = [seconds(atimeNs), seconds(mtimeNs)];
  return new BigInt64Array([a, atimeNs - a * 1_000_000_000n, m, mtimeNs - m * 1_000_000_000n]);
}

/**
 * What an attribute call works on: a path (a string, or bytes for a name that is not UTF-8),
 * whose last component is not followed if it is a symlink, or an open file descriptor (no path
 * lookup at all: the cheaper of the two).
 */
export type FileRef = string | Uint8Array | number;

const describeRef = (f: FileRef) => (typeof f === "number" ? `descriptor ${f}` : showPath(f));

/** Sets access and modification times of `f` with nanoseconds. */
export function setTimes(f: FileRef, atimeNs: bigint, mtimeNs: bigint): void {
  setTimespecs(f, timespecs(atimeNs, mtimeNs));
}

/** Gives `f` the access and modification times of `st` (a stat of another file), as they are. */
export function setTimesFrom(f: FileRef, st: Pick<PathStat, "times">): void {
  setTimespecs(f, st.times);
}

function setTimespecs(f: FileRef, ts: Uint8Array | BigInt64Array): void {
  const r = typeof f === "number" ? libc.futimens(f, ts) : libc.utimensat(AT.FDCWD, cstr(f), ts, AT.SYMLINK_NOFOLLOW);
  check(r, () => `set times of ${describeRef(f)}`);
}

/** Changes the owner of `path` without following a symlink. */
export function lchown(path: string | Uint8Array, uid: number, gid: number): void {
  chownAt(AT.FDCWD, path, uid, gid, () => `chown ${describeRef(path)}`);
}

/** Creates a device node, fifo or socket (`mode` carries the type bits). */
export function mknod(path: string | Uint8Array, mode: number, rdev: number | bigint): void {
  mknodAt(AT.FDCWD, path, mode, BigInt(rdev), () => `mknod ${describeRef(path)}`);
}

/** Names of the extended attributes of `f`. */
export function listXattrs(f: FileRef): string[] {
  const p = typeof f === "number" ? f : cstr(f);
  const list = (buf: Buffer | null, size: number) =>
    Number(typeof p === "number" ? libc.flistxattr(p, buf, size) : libc.llistxattr(p, buf, size));
  for (;;) {
    const size = list(null, 0);
    if (size < 0) {
      const e = errno();
      if (e === Errno.EOPNOTSUPP) return []; // the filesystem has no xattrs
      throw new SysError(`list xattrs of ${describeRef(f)}`, e);
    }
    if (size === 0) return [];
    const buf = Buffer.alloc(size);
    const n = list(buf, size);
    if (n < 0 && errno() === Errno.ERANGE) continue; // grew meanwhile
    check(n, () => `list xattrs of ${describeRef(f)}`);
    // Names are bytes, as file names are: decoded so that cstr gives the same bytes back.
    const names: string[] = [];
    for (let start = 0; start < n; ) {
      const end = buf.indexOf(0, start);
      const stop = end < 0 || end > n ? n : end;
      if (stop > start) names.push(decodeName(buf.subarray(start, stop)));
      start = stop + 1;
    }
    return names;
  }
}

/** The value of extended attribute `name` of `f`, or undefined when it has none. */
export function getXattr(f: FileRef, name: string): Buffer | undefined {
  const p = typeof f === "number" ? f : cstr(f);
  const n = cstr(name);
  const get = (buf: Buffer | null, size: number) =>
    Number(typeof p === "number" ? libc.fgetxattr(p, n, buf, size) : libc.lgetxattr(p, n, buf, size));
  for (;;) {
    const size = get(null, 0);
    if (size < 0) {
      const e = errno();
      if (e === Errno.ENODATA) return undefined;
      throw new SysError(`get xattr ${name} of ${describeRef(f)}`, e);
    }
    const buf = Buffer.alloc(size);
    const got = get(size ? buf : null, size);
    if (got < 0 && errno() === Errno.ERANGE) continue;
    check(got, () => `get xattr ${name} of ${describeRef(f)}`);
    return buf.subarray(0, got);
  }
}

/** Sets extended attribute `name` of `f`. */
export function setXattr(f: FileRef, name: string, value: Uint8Array): void {
  const v = value.length ? value : null;
  const r = typeof f === "number" ? libc.fsetxattr(f, cstr(name), v, value.length, 0) : libc.lsetxattr(cstr(f), cstr(name), v, value.length, 0);
  check(r, () => `set xattr ${name} on ${describeRef(f)}`);
}

/** Removes extended attribute `name` of `path` (not of a symlink's target); false when it had none. */
export function removeXattr(path: string, name: string): boolean {
  if (libc.lremovexattr(cstr(path), cstr(name)) === 0) return true;
  const e = errno();
  if (e === Errno.ENODATA) return false;
  throw new SysError(`remove xattr ${name} of ${path}`, e);
}

/** Copies every extended attribute of `src` to `dst`; `onError` decides about each failure. */
export function copyXattrs(src: FileRef, dst: FileRef, onError: (name: string, err: SysError) => void): void {
  for (const name of listXattrs(src)) {
    const value = getXattr(src, name);
    if (value === undefined) continue;
    try {
      setXattr(dst, name, value);
    } catch (err) {
      if (err instanceof SysError) onError(name, err);
      else throw err;
    }
  }
}

/** A flock(2) on a file or directory, held until {@link FileLock.release}. */
export interface FileLock {
  release(): void;
}

/** How {@link lockPath} takes its lock. */
export interface LockOptions {
  /** Wait for the lock (default); false returns undefined when another holder has it. */
  wait?: boolean;
  /** A shared lock, which any number of holders may have at once; exclusive by default. */
  shared?: boolean;
  /** Create the file (mode 0600) when it is missing. */
  create?: boolean;
}

/**
 * Takes a flock on `path` (exclusive unless `shared`). With `wait` false, returns undefined when
 * another holder has a conflicting lock.
 */
export function lockPath(path: string, opts: LockOptions = {}): FileLock | undefined {
  const fd = check(libc.open(cstr(path), O.RDONLY | O.CLOEXEC | (opts.create ? O.CREAT : 0), 0o600), () => `open ${path}`);
  if (!flockFd(fd, path, opts)) return undefined;
  return {
    release() {
      libc.flock(fd, LOCK_UN);
      libc.close(fd);
    },
  };
}

/**
 * A new directory `<prefix>XXXXXX`, exclusively locked: a cleanup takes a directory of its kind
 * only when it is unlocked, a crash's leftover. A cleanup that is not kept out by a lock of its
 * own may take it in the moment before the lock: then another is made. If the lock fails, the
 * directory (made here, never locked) is removed, and the lock's failure is what is thrown.
 */
export function makeLockedTempDir(prefix: string): { path: string; lock: FileLock } {
  for (;;) {
    const path = makeTempDir(prefix);
    try {
      return { path, lock: lockPath(path)! };
    } catch (err) {
      if (err instanceof SysError && err.errno === Errno.ENOENT) continue; // taken meanwhile
      try {
        removeDir(path);
      } catch {
        // Left to cleanup: unlocked, it is a leftover.
      }
      throw err;
    }
  }
}

/**
 * An exclusive lock on a file that exists only while it is held: made when taken, unlinked when
 * released, so locks on ever new names leave nothing behind. A waiter that wakes holding a file
 * already unlinked (or replaced) by the holder before it tries again on the new one.
 */
export function lockEphemeral(path: string, wait = true): FileLock | undefined {
  for (;;) {
    const fd = check(libc.open(cstr(path), O.RDONLY | O.CLOEXEC | O.CREAT, 0o600), () => `open ${path}`);
    if (!flockFd(fd, path, { wait })) return undefined;
    let current: bigint | undefined;
    let held: PathStat;
    try {
      current = statPath(path)?.ino;
      held = statFd(fd);
      // A group's file (lockEphemeralMany) whose holder died without unlinking its names, as no
      // live one would be locked here: this name goes, to be locked anew on a file of its own.
      if (current === held.ino && held.nlink > 1) removeFile(path);
    } catch (err) {
      libc.close(fd);
      throw err;
    }
    // Still the file at `path`, and not a dead group's just taken back: the lock is held.
    if (current === held.ino && held.nlink <= 1) {
      return {
        release() {
          // Unlinked while still locked: whoever opens the name next gets a new file.
          libc.unlinkat(AT.FDCWD, cstr(path), 0);
          libc.close(fd);
        },
      };
    }
    libc.close(fd);
  }
}

/** Locks taken together by {@link lockEphemeralMany}: the names held, released as one. */
export interface GroupLock extends FileLock {
  readonly names: string[];
}

/**
 * Exclusive locks, as {@link lockEphemeral} takes, on many `names` in directory `dir` at once,
 * sharing one inode: a file without a name (O.TMPFILE), locked and then linked under each name.
 * A lock of its own costs a new inode, which on ext4 without a journal skips every inode freed in
 * the last seconds: after a removal of thousands, taking thousands of locks took seconds. A name
 * another holder has is locked on its own: waited for, or unless `wait` left out. The names of a
 * holder that died stay linked to its file, until {@link lockEphemeral} takes each for its own.
 */
export function lockEphemeralMany(dir: string, names: readonly string[], wait: boolean): GroupLock {
  const own: FileLock[] = [];
  const linked: string[] = [];
  const held: string[] = [];
  let fd = libc.open(cstr(dir), O.TMPFILE | O.RDWR | O.CLOEXEC, 0o600);
  if (fd >= 0 && libc.flock(fd, LOCK_EX | LOCK_NB) !== 0) fd = (libc.close(fd), -1);
  // Without O.TMPFILE (an older filesystem) or a link to it, each name is locked on its own.
  let group = fd >= 0 ? cstr(`/proc/self/fd/${fd}`) : undefined;
  const release = () => {
    for (const name of linked) libc.unlinkat(AT.FDCWD, cstr(`${dir}/${name}`), 0);
    if (fd >= 0) libc.close(fd); // the group's lock goes with its descriptor
    for (const lock of own) lock.release();
  };
  try {
    for (const name of names) {
      const path = `${dir}/${name}`;
      // Locked from the moment it has the name: whoever opens the name then waits for the group.
      if (group && libc.linkat(AT.FDCWD, group, AT.FDCWD, cstr(path), AT.SYMLINK_FOLLOW) === 0) linked.push(name);
      else {
        if (group && errno() !== Errno.EEXIST) group = undefined; // another holder's name is EEXIST
        const lock = lockEphemeral(path, wait);
        if (!lock) continue;
        own.push(lock);
      }
      held.push(name);
    }
  } catch (err) {
    release();
    throw err;
  }
  return { names: held, release };
}

/** flock(2) of `fd` as `opts` say; false when it would block and `wait` is false (`fd` closed then). */
function flockFd(fd: number, path: string, opts: LockOptions): boolean {
  const r = retry(() => libc.flock(fd, (opts.shared ? LOCK_SH : LOCK_EX) | (opts.wait === false ? LOCK_NB : 0)));
  if (r >= 0) return true;
  const e = errno();
  libc.close(fd);
  if (e === Errno.EAGAIN) return false; // EWOULDBLOCK: another holder has it
  throw new SysError(`lock ${path}`, e);
}

/** fsync(2) of a directory, so that renames and creations inside it are durable. */
export function fsyncDir(path: string): void {
  withDir(path, (fd) => check(libc.fsync(fd), () => `fsync ${path}`));
}

/** Filesystem magic numbers of statfs(2) that stor tells apart. */
export const FS_MAGIC = {
  ext4: 0xef53,
  xfs: 0x58465342,
  btrfs: 0x9123683e,
  tmpfs: 0x01021994,
  overlay: 0x794c7630,
  nfs: 0x6969,
  zfs: 0x2fc12fc1,
} as const;

/** statfs(2) of the filesystem holding `path`: struct statfs, 120 bytes on 64-bit, as 15 words. */
function statFilesystem(path: string): BigInt64Array {
  const buf = new BigInt64Array(15);
  check(libc.statfs(cstr(path), buf), () => `statfs ${path}`);
  return buf;
}

/** The f_type (filesystem magic) of the filesystem holding `path`. */
export function filesystemType(path: string): number {
  return Number(statFilesystem(path)[0]);
}

/** The block size (f_bsize) of the filesystem holding `path`: the unit it allocates in. */
export function filesystemBlockSize(path: string): number {
  return Number(statFilesystem(path)[1]);
}

/**
 * Gives the file `path` (made with `mode` if missing) `bytes` of disk of its own, fallocate(2):
 * the blocks are taken now, though nothing is written to them.
 */
export function allocateFile(path: string, bytes: number, mode: number): void {
  const fd = check(libc.open(cstr(path), O.WRONLY | O.CREAT | O.CLOEXEC, mode), () => `open ${path}`);
  try {
    check(retry(() => libc.fallocate(fd, 0, 0, bytes)), () => `fallocate ${path}`);
  } finally {
    libc.close(fd);
  }
}
