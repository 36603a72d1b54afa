/** Parser of /proc/self/mountinfo (proc(5)), with the kernel's octal escapes undone. */
import { Errno, SysError } from "./libc.ts";
import { readText, realPath } from "./pathCalls.ts";
import { join, relative } from "../path.ts";

/** One line of mountinfo. */
export interface MountInfo {
  id: number;
  parent: number;
  /** `major:minor` of the device. */
  device: string;
  /** The path inside the filesystem that is mounted (a bind shows its subdirectory here). */
  root: string;
  mountPoint: string;
  options: string;
  fsType: string;
  source: string;
  superOptions: string;
}

/** Undoes the `\ooo` escapes the kernel writes for space, tab, newline and backslash. */
export function unescapeOctal(s: string): string {
  // Most names have no escape: indexOf is native, and spares the RegExp call.
  if (s.indexOf("\\") < 0) return s;
  return s.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)));
}

/** Parses mountinfo text; malformed lines are skipped. */
export function parseMountInfo(text: string): MountInfo[] {
  const out: MountInfo[] = [];
  for (const line of text.split("\n")) {
    if (!line) continue;
    const fields = line.split(" ");
    const sep = fields.indexOf("-", 6);
    if (fields.length < 10 || sep < 0 || fields.length < sep + 4) continue;
    out.push({
      id: Number(fields[0]),
      parent: Number(fields[1]),
      device: fields[2]!,
      root: unescapeOctal(fields[3]!),
      mountPoint: unescapeOctal(fields[4]!),
      options: fields[5]!,
      fsType: fields[sep + 1]!,
      source: unescapeOctal(fields[sep + 2]!),
      superOptions: fields[sep + 3]!,
    });
  }
  return out;
}

/** The mounts of this process's mount namespace. */
export function readMountInfo(path = "/proc/self/mountinfo"): MountInfo[] {
  const text = readText(path);
  if (text === undefined) throw new SysError(`open ${path}`, Errno.ENOENT);
  return parseMountInfo(text);
}

/** Mounts whose mount point is `dir` or below it, deepest (and latest) first: the order to unmount. */
export function mountsUnder(dir: string, mounts = readMountInfo()): MountInfo[] {
  const prefix = dir.endsWith("/") ? dir : `${dir}/`;
  return mounts
    .map((m, i) => ({ m, i }))
    .filter(({ m }) => m.mountPoint === dir || m.mountPoint.startsWith(prefix))
    .sort((a, b) => b.m.mountPoint.length - a.m.mountPoint.length || b.i - a.i)
    .map(({ m }) => m);
}

/** True when something is mounted exactly on `dir`. */
export function isMountPoint(dir: string, mounts = readMountInfo()): boolean {
  return mounts.some((m) => m.mountPoint === dir);
}

/** True when `p` is `dir` or below it. */
export function within(p: string, dir: string): boolean {
  return p === dir || p.startsWith(dir.endsWith("/") ? dir : `${dir}/`);
}

/** The directories an overlay mount is made of (lower, upper, work), from its super options. */
export function overlayLayers(superOptions: string): string[] {
  const out: string[] = [];
  for (const option of superOptions.split(",")) {
    const m = /^(lowerdir\+?|upperdir|workdir|datadir\+)=(.*)$/.exec(option);
    if (!m) continue;
    // Layers of a lowerdir list are separated by unescaped colons.
    const values = m[1] === "lowerdir" ? m[2]!.split(/(?<!\\):/) : [m[2]!];
    for (const v of values) {
      const u = unescapeOctal(v);
      out.push(u.indexOf("\\") < 0 ? u : u.replace(/\\(.)/g, "$1"));
    }
  }
  return out;
}

/**
 * The mounts that use the tree at `path` (a real path): mounted on it or inside it, a bind of it
 * or of something in it, or an overlay with a layer in it — what removing `path` would pull from
 * under them. A bind is known by its device and the path inside the filesystem it shows (`root`).
 */
export function mountsUsing(path: string, mounts = readMountInfo()): MountInfo[] {
  const origin = bindOrigin(path, mounts);
  return mounts.filter(
    (m) =>
      within(m.mountPoint, path) ||
      (m.fsType === "overlay" && overlayLayers(m.superOptions).some((l) => within(l, path))) ||
      (origin !== undefined && m.id !== origin.holder && m.device === origin.device && within(m.root, origin.root)),
  );
}

/**
 * Where the tree at `path` is in its filesystem: the device and the path inside it that a bind
 * of it shows as `root`, in this and in every other mount namespace; and the mount it lies on.
 */
export function bindOrigin(path: string, mounts = readMountInfo()): { device: string; root: string; holder: number } | undefined {
  // The deepest mount point above `path`, the latest of equals.
  let holder: MountInfo | undefined;
  for (const m of mounts) if (within(path, m.mountPoint) && (!holder || m.mountPoint.length >= holder.mountPoint.length)) holder = m;
  return holder && { device: holder.device, root: join(holder.root, relative(holder.mountPoint, path)), holder: holder.id };
}

/** Mount points of the mounts that use the tree at `path` (any path; none when it is gone). */
export function mountPointsUsing(path: string, mounts?: MountInfo[]): string[] {
  let real: string;
  try {
    real = realPath(path); // one lookup: gone now or gone between two is the same answer
  } catch (err) {
    // Gone (or below something that is no directory): nothing can use it. Anything else is no
    // answer, and "nothing uses it" could let a mounted tree be removed.
    if (err instanceof SysError && (err.errno === Errno.ENOENT || err.errno === Errno.ENOTDIR)) return [];
    throw err;
  }
  return mountsUsing(real, mounts).map((m) => m.mountPoint);
}
