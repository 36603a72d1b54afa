/**
 * btrfs subvolumes through the kernel's ioctls (linux/btrfs.h), as the `btrfs` command makes
 * them, without it: create, snapshot (O(1) whatever the tree's size), the read-only flag,
 * destroy, and a subvolume's usage from its quota group when quotas are on.
 */
import { ptr } from "bun:ffi";
import { basename, dirname, join } from "../path.ts";
import { decodeName, encodeName } from "../fileName.ts";
import { withDir, withDirAt } from "./dirent.ts";
import { removeDir, statPath } from "./pathCalls.ts";
import { O, RESOLVE, mustOpenat2 } from "./openat2.ts";
import { setTimesFrom } from "./file.ts";
import { check, Errno, errno, libc, SysError } from "./libc.ts";


// _IOW/_IOR/_IOWR(0x94, nr, size): direction << 30 | size << 16 | 0x94 << 8 | nr.
const ioc = (dir: number, nr: number, size: number) => ((dir << 30) | (size << 16) | (0x94 << 8) | nr) >>> 0;
const W = 1;
const R = 2;
/** struct btrfs_ioctl_vol_args and _v2 are 4096 bytes each. */
const ARGS_SIZE = 4096;
const BTRFS_IOC_SYNC = ioc(0, 8, 0);
const BTRFS_IOC_SUBVOL_CREATE = ioc(W, 14, ARGS_SIZE);
const BTRFS_IOC_SNAP_DESTROY = ioc(W, 15, ARGS_SIZE);
const BTRFS_IOC_TREE_SEARCH_V2 = ioc(R | W, 17, 112);
const BTRFS_IOC_INO_LOOKUP = ioc(R | W, 18, ARGS_SIZE);
const BTRFS_IOC_SNAP_CREATE_V2 = ioc(W, 23, ARGS_SIZE);
const BTRFS_IOC_SUBVOL_GETFLAGS = ioc(R, 25, 8);
const BTRFS_IOC_SUBVOL_SETFLAGS = ioc(W, 26, 8);
const BTRFS_SUBVOL_RDONLY = 1n << 1n;
/** vol_args: fd s64, name[4088]. vol_args_v2: fd s64, transid u64, flags u64, union[32], name[4040]. */
const NAME_OFFSET = 8;
const NAME_OFFSET_V2 = 56;
const FLAGS_OFFSET_V2 = 16;

/** The inode number of every subvolume's root directory (BTRFS_FIRST_FREE_OBJECTID). */
const SUBVOLUME_ROOT_INO = 256n;
const BTRFS_QUOTA_TREE_OBJECTID = 8n;
const BTRFS_QGROUP_INFO_KEY = 242;
const BTRFS_INODE_ITEM_KEY = 1;


/** An args buffer with file name `name` (at most NAME_MAX bytes: it fits) at `offset`, NUL-terminated. */
function args(name: string | Uint8Array, offset: number): Buffer {
  const buf = Buffer.alloc(ARGS_SIZE);
  buf.set((typeof name === "string" ? encodeName(name) : name).subarray(0, ARGS_SIZE - offset - 1), offset);
  return buf;
}

/** Creates an empty subvolume at `path` (its parent directory exists). */
export function createSubvolume(path: string): void {
  withDir(dirname(path), (parent) =>
    check(libc.ioctl(parent, BTRFS_IOC_SUBVOL_CREATE, ptr(args(basename(path), NAME_OFFSET))), () => `create subvolume ${path}`),
  );
}

/**
 * Makes `path` a snapshot of subvolume `source`, read-only when `readOnly`, with the subvolumes
 * made inside it (a container may make its own): the kernel leaves an empty directory where each
 * was, so each is snapshotted there in turn, as Docker's and containerd-storage's btrfs drivers
 * do. Without them a child would lack their files, and its diff would say they were deleted.
 */
