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
import { getXattrAt, lstatAt, procPath } from "../sys/dirfd.ts";
import { Errno, SysError, errnoCode } from "../sys/libc.ts";
import { StorError, errnoReason, exitCodeOf } from "../errors.ts";
import { O } from "../sys/openat2.ts";
import { openFileBeneath, readLink } from "../sys/pathCalls.ts";
import { withDirAt } from "../sys/dirent.ts";
import { checkWalkDepth } from "../fs/walkTree.ts";
import { openOwnTree } from "../sys/mount.ts";
import { failpoint } from "../failpoint.ts";
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
  /** For additions and changes: the entry's lstat. */
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
  /** A symlink's target, and the xattrs a layer carries: read in the walk, beneath the tree. */
  link?: Uint8Array;
  xattrs?: Map<string, Uint8Array>;
  /**
   * Of a `U` file: the unchanged directories above it that the changes do not list, outermost
   * first. A layer that writes the file as a link writes them too: an apply replacing the file
   * changes their times, and puts them back only from the layer's entries for them.
   */
  parents?: LayerChange[];
}

/** The changes of the snapshot seen through `view`, in layer order. A view has none of its own. */
export function changes(view: LayerView): Change[] {
  return collect(view, false) as Change[];
}

/** {@link changes}, and the unchanged files a layer needs to keep links: see {@link LayerChange}. */
export function layerChanges(view: LayerView): LayerChange[] {
  return collect(view, true);
}

/**
 * The snapshot's own tree is a container's to write in while it is read: it is walked by
 * descriptor, each directory opened in the one before it and never through a symlink, and each
 * entry looked at (and, for a layer, its link target and xattrs read) through the directory held
 * open. A directory swapped for a link to `/etc` meanwhile is seen as the link it is. (The
 * parents are committed: nothing writes there.)
 */
function collect(view: LayerView, forLayer: boolean): LayerChange[] {
  if (view.kind === "view") return [];
  const walk = (top: number) => (view.diffStyle === "upper" ? overlayChanges(top, view.parents, forLayer) : nativeChanges(top, view.parents[0], forLayer));
  const tree = openOwnTree(view.upper);
  let found;
  try {
    found = withDirAt(tree, ".", walk, () => `open ${view.upper}`);
  } finally {
    closeSync(tree);
  }
  if (found === undefined) throw new SysError(`open ${view.upper}`, Errno.ENOENT);
  return found;
}

/**
 * Runs `fn` on directory `name` of the directory open as `dir`, going down into it to `path` of
 * the layer; undefined when it is no directory now.
 */
function inDir<T>(dir: number, name: string, path: string, fn: (fd: number) => T): T | undefined {
  failpoint("changes:descend");
  let depth = 1;
  for (let i = path.indexOf("/"); i >= 0; i = path.indexOf("/", i + 1)) depth++;
  checkWalkDepth(depth, () => `/${path}`);
  return withDirAt(dir, name, fn, () => `open /${path}`);
}

/**
 * The names in the directory open as `dir` (`/rel` of the layer), sorted by code unit: a fixed
 * order for reproducible layers.
 */
function sortedNames(dir: number, rel: string): string[] {
  return asEntry(rel, () => listNames(procPath(dir, ".")).sort(byName));
}

/**
 * Runs `fn`, which reads entry `/path` of the tree through a descriptor's procfs path: what it
 * throws names the entry as the layer does, not the procfs path, and an entry gone meanwhile is
 * the tree changing while it is read.
 */
function asEntry<T>(path: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    const code = errnoCode(err);
    if (code === "ENOENT" || code === "ENOTDIR") throw new StorError(`read /${path}`, "it is gone: the tree changed while it was read");
    throw new StorError(`read /${path}`, errnoReason(err), exitCodeOf(err), { cause: err });
  }
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

/** What a layer carries of entry `name` (`/path`) of directory `dir` beyond its lstat: its link target, its xattrs. */
function carried(dir: number, name: string, path: string, stat: BigIntStats): Pick<LayerChange, "link" | "xattrs"> {
  const at = procPath(dir, name);
  return asEntry(path, () => ({ link: stat.isSymbolicLink() ? readLink(at) : undefined, xattrs: layerXattrs(at) }));
}

/** Sorts strings by code unit, not by locale. */
export const byName = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

