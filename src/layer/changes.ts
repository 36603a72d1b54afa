/**
 * A snapshot's changes against its parent, as `docker diff` lists them: added, changed and
 * deleted paths, each directory before what it holds, names in sorted order.
 *
 * Overlay reads only the snapshot's upper directory, so the cost follows the size of the change:
 * whiteouts are deletions, and a name is "changed" rather than "added" when the parents show it.
 * Native has only whole trees and compares them with the parent's by type, mode, owner, size,
 * mtime, device number, link target and xattrs (and contents, when the times are whole seconds);
 * a directory holding a change is itself listed as changed, as docker does, so that a layer
 * carries its metadata.
 */
import { closeSync, lstatSync, openSync, readSync, readdirSync, type BigIntStats } from "../nodeFs.ts";
import { decodeName, nameBuffer } from "../fileName.ts";
import type { SnapshotService } from "../snapshot/service.ts";
import { getXattr, listXattrs } from "../sys/file.ts";
import { O } from "../sys/openat2.ts";
import { readLink } from "../sys/pathCalls.ts";
import { Lowers } from "./lowers.ts";
import { OVERLAY_OPAQUE_XATTR, WHITEOUT_PREFIX, isOverlayWhiteout, isOverlayXattr } from "./whiteout.ts";

/** Where a snapshot's layer is read: see {@link SnapshotService.layerView}. */
export type LayerView = ReturnType<SnapshotService["layerView"]>;

export type ChangeKind = "A" | "C" | "D";

/** One changed path. */
export interface Change {
  kind: ChangeKind;
  /** Below the snapshot root, components joined by `/`. */
  path: string;
  /** For additions and changes: the entry's absolute path in the snapshot's tree, and its lstat. */
  source?: string;
  stat?: BigIntStats;
  /** An overlay directory that hides everything its parents have below it. */
  opaque?: boolean;
}

/**
 * What a layer is written from: the changes, and among them (`U`) the unchanged files of a tree
 * that share their inode with other names. A new name of an unchanged file is then written as a
 * link to it, as containerd's diff does, not as a file of its own. (On overlay such a file was
 * copied up by the link, so it is a change.)
 */
export interface LayerChange extends Omit<Change, "kind"> {
  kind: ChangeKind | "U";
}

/** The changes of the snapshot seen through `view`, in layer order. A view has none of its own. */
export function changes(view: LayerView): Change[] {
  return collect(view, false) as Change[];
}

/** {@link changes}, and the unchanged files a layer needs to keep links: see {@link LayerChange}. */
export function layerChanges(view: LayerView): LayerChange[] {
  return collect(view, true);
}

function collect(view: LayerView, linked: boolean): LayerChange[] {
  if (view.kind === "view") return [];
  switch (view.diffStyle) {
    case "upper":
      return overlayChanges(view.upper, view.parents);
    case "tree":
      return nativeChanges(view.upper, view.parents[0], linked);
  }
}

/** The names in `dir`, sorted by code unit: a fixed order for reproducible layers. */
function sortedNames(dir: string): string[] {
  return listNames(dir).sort(byName);
}

/**
 * The names in `dir` (any bytes, see {@link decodeName}) that a layer can carry: one with the
 * whiteout prefix would read as a deletion, so it is no change of a layer's. Applying never makes
 * one; only a process writing through a mount can.
 */
const listNames = (dir: string) =>
  readdirSync(nameBuffer(dir), { encoding: "buffer" })
    .map(decodeName)
    .filter((name) => !name.startsWith(WHITEOUT_PREFIX));

/** `dir/rel`, or `dir` for no `rel`. Not path.join: that would turn escaped bytes into U+FFFD. */
const inside = (dir: string, rel: string) => (rel ? `${dir}/${rel}` : dir);

/** lstat of a path that may hold escaped bytes. */
const lstat = (path: string) => lstatSync(nameBuffer(path), { bigint: true });

/** Sorts strings by code unit, not by locale. */
export const byName = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