export function snapshotSubvolume(source: string, path: string, readOnly: boolean): void {
  const nested = withDir(source, (src) => {
    const inside = subvolumesIn(src, source);
    withDir(dirname(path), (parent) => {
      const a = args(basename(path), NAME_OFFSET_V2);
      a.writeBigInt64LE(BigInt(src), 0);
      // Read-only only once the nested ones are in.
      if (readOnly && inside.length === 0) a.writeBigUInt64LE(BTRFS_SUBVOL_RDONLY, FLAGS_OFFSET_V2);
      check(libc.ioctl(parent, BTRFS_IOC_SNAP_CREATE_V2, ptr(a)), () => `snapshot subvolume ${source} as ${path}`);
    });
    return inside;
  });
  if (nested.length === 0) return;
  for (const rel of nested) {
    const target = join(path, rel);
    removeDir(target); // the empty directory the snapshot has in its place
    snapshotSubvolume(join(source, rel), target, readOnly);
    // Its directory as the source's: the copy is no change to it.
    setTimesFrom(dirname(target), statPath(dirname(join(source, rel)), false)!);
  }
  if (readOnly) setSubvolumeReadOnly(path, true);
}

/** Makes subvolume `path` read-only, and the subvolumes made inside it with it. */
export function sealSubvolume(path: string): void {
  for (const rel of withDir(path, (fd) => subvolumesIn(fd, path))) sealSubvolume(join(path, rel));
  setSubvolumeReadOnly(path, true);
}

const BTRFS_ROOT_TREE_OBJECTID = 1n;
const BTRFS_ROOT_REF_KEY = 156;

/**
 * The subvolumes whose entries are in the subvolume of open directory `fd` (at `path`), not
 * theirs, each as its path below it: from the root tree's refs, so that a subvolume without any
 * costs one search, not a walk of its tree.
 */
function subvolumesIn(fd: number, path: string): string[] {
  const id = subvolumeId(fd, path);
  const out: string[] = [];
  const range = { minObjectid: id, maxObjectid: id, type: BTRFS_ROOT_REF_KEY, minOffset: 0n, maxOffset: U64_MAX };
  search(fd, BTRFS_ROOT_TREE_OBJECTID, range, (item) => {
    // struct btrfs_root_ref: dirid u64, sequence u64, name_len u16, then the name.
    const dir = item.readBigUInt64LE(0);
    const name = item.subarray(18, 18 + item.readUInt16LE(16));
    out.push(`${dir === SUBVOLUME_ROOT_INO ? "" : directoryPath(fd, id, dir, path)}${decodeName(name)}`);
  }, 1 << 16);
  return out;
}

/** The path, ending in `/`, of directory inode `dir` of subvolume `tree` (open as `fd`, at `path`). */
function directoryPath(fd: number, tree: bigint, dir: bigint, path: string): string {
  const a = Buffer.alloc(ARGS_SIZE); // struct btrfs_ioctl_ino_lookup_args: treeid, objectid, name
  a.writeBigUInt64LE(tree, 0);
  a.writeBigUInt64LE(dir, 8);
  check(libc.ioctl(fd, BTRFS_IOC_INO_LOOKUP, ptr(a)), () => `look up directory ${dir} in subvolume ${path}`);
  return decodeName(a.subarray(16, a.indexOf(0, 16)));
}

/** Sets or clears the read-only flag of subvolume `path`. */
export function setSubvolumeReadOnly(path: string, readOnly: boolean): void {
  withDir(path, (fd) => setReadOnlyFd(fd, readOnly, path));
}

/** {@link setSubvolumeReadOnly} of the subvolume open as `fd` (at `path`). */
function setReadOnlyFd(fd: number, readOnly: boolean, path: string): void {
  const flags = new BigUint64Array(1);
  check(libc.ioctl(fd, BTRFS_IOC_SUBVOL_GETFLAGS, ptr(flags)), () => `get flags of subvolume ${path}`);
  const want = readOnly ? flags[0]! | BTRFS_SUBVOL_RDONLY : flags[0]! & ~BTRFS_SUBVOL_RDONLY;
  if (want === flags[0]) return;
  flags[0] = want;
  check(libc.ioctl(fd, BTRFS_IOC_SUBVOL_SETFLAGS, ptr(flags)), () => `set flags of subvolume ${path}`);
}