function overlayChanges(upper: number, parents: readonly string[], forLayer: boolean): LayerChange[] {
  const lowers = new Lowers(parents);
  const out: LayerChange[] = [];
  const walk = (dir: number, rel: string) => {
    for (const name of sortedNames(dir, rel)) {
      const path = rel ? `${rel}/${name}` : name;
      const stat = lstatAt(dir, name);
      if (!stat) continue; // gone since the listing
      if (isOverlayWhiteout(stat)) {
        out.push({ kind: "D", path });
        continue;
      }
      const opaque = stat.isDirectory() && getXattrAt(dir, name, OVERLAY_OPAQUE_XATTR)?.toString() === "y";
      out.push({ kind: lowers.find(path) ? "C" : "A", path, stat, opaque, ...(forLayer && carried(dir, name, path, stat)) });
      if (stat.isDirectory()) inDir(dir, name, path, (sub) => walk(sub, path));
    }
  };
  try {
    walk(upper, "");
  } finally {
    lowers.close();
  }
  return out;
}

function nativeChanges(tree: number, parentTree: string | undefined, forLayer: boolean): LayerChange[] {
  /** The changes below `rel` (open as `dir`); `old` says whether the parent has a directory there to compare with. */
  const compare = (dir: number, rel: string, old: boolean): LayerChange[] => {
    const out: LayerChange[] = [];
    const oldDir = parentTree === undefined ? "" : inside(parentTree, rel);
    const names = new Set(sortedNames(dir, rel));
    const oldNames = new Set(old && parentTree !== undefined ? listNames(oldDir) : []);
    for (const name of [...new Set([...names, ...oldNames])].sort(byName)) {
      const path = rel ? `${rel}/${name}` : name;
      const stat = names.has(name) ? lstatAt(dir, name) : undefined;
      if (!stat) {
        if (oldNames.has(name)) out.push({ kind: "D", path }); // gone since it was listed: a deletion only if the parent has it
        continue;
      }
      const oldPath = inside(oldDir, name);
      const oldStat = oldNames.has(name) ? lstat(oldPath) : undefined;
      const below = stat.isDirectory() ? (inDir(dir, name, path, (sub) => compare(sub, path, oldStat?.isDirectory() ?? false)) ?? []) : [];
      const same = oldStat !== undefined && sameEntry(dir, name, stat, oldPath, oldStat);
      // A directory is changed by what changed below it, not by the unchanged hardlinked files it
      // holds: those ("U") are carried only for the links the layer makes to them.
      if (!same || below.some((c) => c.kind !== "U")) out.push({ kind: oldStat ? "C" : "A", path, stat, ...(forLayer && carried(dir, name, path, stat)) }, ...below);
      else if (forLayer && !stat.isDirectory() && stat.nlink > 1n) out.push({ kind: "U", path, stat, ...carried(dir, name, path, stat) });
      else {
        if (below.length > 0) {
          // Only unchanged linked files below (see LayerChange.parents): this directory goes with them.
          const self: LayerChange = { kind: "C", path, stat, ...carried(dir, name, path, stat) };
          for (const u of below) u.parents = [self, ...(u.parents ?? [])];
        }
        out.push(...below);
      }
    }
    return out;
  };
  return compare(tree, "", parentTree !== undefined);
}

/** True when entry `name` of the directory open as `dir` and the parent's at `b` agree in everything a layer records. */
function sameEntry(dir: number, name: string, sa: BigIntStats, b: string, sb: BigIntStats): boolean {
  const a = procPath(dir, name);
  if (sa.mode !== sb.mode || sa.uid !== sb.uid || sa.gid !== sb.gid || sa.rdev !== sb.rdev || sa.mtimeNs !== sb.mtimeNs) return false;
  if (!sa.isDirectory() && sa.size !== sb.size) return false;
  if (sa.isSymbolicLink() && Buffer.compare(readLink(a), readLink(b)) !== 0) return false;
  if (xattrsKey(a) !== xattrsKey(b)) return false;
  // A time in whole seconds, as layers carry them, says nothing of a rewrite within that second
  // with as many bytes: only the contents can (containerd compares them too).
  return !sa.isFile() || sa.size === 0n || sa.mtimeNs % 1_000_000_000n !== 0n || sameContent(dir, name, sa.ino, b);
}

const COMPARE_CHUNK = 1 << 16;
/** The two buffers every comparison reads into, made once: a walk may compare every file it meets. */
let compareBuffers: [Buffer, Buffer] | undefined;

/**
 * True when regular file `name` (inode `ino`) of the directory open as `dir` and the parent's at
 * `b`, of the same size, hold the same bytes. Another file there by now (a FIFO would block the
 * open) is not opened, and differs.
 */
function sameContent(dir: number, name: string, ino: bigint, b: string): boolean {
  const fa = openFileBeneath(dir, name, ino);
  if (fa < 0) return false;
  try {
    const fb = openSync(nameBuffer(b), O.RDONLY | O.NOFOLLOW);
    try {
      const [ba, bb] = (compareBuffers ??= [Buffer.allocUnsafe(COMPARE_CHUNK), Buffer.allocUnsafe(COMPARE_CHUNK)]);
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
function layerXattrs(path: string): Map<string, Uint8Array> {
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