function overlayChanges(upper: string, parents: readonly string[]): Change[] {
  const lowers = new Lowers(parents);
  const out: Change[] = [];
  const walk = (rel: string) => {
    for (const name of sortedNames(inside(upper, rel))) {
      const path = rel ? `${rel}/${name}` : name;
      const source = inside(upper, path);
      const stat = lstat(source);
      if (isOverlayWhiteout(stat)) {
        out.push({ kind: "D", path });
        continue;
      }
      const opaque = stat.isDirectory() && getXattr(source, OVERLAY_OPAQUE_XATTR)?.toString() === "y";
      out.push({ kind: lowers.find(path) ? "C" : "A", path, source, stat, opaque });
      if (stat.isDirectory()) walk(path);
    }
  };
  try {
    walk("");
  } finally {
    lowers.close();
  }
  return out;
}

function nativeChanges(tree: string, parentTree: string | undefined, linked: boolean): LayerChange[] {
  /** The changes below `rel`; `old` says whether the parent has a directory there to compare with. */
  const compare = (rel: string, old: boolean): LayerChange[] => {
    const out: LayerChange[] = [];
    const dir = inside(tree, rel);
    const oldDir = parentTree === undefined ? "" : inside(parentTree, rel);
    const names = new Set(sortedNames(dir));
    const oldNames = new Set(old && parentTree !== undefined ? listNames(oldDir) : []);
    for (const name of [...new Set([...names, ...oldNames])].sort(byName)) {
      const path = rel ? `${rel}/${name}` : name;
      if (!names.has(name)) {
        out.push({ kind: "D", path });
        continue;
      }
      const source = inside(dir, name);
      const stat = lstat(source);
      const oldPath = inside(oldDir, name);
      const oldStat = oldNames.has(name) ? lstat(oldPath) : undefined;
      const below = stat.isDirectory() ? compare(path, oldStat?.isDirectory() ?? false) : [];
      const same = oldStat !== undefined && sameEntry(source, stat, oldPath, oldStat);
      if (!same || below.length > 0) out.push({ kind: oldStat ? "C" : "A", path, source, stat }, ...below);
      else if (linked && !stat.isDirectory() && stat.nlink > 1n) out.push({ kind: "U", path, source, stat });
    }
    return out;
  };
  return compare("", parentTree !== undefined);
}

/** True when two entries agree in everything a layer records. */
function sameEntry(a: string, sa: BigIntStats, b: string, sb: BigIntStats): boolean {
  if (sa.mode !== sb.mode || sa.uid !== sb.uid || sa.gid !== sb.gid || sa.rdev !== sb.rdev || sa.mtimeNs !== sb.mtimeNs) return false;
  if (!sa.isDirectory() && sa.size !== sb.size) return false;
  if (sa.isSymbolicLink() && Buffer.compare(readLink(a), readLink(b)) !== 0) return false;
  if (xattrsKey(a) !== xattrsKey(b)) return false;
  // A time in whole seconds, as layers carry them, says nothing of a rewrite within that second
  // with as many bytes: only the contents can (containerd compares them too).
  return !sa.isFile() || sa.size === 0n || sa.mtimeNs % 1_000_000_000n !== 0n || sameContent(a, b);
}

const COMPARE_CHUNK = 1 << 16;

/** True when the regular files at `a` and `b`, of the same size, hold the same bytes. */
function sameContent(a: string, b: string): boolean {
  const fa = openSync(nameBuffer(a), O.RDONLY | O.NOFOLLOW);
  try {
    const fb = openSync(nameBuffer(b), O.RDONLY | O.NOFOLLOW);
    try {
      const ba = Buffer.allocUnsafe(COMPARE_CHUNK);
      const bb = Buffer.allocUnsafe(COMPARE_CHUNK);
      for (;;) {
        const n = readSync(fa, ba, 0, COMPARE_CHUNK, null);
        if (n === 0) return true;
        if (readSync(fb, bb, 0, n, null) !== n || !ba.subarray(0, n).equals(bb.subarray(0, n))) return false;
      }
    } finally {
      closeSync(fb);
    }
  } finally {
    closeSync(fa);
  }
}

/** The extended attributes a layer carries for `path`: all but overlayfs's own bookkeeping. */
export function layerXattrs(path: string): Map<string, Uint8Array> {
  const out = new Map<string, Uint8Array>();
  for (const name of listXattrs(path).sort(byName)) {
    if (isOverlayXattr(name)) continue;
    const value = getXattr(path, name);
    if (value !== undefined) out.set(name, value);
  }
  return out;
}

function xattrsKey(path: string): string {
  return [...layerXattrs(path)].map(([k, v]) => `${k}=${Buffer.from(v).toString("hex")}`).join("\0");
}
