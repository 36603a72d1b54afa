/**
 * mount(2), umount2(2) and the new mount API (fsopen, fsconfig, fsmount, move_mount,
 * mount_setattr). Takes mounts in containerd's form: a type, a source and mount(8) options.
 */
import { relative } from "../path.ts";
import { ptr as ptrOf } from "bun:ffi";
import { AT, O } from "./openat2.ts";
import { libc, check, cstr, Errno, errno, SysError } from "./libc.ts";
import { statFd } from "./pathCalls.ts";

/** A mount as containerd describes it and `ctr snapshots mounts` prints it. */
export interface Mount {
  Type: string;
  Source: string;
  Options: string[];
}

const MS_RDONLY = 0x1;
const MS_REMOUNT = 0x20;
const MS_BIND = 0x1000;
const MS_REC = 0x4000;
const MS_PROPAGATION = 0x20000 | 0x40000 | 0x80000 | 0x100000;
const MNT_DETACH = 0x2;

const SYS_fsopen = 430;
const SYS_fsconfig = 431;
const SYS_fsmount = 432;
const SYS_move_mount = 429;
const SYS_mount_setattr = 442;
const SYS_open_tree = 428;
const OPEN_TREE_CLONE = 1;
const OPEN_TREE_CLOEXEC = 0o2000000;
const FSCONFIG_SET_FLAG = 0;
const FSCONFIG_SET_STRING = 1;
const FSCONFIG_CMD_CREATE = 6;
const MOVE_MOUNT_F_EMPTY_PATH = 0x4;
const MOUNT_ATTR_RDONLY = 0x1;
const PAGE_SIZE = 4096;

/** mount(8) option words that are flags, not filesystem data: [set, clear]. */
const FLAGS: Record<string, [number, number]> = {
  ro: [MS_RDONLY, 0], rw: [0, MS_RDONLY],
  nosuid: [0x2, 0], suid: [0, 0x2], nodev: [0x4, 0], dev: [0, 0x4], noexec: [0x8, 0], exec: [0, 0x8],
  sync: [0x10, 0], async: [0, 0x10], dirsync: [0x80, 0], remount: [MS_REMOUNT, 0],
  noatime: [0x400, 0], atime: [0, 0x400], nodiratime: [0x800, 0], diratime: [0, 0x800],
  relatime: [0x200000, 0], norelatime: [0, 0x200000], strictatime: [0x1000000, 0],
  bind: [MS_BIND, 0], rbind: [MS_BIND | MS_REC, 0],
  private: [0x40000, 0], rprivate: [0x40000 | MS_REC, 0], slave: [0x80000, 0], rslave: [0x80000 | MS_REC, 0],
  shared: [0x100000, 0], rshared: [0x100000 | MS_REC, 0], unbindable: [0x20000, 0],
  runbindable: [0x20000 | MS_REC, 0], defaults: [0, 0],
};

/** Splits mount(8) options into mount flags and the filesystem's data string. */
export function parseOptions(options: readonly string[]): { flags: number; data: string[] } {
  let flags = 0;
  const data: string[] = [];
  for (const o of options) {
    // The table's own words only: `constructor` or `__proto__` is data, for the filesystem to refuse.
    const f = Object.hasOwn(FLAGS, o) ? FLAGS[o] : undefined;
    if (f) flags = (flags | f[0]) & ~f[1];
    else data.push(o);
  }
  return { flags, data };
}

/** Set to `legacy` to mount long overlay options without the new mount API (for tests). */
const forceLegacy = () => process.env.STOR_MOUNT_API === "legacy";

/** A raw syscall; buffers are passed by address and stay alive for the call. */
function sys(nr: number, ...args: (number | bigint | Uint8Array | null)[]): number {
  const a = args.map((x) => (x === null ? 0 : x instanceof Uint8Array ? Number(ptrOf(x)) : Number(x)));
  while (a.length < 6) a.push(0);
  return Number(libc.syscall(nr, a[0]!, a[1]!, a[2]!, a[3]!, a[4]!, a[5]!));
}

