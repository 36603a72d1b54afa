/**
 * Copies a directory tree with everything a root filesystem needs: file types (regular,
 * directory, symlink, device, fifo, socket), hardlinks as hardlinks, owner, mode with
 * setuid/setgid/sticky, nanosecond timestamps and extended attributes. File data goes through a
 * reflink where the filesystem can share extents, else copy_file_range. Paths go as bytes, so
 * names and link targets that are not UTF-8 are copied as they are.
 *
 * The walk makes everything in order, regular files too while reflinks work. Where they do not
 * (the data itself is copied), it lists the rest of the regular files instead, and those are
 * copied after the walk: for a large copy by this thread and a second one (copyThread.ts), both
 * taking files from a shared counter. Directories get their times last, deepest first, once
 * nothing more is made in them.
 */
import { childCPath, showPath } from "../fileName.ts";
import { inInodeOrder, listDirBytes } from "../sys/dirent.ts";
import { copyData, copyXattrs, lchown, mknod, setTimesFrom, type CopyState } from "../sys/file.ts";
import { cstr, Errno, SysError } from "../sys/libc.ts";
import { O } from "../sys/openat2.ts";
import { mountsUnder } from "../sys/mountinfo.ts";
import { chmodFd, chmodPath, chownFd, closeFd, linkPath, makeDir, openPath, readLink, realPath, statPath, symlinkPath, type PathStat } from "../sys/pathCalls.ts";
import { join, relative } from "../path.ts";
import { helperThreadsAllowed } from "./helperThreads.ts";
import { startPrefetch, type Prefetch } from "./prefetchThread.ts";
import { asCreated, inherited, type AsCreated, type Inherited } from "./newFiles.ts";
import { treeCounter } from "./treeProgress.ts";


/** Files left from which a second thread shares a copy: starting one takes 10–20 ms. */
const PARALLEL_FILES = 2000;

/** Entries walked between two looks at whether a thread should read ahead (./prefetchThread.ts). */
const PREFETCH_AFTER = 1000;

/** The average lstat of the source (ms) above which its inodes are taken to come from the disk. */
const SLOW_STAT_MS = 0.02;

/**
 * A regular file to copy, with what of its stat the copy sets. Paths here are C paths (bytes and
 * a NUL, see childCPath): each is built once and handed to every call as it is.
 */
export interface FileJob {
  s: Uint8Array;
  d: Uint8Array;
  size: number;
  blocks: number;
  uid: number;
  gid: number;
  mode: number;
  /** atime and mtime as utimensat takes them (PathStat's `times`). */
  times: Uint8Array;
  /** What the new file has already of owner and mode, made with `mode & 0o777` (see newFiles.ts). */
  has: AsCreated;
}

/** Copies the contents and metadata of directory `src` onto the existing empty directory `dst`. */
export function copyTree(src: string, dst: string): void {
  const [s, d] = [cstr(src), cstr(dst)];
  // Every directory below is made by this copy, so passes on what `dst` does.
  const fd = openPath(d, O.RDONLY | O.DIRECTORY);
  let passes: Inherited;
  try {
    passes = inherited(fd);
  } finally {
    closeFd(fd);
  }
  const walk: Walk = { state: { reflink: true }, files: [], dirs: [], links: new Map(), count: treeCounter(), passes, root: s, seen: 0, statMs: 0, mayPrefetch: helperThreadsAllowed(), src };
  const st = lstat(s);
  try {
    copyChildren(s, d, walk);
  } finally {
    walk.prefetch?.stop();
  }
  copyFiles(walk.files, walk.count);
  for (const [ds, dd, dst] of walk.dirs) finish(ds, dd, dst, passes);
  finish(s, d, st, undefined); // made by the caller, not by this copy
}

interface Walk {
  /** The walking thread's copy state: whether reflinks still work. */
  state: CopyState;
  /** The regular files left for after the walk, once reflinks are known not to work. */
  files: FileJob[];
  /** Directories made, deepest first: finished once every file is in. */
  dirs: [Uint8Array, Uint8Array, PathStat][];
  /** First copy of each multiply-linked inode, by `dev:ino`. */
  links: Map<string, Uint8Array>;
  /** Told of each entry done, with its bytes of data (the listed files' as they are copied). */
  count: (bytes: number) => void;
  /** What the directories of the copy pass on to what is made in them. */
  passes: Inherited;
  /** The tree copied, and how many of its entries the walk has seen. */
  root: Uint8Array;
  seen: number;
  /** Whether this thread may start helper threads, a read-ahead among them. */
  mayPrefetch: boolean;
  /** The thread reading ahead of the walk, once the walk was found waiting on the disk. */
  prefetch?: Prefetch;
  /** Time (ms) the walk's lstats took since it last asked {@link sourceOnDisk}. */
  statMs: number;
  /** The tree's path, as the caller gave it. */
  src: string;
  /** What {@link mountPointsBelow} found, where the kernel does not mark mount roots. */
  mountPoints?: Map<string, string>;
}

