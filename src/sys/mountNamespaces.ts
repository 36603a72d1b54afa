/**
 * The mounts of the host's other mount namespaces: a container's, a service's with private mounts,
 * a shell's `unshare -m`. A tree mounted only there is as much in use as one mounted here, and
 * /proc/self/mountinfo does not show it.
 *
 * Read through the kernel's namespace iteration (the nsfs ioctls NS_MNT_GET_NEXT/PREV, Linux 6.12)
 * and listmount(2)/statmount(2) of a namespace by its id (6.11): calls a namespace and a mount, so
 * a host with hundreds of processes costs no more than one with ten. Older kernels: one process of
 * each namespace found in /proc, its mountinfo read.
 */
import { ptr } from "bun:ffi";
import { Errno, SysError, errno, libc } from "./libc.ts";
import { O } from "./openat2.ts";
import { closeFd, mountIdOf, openPath, readLink, readText, statFd } from "./pathCalls.ts";
import { mountPointsUsingTree, mountsUsing, parseMountInfo, readMountInfo, treePath, type MountInfo } from "./mountinfo.ts";

/** The mounts of one other mount namespace. */
export interface NamespaceMounts {
  /** The namespace as `readlink /proc/PID/ns/mnt` and lsns(8) name it: `mnt:[4026532281]`. */
  namespace: string;
  /**
   * Its mounts. Mount points are paths from that namespace's root, which may not be this one's;
   * device and root (the path inside the filesystem) mean the same everywhere.
   */
  mounts: MountInfo[];
}

// <linux/nsfs.h>: _IOR(0xb7, 10..12, struct mnt_ns_info { u32 size; u32 nr_mounts; u64 mnt_ns_id; })
const NS_MNT_GET_NEXT = 0x8010b70b;
const NS_MNT_GET_PREV = 0x8010b70c;
const MNT_NS_INFO_SIZE = 16;

const SYS_statmount = 457;
const SYS_listmount = 458;
/** struct mnt_id_req with mnt_ns_id (MNT_ID_REQ_SIZE_VER1): size, spare, mnt_id, param, mnt_ns_id. */
const MNT_ID_REQ_SIZE = 32;
const OVERLAYFS_SUPER_MAGIC = 0x794c7630;
const STATMOUNT_SB_BASIC = 0x1;
const STATMOUNT_MNT_BASIC = 0x2;
const STATMOUNT_MNT_ROOT = 0x8;
const STATMOUNT_MNT_POINT = 0x10;
const STATMOUNT_FS_TYPE = 0x20;
const STATMOUNT_MNT_OPTS = 0x80;
const STATMOUNT_MASK = STATMOUNT_SB_BASIC | STATMOUNT_MNT_BASIC | STATMOUNT_MNT_ROOT | STATMOUNT_MNT_POINT | STATMOUNT_FS_TYPE | STATMOUNT_MNT_OPTS;
/** Where struct statmount's strings begin (its fixed part is 512 bytes). */
const STATMOUNT_STRINGS = 512;

/**
 * Which mounts {@link otherNamespaceMounts} reads: overlays, and those of the filesystem on device
 * `major:minor`. Reading a mount whole costs more than the question of its device.
 */
export interface MountFilter {
  major: number;
  minor: number;
}

/**
 * The mounts of every mount namespace but this process's; given `only`, only the mounts it names
 * (a namespace with none of them is left out).
 */
export function otherNamespaceMounts(only?: MountFilter): NamespaceMounts[] {
  const found = namespacesByIoctl(only) ?? namespacesFromProc();
  if (!only) return found;
  // Loops: filter and map are JavaScript-implemented builtins that an rm would compile for this.
  const out: NamespaceMounts[] = [];
  for (const { namespace, mounts } of found) {
    const kept: MountInfo[] = [];
    const device = `${only.major}:${only.minor}`;
    for (const m of mounts) if (m.fsType === "overlay" || m.device === device) kept.push(m);
    if (kept.length > 0) out.push({ namespace, mounts: kept });
  }
  return out;
}

/** Through the nsfs ioctls and listmount/statmount; undefined where the kernel has them not. */
function namespacesByIoctl(only?: MountFilter): NamespaceMounts[] | undefined {
  const own = openPath("/proc/self/ns/mnt", O.RDONLY);
  const out: NamespaceMounts[] = [];
  const info = new Uint32Array(MNT_NS_INFO_SIZE / 4);
  let at = own;
  try {
    for (const request of [NS_MNT_GET_NEXT, NS_MNT_GET_PREV]) {
      at = own;
      for (;;) {
        info[0] = MNT_NS_INFO_SIZE;
        const next = libc.ioctl(at, request, Number(ptr(info)));
        const e = next < 0 ? errno() : 0;
        if (at !== own) closeFd(at);
        at = own;
        if (next < 0) {
          if (e === Errno.ENOENT) break; // the last one
          // Before Linux 6.12; or refused, as in a pid namespace of its own (a container): /proc then.
          if (e === Errno.ENOTTY || e === Errno.EINVAL || e === Errno.EPERM) return undefined;
          throw new SysError("look up the next mount namespace", e);
        }
        at = next;
        const mounts = namespaceMounts(u64(info, 2), only);
        if (mounts && mounts.length > 0) out.push({ namespace: `mnt:[${statFd(next).ino}]`, mounts });
      }
    }
  } finally {
    if (at !== own) closeFd(at); // a failure on the way
    closeFd(own);
  }
  return out;
}