/** True when `path` is the root directory of a btrfs subvolume (not a symlink, not a plain directory). */
export function isSubvolume(path: string | Uint8Array): boolean {
  let st;
  try {
    st = statPath(path, false); // undefined when nothing is there
  } catch (err) {
    if (err instanceof SysError && err.errno === Errno.ENOTDIR) return false; // a file on the way
    throw err;
  }
  return st?.isDirectory === true && st.ino === SUBVOLUME_ROOT_INO;
}

/**
 * Destroys subvolume `path` with everything in it. Subvolumes made inside it (a container may
 * make its own) would make the kernel refuse with ENOTEMPTY: they are destroyed first.
 */
export function destroySubvolume(path: string): void {
  withDir(dirname(path), (parent) => destroySubvolumeAt(parent, basename(path), path));
}

/**
 * {@link destroySubvolume} of subvolume `name` in directory `dir` (a descriptor; `shown` names it
 * in errors). The nested subvolumes are found below it by descriptor, never through a symlink: a
 * tree a container writes in stays the tree destroyed.
 */
export function destroySubvolumeAt(dir: number, name: string | Uint8Array, shown: string): void {
  const destroy = () => libc.ioctl(dir, BTRFS_IOC_SNAP_DESTROY, ptr(args(name, NAME_OFFSET)));
  if (destroy() === 0) return;
  const e = errno();
  if (e !== Errno.ENOTEMPTY) throw new SysError(`destroy subvolume ${shown}`, e);
  const emptied = withDirAt(
    dir,
    name,
    (fd) => {
      // A read-only subvolume's entries cannot be removed, the nested subvolumes' included.
      setReadOnlyFd(fd, false, shown);
      for (const rel of subvolumesIn(fd, shown)) {
        const at = rel.lastIndexOf("/");
        const parent: number = at < 0 ? fd : mustOpenat2(fd, rel.slice(0, at), O.RDONLY | O.DIRECTORY | O.CLOEXEC, RESOLVE.BENEATH | RESOLVE.NO_SYMLINKS, () => `open ${join(shown, rel)}`);
        try {
          destroySubvolumeAt(parent, rel.slice(at + 1), join(shown, rel));
        } finally {
          if (parent !== fd) libc.close(parent);
        }
      }
      return true;
    },
    () => `open ${shown}`,
  );
  if (!emptied) throw new SysError(`destroy subvolume ${shown}`, e);
  check(destroy(), () => `destroy subvolume ${shown}`);
}

/**
 * The bytes only subvolume `path` holds (its quota group's exclusive bytes) and its inode count,
 * read from the filesystem's trees; undefined when quotas are off. Quota groups are counted at
 * each transaction commit: the filesystem is synced first, so that they include recent writes.
 */
export function subvolumeUsage(path: string): { size: number; inodes: number } | undefined {
  return withDir(path, (fd) => {
    const id = subvolumeId(fd, path);
    const exclusive = () => {
      let size: number | undefined;
      const found = search(fd, BTRFS_QUOTA_TREE_OBJECTID, { minObjectid: 0n, maxObjectid: 0n, type: BTRFS_QGROUP_INFO_KEY, minOffset: id, maxOffset: id }, (item) => {
        // struct btrfs_qgroup_info_item: generation, rfer, rfer_cmpr, excl, excl_cmpr (u64 each).
        size = Number(item.readBigUInt64LE(24));
      });
      return found ? size : undefined;
    };
    if (exclusive() === undefined) return undefined;
    check(libc.ioctl(fd, BTRFS_IOC_SYNC, 0), () => `sync ${path}`);
    const size = exclusive();
    if (size === undefined) return undefined;
    let inodes = 0;
    search(fd, id, { minObjectid: 0n, maxObjectid: U64_MAX, type: BTRFS_INODE_ITEM_KEY, minOffset: 0n, maxOffset: U64_MAX }, () => void inodes++);
    return { size, inodes };
  });
}