/** Performs one mount on `target`, as containerd's mount.Mount does. */
export function mount(m: Mount, target: string): void {
  const { flags, data } = parseOptions(m.Options);
  const what = `mount ${m.Type} ${m.Source} on ${target}`;
  const joined = data.join(",");
  if (m.Type === "overlay" && (joined.length >= PAGE_SIZE || forceLegacy())) {
    return mountOverlayLong(m, data, flags, target, what);
  }
  const isBind = (flags & MS_BIND) !== 0;
  const type = isBind ? null : cstr(m.Type);
  const first = flags & ~MS_PROPAGATION & ~(isBind ? MS_RDONLY : 0);
  // A relative source (a bind's directory, a block device) is taken from /, as dockerd, whose
  // working directory is /, takes a volume's device: never from wherever the command runs.
  const absTarget = absolute(target);
  inDirectory("/", () => check(libc.mount(cstr(m.Source), cstr(absTarget), type, first, joined ? cstr(joined) : null), what));
  try {
    // A bind mount ignores MS_RDONLY: it takes a read-only remount of the new mount.
    if (isBind && flags & MS_RDONLY) makeReadOnly(target, (flags & MS_REC) !== 0, what);
    if (flags & MS_PROPAGATION) {
      check(libc.mount(null, cstr(target), null, flags & (MS_PROPAGATION | MS_REC), null), what);
    }
  } catch (err) {
    libc.umount2(cstr(target), MNT_DETACH);
    throw err;
  }
}

function makeReadOnly(target: string, recursive: boolean, what: string): void {
  if (recursive) {
    const attr = new BigUint64Array([BigInt(MOUNT_ATTR_RDONLY), 0n, 0n, 0n]);
    const r = sys(SYS_mount_setattr, AT.FDCWD, cstr(target), AT.RECURSIVE, Buffer.from(attr.buffer), 32);
    if (r === 0) return;
    const e = errno();
    if (e !== Errno.ENOSYS) throw new SysError(what, e);
  }
  check(libc.mount(null, cstr(target), null, MS_REMOUNT | MS_BIND | MS_RDONLY, null), what);
}

/** Overlay options longer than a page: the new mount API, else short relative paths. */
function mountOverlayLong(m: Mount, data: string[], flags: number, target: string, what: string): void {
  if (!forceLegacy()) {
    const fd = sys(SYS_fsopen, cstr("overlay"), 1);
    if (fd >= 0) {
      try {
        for (const o of data) {
          const eq = o.indexOf("=");
          const key = eq < 0 ? o : o.slice(0, eq);
          const value = eq < 0 ? null : o.slice(eq + 1);
          if (key === "lowerdir" && value !== null) {
            for (const dir of value.split(":")) {
              check(sys(SYS_fsconfig, fd, FSCONFIG_SET_STRING, cstr("lowerdir+"), cstr(dir), 0), `${what}: lowerdir+ ${dir}`);
            }
          } else if (value === null) {
            check(sys(SYS_fsconfig, fd, FSCONFIG_SET_FLAG, cstr(key), null, 0), `${what}: ${key}`);
          } else {
            check(sys(SYS_fsconfig, fd, FSCONFIG_SET_STRING, cstr(key), cstr(value), 0), `${what}: ${key}`);
          }
        }
        check(sys(SYS_fsconfig, fd, FSCONFIG_CMD_CREATE, null, null, 0), what);
        const mfd = check(sys(SYS_fsmount, fd, 1, flags & MS_RDONLY ? MOUNT_ATTR_RDONLY : 0), what);
        try {
          check(sys(SYS_move_mount, mfd, cstr(""), AT.FDCWD, cstr(target), MOVE_MOUNT_F_EMPTY_PATH), what);
        } finally {
          libc.close(mfd);
        }
        return;
      } finally {
        libc.close(fd);
      }
    }
    const e = errno();
    if (e !== Errno.ENOSYS) throw new SysError(what, e);
  }
  mountOverlayRelative(m, data, flags, target, what);
}