/** The u64 at 32-bit index `i` of `a` (ids stay far below 2^53). */
const u64 = (a: Uint32Array, i: number) => a[i]! + a[i + 1]! * 2 ** 32;

/** struct mnt_id_req, filled for each call (calls are synchronous). */
const req = new Uint32Array(MNT_ID_REQ_SIZE / 4);

function request(ns: number, mntId: number, param: number): Uint32Array {
  req[0] = MNT_ID_REQ_SIZE;
  setU64(req, 2, mntId);
  setU64(req, 4, param);
  setU64(req, 6, ns);
  return req;
}

function setU64(a: Uint32Array, i: number, v: number): void {
  a[i] = v % 2 ** 32;
  a[i + 1] = Math.floor(v / 2 ** 32);
}

/**
 * The mounts of the namespace with id `ns`, by listmount and statmount; undefined when it has
 * gone. Given a device, only overlays and that device's mounts, each of the others asked only
 * what its device is.
 */
function namespaceMounts(ns: number, only?: MountFilter): MountInfo[] | undefined {
  const ids = listMounts(ns);
  if (!ids) return undefined;
  const out: MountInfo[] = [];
  for (const id of ids) {
    if (only) {
      const seen = statMountDevice(ns, id);
      // Gone meanwhile: asked again whole, which says so.
      if (seen && !seen.overlay && (seen.major !== only.major || seen.minor !== only.minor)) continue;
    }
    const m = statMount(ns, id);
    if (m) out.push(m);
  }
  return out;
}

/** The device of mount `id` of namespace `ns` (0: this process's), and whether it is an overlay; undefined when it has gone. */
function statMountDevice(ns: number, id: number): (MountFilter & { overlay: boolean }) | undefined {
  request(ns, id, STATMOUNT_SB_BASIC);
  if (Number(libc.syscall(SYS_statmount, Number(ptr(req)), Number(ptr(statBuffer)), statBuffer.length, 0, 0, 0)) !== 0) return undefined;
  const w = statWords;
  return { major: w[4]!, minor: w[5]!, overlay: w[6] === OVERLAYFS_SUPER_MAGIC };
}

/** The ids of every mount of namespace `ns`; undefined when it has gone, or may not be looked at. */
function listMounts(ns: number): number[] | undefined {
  const ids: number[] = [];
  const batch = new Uint32Array(2 * 512);
  for (let after = 0; ; ) {
    // LSMT_ROOT: the whole namespace, from its root.
    request(ns, 0, after).fill(0xffffffff, 2, 4);
    const n = Number(libc.syscall(SYS_listmount, Number(ptr(req)), Number(ptr(batch)), batch.length / 2, 0, 0, 0));
    if (n < 0) {
      const e = errno();
      if (e === Errno.ENOENT || e === Errno.EPERM) return undefined;
      throw new SysError(`list the mounts of mount namespace ${ns}`, e);
    }
    for (let i = 0; i < n; i++) ids.push(u64(batch, 2 * i));
    if (n < batch.length / 2) return ids;
    after = ids[ids.length - 1]!;
  }
}

let statBuffer = new Uint8Array(16 * 1024);
let statWords = new Uint32Array(statBuffer.buffer, 0, STATMOUNT_STRINGS / 4);
const decoder = new TextDecoder();

