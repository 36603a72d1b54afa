/** Parser of /proc/self/mountinfo (proc(5)), with the kernel's octal escapes undone. */
import { readFileSync } from "node:fs";

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
  return parseMountInfo(readFileSync(path, "utf8"));
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