/** The id of the subvolume holding the open directory `fd`. */
function subvolumeId(fd: number, path: string): bigint {
  const a = Buffer.alloc(ARGS_SIZE); // struct btrfs_ioctl_ino_lookup_args: treeid, objectid, name
  a.writeBigUInt64LE(256n, 8);
  check(libc.ioctl(fd, BTRFS_IOC_INO_LOOKUP, ptr(a)), () => `look up subvolume of ${path}`);
  return a.readBigUInt64LE(0);
}

interface KeyRange {
  minObjectid: bigint;
  maxObjectid: bigint;
  type: number;
  minOffset: bigint;
  maxOffset: bigint;
}

/** Room for a few thousand items a call. */
const SEARCH_BUFFER = 1 << 20;
const U64_MAX = 0xffffffffffffffffn;

/**
 * BTRFS_IOC_TREE_SEARCH_V2 over the keys of `tree` from (minObjectid, type, minOffset) to
 * (maxObjectid, type, maxOffset), calling `onItem` with the data of each item of that type;
 * false when the tree does not exist (the quota tree, when quotas are off).
 */
function search(fd: number, tree: bigint, range: KeyRange, onItem: (item: Buffer) => void, bufferSize = SEARCH_BUFFER): boolean {
  // struct btrfs_ioctl_search_args_v2: search_key (104 bytes), buf_size u64, buf[].
  const a = Buffer.alloc(112 + bufferSize);
  // The kernel compares whole keys (objectid, type, offset): the next call starts after the last.
  let min = { objectid: range.minObjectid, type: range.type, offset: range.minOffset };
  for (;;) {
    a.fill(0, 0, 112);
    a.writeBigUInt64LE(tree, 0);
    a.writeBigUInt64LE(min.objectid, 8);
    a.writeBigUInt64LE(range.maxObjectid, 16);
    a.writeBigUInt64LE(min.offset, 24);
    a.writeBigUInt64LE(range.maxOffset, 32);
    a.writeBigUInt64LE(0n, 40); // transids: any
    a.writeBigUInt64LE(U64_MAX, 48);
    a.writeUInt32LE(min.type, 56);
    a.writeUInt32LE(range.type, 60);
    a.writeUInt32LE(0xffffffff, 64); // nr_items: as many as fit
    a.writeBigUInt64LE(BigInt(bufferSize), 104);
    if (libc.ioctl(fd, BTRFS_IOC_TREE_SEARCH_V2, ptr(a)) < 0) {
      const e = errno();
      if (e === Errno.ENOENT) return false;
      throw new SysError("search btrfs tree", e);
    }
    const n = a.readUInt32LE(64);
    if (n === 0) return true;
    let at = 112;
    for (let i = 0; i < n; i++) {
      // struct btrfs_ioctl_search_header: transid, objectid, offset (u64), type, len (u32).
      min = { objectid: a.readBigUInt64LE(at + 8), type: a.readUInt32LE(at + 24), offset: a.readBigUInt64LE(at + 16) };
      const len = a.readUInt32LE(at + 28);
      if (min.type === range.type && min.objectid >= range.minObjectid && min.objectid <= range.maxObjectid) onItem(a.subarray(at + 32, at + 32 + len));
      at += 32 + len;
    }
    if (min.offset < U64_MAX) min.offset++;
    else if (min.type < 255) min = { objectid: min.objectid, type: min.type + 1, offset: 0n };
    else if (min.objectid < range.maxObjectid) min = { objectid: min.objectid + 1n, type: 0, offset: 0n };
    else return true;
  }
}