/**
 * Whether `s` (whose lstat is `st`) has something mounted on it. The copy stays on the tree's own
 * filesystem, as `cp -ax` does: what is mounted inside (a bind of a host directory or file, a
 * tmpfs) is no part of the snapshot, and data cannot be linked or copied by range across
 * filesystems. The stat the walk makes says so (STATX_ATTR_MOUNT_ROOT, Linux 5.8); on an older
 * kernel, mountinfo does.
 */
function mountedOn(s: Uint8Array, st: PathStat, walk: Walk): boolean {
  const said = st.isMountRoot;
  if (said !== undefined) return said;
  walk.mountPoints ??= mountPointsBelow(walk.src);
  return walk.mountPoints.size > 0 && walk.mountPoints.get(showPath(s)) === `${st.dev}:${st.ino}`;
}

/**
 * The paths below `src` that something is mounted on, as the walk builds them, each with the
 * `dev:ino` of what is mounted there. The device alone would not tell a bind of the same
 * filesystem; a path alone, a directory that merely shares a mount point's name.
 */
function mountPointsBelow(src: string): Map<string, string> {
  const real = realPath(src);
  const out = new Map<string, string>();
  for (const m of mountsUnder(real)) {
    if (m.mountPoint === real) continue;
    const st = statPath(m.mountPoint);
    if (st) out.set(join(src, relative(real, m.mountPoint)), `${st.dev}:${st.ino}`);
  }
  return out;
}

/**
 * Whether the walk's lstats of the source took more than {@link SLOW_STAT_MS} each on average
 * since it last asked: the inodes come from the disk, with a cold cache. Then a thread reading
 * ahead pays (XFS, 26,000 entries: 1.12–1.21 s without, 0.86–0.95 s with); with the source in the
 * cache it would only take CPU from the walk on a two-core machine. (Waiting as a whole is no
 * sign: on XFS, the destination's log can make the walk wait with the source cached.)
 */
function sourceOnDisk(walk: Walk): boolean {
  const slow = walk.statMs > PREFETCH_AFTER * SLOW_STAT_MS;
  walk.statMs = 0;
  return slow;
}

function copyChildren(srcDir: Uint8Array, dstDir: Uint8Array, walk: Walk): void {
  // Names stay bytes from the directory listing to the calls: never decoded, never encoded again.
  // In inode order, as cp and the prefetch thread read a directory.
  for (const { name } of inInodeOrder(listDirBytes(srcDir, false))) {
    // Timed only while a read-ahead may still start: not on a thread that starts none, nor after.
    const timed = walk.mayPrefetch && !walk.prefetch;
    if (timed && ++walk.seen % PREFETCH_AFTER === 0 && sourceOnDisk(walk)) walk.prefetch = startPrefetch(walk.root);
    const s = childCPath(srcDir, name);
    const d = childCPath(dstDir, name);
    const start = timed ? performance.now() : 0;
    const st = lstat(s);
    if (timed) walk.statMs += performance.now() - start;
    if (!st.isFile) walk.count(0);
    if (!st.isDirectory && st.nlink > 1) {
      const id = `${st.dev}:${st.ino}`;
      const first = walk.links.get(id);
      if (first !== undefined) {
        linkPath(first, d);
        if (st.isFile) walk.count(0);
        continue;
      }
      walk.links.set(id, d);
    }
    if (st.isDirectory) {
      if (!makeDir(d, 0o700)) throw new SysError(`mkdir ${showPath(d)}`, Errno.EEXIST);
      if (!mountedOn(s, st, walk)) copyChildren(s, d, walk);
      walk.dirs.push([s, d, st]);
      continue;
    }
    if (st.isFile && !mountedOn(s, st, walk)) {
      // Left for after the walk once reflinks failed; not a hardlinked file, whose later names link to it.
      if (!walk.state.reflink && st.nlink === 1) walk.files.push(fileJob(s, d, st, walk.passes));
      else {
        copyFile(fileJob(s, d, st, walk.passes), walk.state);
        walk.count(st.size);
      }
      continue;
    }
    if (st.isSymbolicLink) symlinkPath(readLink(s), d);
    else mknod(d, st.type | st.mode, st.rdev); // devices, fifos, sockets; a file something is mounted on, empty
    finish(s, d, st, walk.passes);
  }
}