/** containerd's fallback: paths relative to their common directory, mounted from inside it. */
function mountOverlayRelative(m: Mount, data: string[], flags: number, target: string, what: string): void {
  const paths: string[] = [];
  for (const o of data) {
    const [k, v] = splitKV(o);
    if (v === undefined) continue;
    if (k === "lowerdir") paths.push(...v.split(":"));
    else if (k === "upperdir" || k === "workdir") paths.push(v);
  }
  const common = commonDir(paths);
  const rel = (p: string) => relative(common, p) || ".";
  const shortData = data.map((o) => {
    const [k, v] = splitKV(o);
    if (v === undefined) return o;
    if (k === "lowerdir") return `lowerdir=${v.split(":").map(rel).join(":")}`;
    if (k === "upperdir" || k === "workdir") return `${k}=${rel(v)}`;
    return o;
  });
  const joined = shortData.join(",");
  if (joined.length >= PAGE_SIZE) throw new SysError(`${what}: options longer than a page`, Errno.E2BIG);
  const absTarget = absolute(target);
  inDirectory(common, () => check(libc.mount(cstr(m.Source), cstr(absTarget), cstr(m.Type), flags & ~MS_PROPAGATION, cstr(joined)), what));
}

/** `path` from the working directory, when it is relative. */
const absolute = (path: string) => (path.startsWith("/") ? path : `${process.cwd()}/${path}`);

/** Runs `fn` with `dir` as the working directory, where relative paths given to the kernel are taken from; then the one before again. */
function inDirectory<T>(dir: string, fn: () => T): T {
  const cwd = process.cwd();
  process.chdir(dir);
  try {
    return fn();
  } finally {
    process.chdir(cwd);
  }
}

function splitKV(o: string): [string, string | undefined] {
  const eq = o.indexOf("=");
  return eq < 0 ? [o, undefined] : [o.slice(0, eq), o.slice(eq + 1)];
}

function commonDir(paths: string[]): string {
  if (paths.length === 0) return "/";
  let parts = paths[0]!.split("/");
  for (const p of paths.slice(1)) {
    const q = p.split("/");
    let i = 0;
    while (i < parts.length && i < q.length && parts[i] === q[i]) i++;
    parts = parts.slice(0, i);
  }
  return parts.join("/") || "/";
}

/** Unmounts `target`; `detach` makes it lazy (MNT_DETACH). Returns false if nothing was mounted. */
export function unmount(target: string, detach = false): boolean {
  const r = libc.umount2(cstr(target), detach ? MNT_DETACH : 0);
  if (r === 0) return true;
  const code = errno();
  if (code === Errno.EINVAL) return false; // not a mount point
  throw new SysError(`unmount ${target}`, code);
}

/**
 * A descriptor (O_PATH, for the caller to close) of directory `path` in a detached copy of the
 * mount it is on, made without what is mounted below it (open_tree OPEN_TREE_CLONE, not
 * AT_RECURSIVE), which the close dissolves. A walk from it sees the tree as its filesystem holds
 * it, as containerd sees a snapshot through a mount of its own: a bind or tmpfs that someone
 * mounted inside is not there to be walked into. Where the kernel will not clone (no privilege
 * to), the directory as it is: whoever cannot clone a mount could not have made one there either.
 */
export function openOwnTree(path: string): number {
  const fd = sys(SYS_open_tree, AT.FDCWD, cstr(path), OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
  if (fd < 0) {
    const e = errno();
    if (e !== Errno.EPERM && e !== Errno.ENOSYS) throw new SysError(`open ${path}`, e);
    return check(libc.open(cstr(path), O.PATH | O.DIRECTORY | O.CLOEXEC, 0), `open ${path}`);
  }
  if (!statFd(fd).isDirectory) {
    libc.close(fd);
    throw new SysError(`open ${path}`, Errno.ENOTDIR);
  }
  return fd;
}