/** Mount `id` of namespace `ns`, as a mountinfo line would give it; undefined when it has gone. */
function statMount(ns: number, id: number): MountInfo | undefined {
  request(ns, id, STATMOUNT_MASK);
  for (;;) {
    const r = Number(libc.syscall(SYS_statmount, Number(ptr(req)), Number(ptr(statBuffer)), statBuffer.length, 0, 0, 0));
    if (r === 0) break;
    const e = errno();
    if (e === Errno.ENOENT) return undefined; // unmounted since the list
    // An overlay of many layers has long options.
    if (e !== Errno.EOVERFLOW || statBuffer.length >= 2 ** 24) throw new SysError(`stat mount ${id} of mount namespace ${ns}`, e);
    statBuffer = new Uint8Array(statBuffer.length * 4);
    statWords = new Uint32Array(statBuffer.buffer, 0, STATMOUNT_STRINGS / 4);
  }
  // struct statmount as 32-bit words: mask at 2, the device at 4 and 5, the magic at 6; strings'
  // offsets: options 1, type 9, root 26, mount point 27; ids at 10 and 12.
  const w = statWords;
  const overlay = w[6] === OVERLAYFS_SUPER_MAGIC;
  return {
    id: u64(w, 10),
    parent: u64(w, 12),
    device: `${w[4]}:${w[5]}`,
    root: text(w, 26, STATMOUNT_MNT_ROOT),
    mountPoint: text(w, 27, STATMOUNT_MNT_POINT),
    options: "",
    fsType: overlay ? "overlay" : text(w, 9, STATMOUNT_FS_TYPE),
    source: "",
    // As mountinfo's last field, escaped the same way; only an overlay's are asked of (its layers).
    superOptions: overlay ? text(w, 1, STATMOUNT_MNT_OPTS) : "",
  };
}

/** The string at offset word `at` of the struct statmount in `w`, if the kernel gave it (`bit` of the mask). */
function text(w: Uint32Array, at: number, bit: number): string {
  if ((w[2]! & bit) === 0) return "";
  const start = STATMOUNT_STRINGS + w[at]!;
  return decoder.decode(statBuffer.subarray(start, statBuffer.indexOf(0, start)));
}

/**
 * The device (as mountinfo gives it) of the filesystem the tree at `real` is on, as its
 * mount shows it (a stat's may differ: btrfs gives each subvolume one of its own); undefined where
 * the kernel cannot say (before Linux 6.8).
 */
function treeDevice(real: string): MountFilter | undefined {
  const id = mountIdOf(real);
  return id === undefined ? undefined : statMountDevice(0, id);
}

/**
 * Through /proc (exported for its test): the namespace of every process, and the mountinfo of one
 * process of each other one. A process that ends meanwhile is passed over.
 */
export function namespacesFromProc(): NamespaceMounts[] {
  const own = readNamespace("self");
  const seen = new Set([own]);
  const out: NamespaceMounts[] = [];
  const { readdirSync } = require("node:fs") as typeof import("node:fs");
  for (const pid of readdirSync("/proc")) {
    const c = pid.charCodeAt(0);
    if (c < 0x30 || c > 0x39) continue;
    const namespace = readNamespace(pid);
    if (namespace === undefined || seen.has(namespace)) continue;
    seen.add(namespace);
    const text = ofLiveProcess(() => readText(`/proc/${pid}/mountinfo`));
    if (text !== undefined) out.push({ namespace, mounts: parseMountInfo(text) });
  }
  return out;
}

function readNamespace(pid: string): string | undefined {
  return ofLiveProcess(() => new TextDecoder().decode(readLink(`/proc/${pid}/ns/mnt`)));
}

/**
 * What `read` reads of a process in /proc (exported for its test); undefined when the process has
 * ended (a zombie's mountinfo is EINVAL), or when this one may not look at it (EACCES: a process
 * of the host outside a container stor runs in).
 */
export function ofLiveProcess<T>(read: () => T | undefined): T | undefined {
  try {
    return read();
  } catch (err) {
    if (err instanceof SysError && (err.errno === Errno.ENOENT || err.errno === Errno.ESRCH || err.errno === Errno.EINVAL || err.errno === Errno.EACCES)) return undefined;
    throw err;
  }
}

/** What {@link whereMounted} looks at, read once for many trees: this namespace's mounts and the others'. */
export interface MountTable {
  here: MountInfo[];
  others: NamespaceMounts[];
}

/** The mounts of this namespace and of every other, now. */
export function readMountTable(): MountTable {
  return { here: readMountInfo(), others: otherNamespaceMounts() };
}

/**
 * Where the tree at `path` is in use, in this mount namespace and in every other: the mount
 * points of the mounts that use it (see mountsUsing), one of another namespace followed by the
 * namespace. Empty when nothing uses it: what a removal asks before it may pull the tree away.
 */
export function whereMounted(path: string, table?: MountTable): string[] {
  const real = treePath(path);
  if (real === undefined) return [];
  const points = mountPointsUsingTree(real, table?.here);
  if (points.length > 0) return points;
  // There only an overlay with a layer in the tree and a bind of (something in) the tree are
  // looked for: the mounts of the tree's filesystem and overlays. A mount on a directory in the
  // tree, that namespace's alone (not of the tree itself), is not.
  const device = table ? undefined : treeDevice(real);
  const others = table?.others ?? otherNamespaceMounts(device);
  if (others.length === 0) return points;
  const here = table?.here ?? readMountInfo();
  for (const { namespace, mounts } of others) {
    for (const m of mountsUsing(real, here, mounts)) points.push(`${m.mountPoint} (in mount namespace ${namespace})`);
  }
  return points;
}