/** lstat of `path`, which the walk found: gone meanwhile is an error. */
function lstat(path: Uint8Array): PathStat {
  const st = statPath(path, false);
  if (!st) throw new SysError(`lstat ${showPath(path)}`, Errno.ENOENT);
  return st;
}

function fileJob(s: Uint8Array, d: Uint8Array, st: PathStat, passes: Inherited): FileJob {
  const has = asCreated(passes, st.uid, st.gid, st.mode & 0o7777);
  return { s, d, size: st.size, blocks: st.blocks, uid: st.uid, gid: st.gid, mode: st.mode, times: st.times, has };
}

/**
 * Copies `files`, whose data is copied (no reflink). With many of them a second thread shares the
 * work: it reads and writes while this one waits on the disk (ext4, cold cache: 0.75–0.98× the
 * time of cp -a in eight runs, against 1.11× alone). Reflinks never get here: XFS serializes them,
 * and two threads took as long as one, with half again the CPU.
 */
function copyFiles(files: FileJob[], count: (bytes: number) => void): void {
  if (files.length < PARALLEL_FILES || !helperThreadsAllowed()) {
    const state: CopyState = { reflink: false };
    for (const f of files) {
      copyFile(f, state);
      count(f.size);
    }
    return;
  }
  const { startCopyThread } = require("./copyThread.ts") as typeof import("./copyThread.ts");
  const second = startCopyThread(files);
  // Files are taken in order: those below the counter are done or being copied, by either thread.
  let counted = 0;
  const countTaken = (upTo: number) => {
    for (; counted < Math.min(upTo, files.length); counted++) count(files[counted]!.size);
  };
  let done = false;
  try {
    takeFiles(files.length, (k) => files[k]!, second.next, second.failed, () => countTaken(Atomics.load(second.next, 0)));
    done = true;
  } finally {
    second.join(!done);
  }
  countTaken(files.length);
}

/**
 * Files a thread takes at a time. Consecutive files are mostly in one directory, and two threads
 * creating files in the same directory wait on its lock: on XFS, taking one at a time made the
 * copy no faster than one thread's.
 */
const TAKE = 64;

/**
 * Copies the files (`count` of them, file `k` being `job(k)`) whose indexes it takes from `next`
 * (an Int32Array whose slot 0 is the shared counter), {@link TAKE} at a time, until none is left
 * or `failed()` says the other thread failed; `onFile` is called after each.
 */
export function takeFiles(count: number, job: (k: number) => FileJob, next: Int32Array, failed: () => boolean, onFile?: () => void): void {
  const state: CopyState = { reflink: false }; // files are listed for threads only once reflinks failed
  for (let i = Atomics.add(next, 0, TAKE); i < count; i = Atomics.add(next, 0, TAKE)) {
    // Checked before each file: once the other thread failed, the copy is thrown away.
    for (let k = i; k < Math.min(i + TAKE, count); k++) {
      if (failed()) return;
      copyFile(job(k), state);
      onFile?.();
    }
  }
}

function copyFile(f: FileJob, state: CopyState): void {
  // Everything through the two descriptors: no path is looked up again.
  const src = openPath(f.s, O.RDONLY | O.NOFOLLOW);
  try {
    // Made with its mode, in a directory of this copy no one else can enter yet (0700 until finished).
    const dst = openPath(f.d, O.WRONLY | O.CREAT | O.EXCL, f.mode & 0o777);
    try {
      copyData(src, dst, f.size, f.blocks * 512, state, () => `copy ${showPath(f.s)}`);
      // Only what the new file does not have already: two of the ten calls a small file costs.
      if (!f.has.owner) chownFd(dst, f.uid, f.gid);
      if (!f.has.mode) chmodFd(dst, f.mode & 0o7777); // after the chown, which clears setuid and setgid
      copyXattrs(src, dst, xattrError); // after chown, which clears security.capability
      setTimesFrom(dst, f);
    } finally {
      closeFd(dst);
    }
  } finally {
    closeFd(src);
  }
}

/**
 * Owner, mode, xattrs and times, in the order that keeps each (times last, after the contents);
 * the owner only when it is not already that of `d`, made by this copy in a directory that
 * `passes` (undefined: not made by this copy).
 */
function finish(s: Uint8Array, d: Uint8Array, st: PathStat, passes: Inherited | undefined): void {
  if (!passes || !asCreated(passes, st.uid, st.gid, 0).owner) lchown(d, st.uid, st.gid);
  if (!st.isSymbolicLink) chmodPath(d, st.mode);
  copyXattrs(s, d, xattrError);
  setTimesFrom(d, st);
}

function xattrError(_name: string, err: SysError): void {
  // A target filesystem without that namespace (EOPNOTSUPP) cannot hold it; anything else is a failure.
  if (err.errno !== 95) throw err;
}
