/** Parser of /proc/self/mountinfo (proc(5)), with the kernel's octal escapes undone. */
import { Errno, SysError } from "./libc.ts";
import { isSymlink, readText, realPath } from "./pathCalls.ts";

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

const MOUNTINFO = "/proc/self/mountinfo";

function readMountInfoText(path: string): string {
  const text = readText(path);
  if (text === undefined) throw new SysError(`open ${path}`, Errno.ENOENT);
  return text;
}

/** The mounts of this process's mount namespace. */
export function readMountInfo(path = MOUNTINFO): MountInfo[] {
  return parseMountInfo(readMountInfoText(path));
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
  for (const m of mounts) if (m.mountPoint === dir) return true;
  return false;
}

/** True when `p` is `dir` or below it. */
export function within(p: string, dir: string): boolean {
  return p === dir || p.startsWith(dir.endsWith("/") ? dir : `${dir}/`);
}

/**
 * The options of an overlay mount that name its layers. overlayfs reads a backslash in
 * `lowerdir=`, `upperdir=` and `workdir=` as escaping the next character, and `lowerdir=` is a
 * list cut at unescaped colons; `lowerdir+=` and `datadir+=` (the new mount API's, one layer
 * each) are taken as they are.
 */
const LAYER_OPTIONS: readonly [name: string, escaped: boolean, list: boolean][] = [
  ["lowerdir=", true, true],
  ["upperdir=", true, false],
  ["workdir=", true, false],
  ["lowerdir+=", false, false],
  ["datadir+=", false, false],
];

/**
 * The layers of value `s` (the kernel's octal escapes already undone) as overlayfs reads them:
 * `\x` is `x` (a lone backslash at the end is nothing), and in a list an unescaped colon ends a
 * layer.
 */
function escapedLayers(s: string, list: boolean): string[] {
  // Without a backslash nothing is escaped: every colon cuts. (Most options: a busy host's
  // overlays hold thousands of characters, which the loop below reads one at a time.)
  if (!s.includes("\\")) return list ? s.split(":") : [s];
  const out: string[] = [];
  let layer = "";
  for (let i = 0; i < s.length; i++) {
    if (s[i] === "\\") {
      if (i + 1 < s.length) layer += s[++i];
    } else if (list && s[i] === ":") {
      out.push(layer);
      layer = "";
    } else layer += s[i];
  }
  out.push(layer);
  return out;
}

/**
 * The directories an overlay mount is made of (lower, upper, work), from its super options. An
 * empty entry names none: `lowerdir=A::B` marks B as a data-only layer, not a layer "" between.
 * Read with string operations: a command that checks what is mounted would compile the RegExps anew.
 */
export function overlayLayers(superOptions: string): string[] {
  const out: string[] = [];
  for (const option of superOptions.split(",")) {
    for (const [name, escaped, list] of LAYER_OPTIONS) {
      if (!option.startsWith(name)) continue;
      // The kernel's octal escapes first: a backslash the user gave is written `\134`.
      const value = unescapeOctal(option.slice(name.length));
      for (const layer of escaped ? escapedLayers(value, list) : [value]) if (layer !== "") out.push(layer);
      break;
    }
  }
  return out;
}

/**
 * The mounts that use the tree at `path` (a real path): mounted on it or inside it, a bind of it
 * or of something in it, or an overlay with a layer in it — what removing `path` would pull from
 * under them. A bind is known by its device and the path inside the filesystem it shows (`root`);
 * a mount point and a layer by their {@link Place} too, so a path through another bind of the
 * tree's filesystem is found, as well as one through a symlink.
 *
 * `mounts` are this namespace's. Given `elsewhere`, the mounts of another namespace, those are
 * the ones looked at, for binds (by device and root) and overlays (by their layers, the paths
 * their mounter gave, placed among those mounts too): mount points there are that namespace's
 * paths, and a mount on a directory
 * in the tree there is not looked for. The mount the tree lies on is no use of it (mount ids are
 * unique across namespaces).
 */
export function mountsUsing(path: string, mounts = readMountInfo(), elsewhere?: MountInfo[]): MountInfo[] {
  const origin = bindOrigin(path, mounts);
  // A directory reached through another alias of the tree's filesystem (a bind of the root, as
  // `mount --bind /var/lib/stor /alias`) is in the tree when it is at a path inside it there.
  const inTree = (place: Place | undefined) => origin !== undefined && place !== undefined && place.device === origin.device && within(place.root, origin.root);
  // Layers are shared between mounts and asked of for every tree a cleanup or prune looks at:
  // each is resolved once for the list.
  let resolved = resolvedLayers.get(mounts);
  if (!resolved) resolvedLayers.set(mounts, (resolved = new Map()));
  const candidates = elsewhere ?? mounts;
  // A mount point is in the tree only on the tree's filesystem: no other's place is worked out.
  // A layer of another namespace's overlay is a path there: its place is found in that
  // namespace's mounts, where the tree may be reached by another path (a bind of the root).
  const inTreeThere = (layer: string) => elsewhere !== undefined && inTree(placeOf(layer, elsewhere));
  const pointInTree = (m: MountInfo) => !elsewhere && origin !== undefined && mountIndex(mounts).byId.get(m.parent)?.device === origin.device && inTree(mountPointPlace(m, mounts));
  // Loops: filter and some are JS-implemented builtins that `snapshot rm` would compile for this.
  const out: MountInfo[] = [];
  for (const m of candidates) {
    if ((!elsewhere && within(m.mountPoint, path)) || (origin !== undefined && m.id !== origin.holder && m.device === origin.device && within(m.root, origin.root)) || pointInTree(m)) {
      out.push(m);
      continue;
    }
    if (m.fsType !== "overlay") continue;
    for (const layer of overlayLayers(m.superOptions)) {
      if (layer.startsWith("/") ? within(layer, path) || layerInTree(realLayer(layer, resolved), path, inTree, mounts) || inTreeThere(layer) : relativeLayerMayBeIn(layer, path)) {
        out.push(m);
        break;
      }
    }
  }
  return out;
}

/** Whether real layer path `real` is in the tree at `path`: by its path, or by its {@link Place} (`inTree`). */
function layerInTree(real: string, path: string, inTree: (place: Place | undefined) => boolean, mounts: MountInfo[]): boolean {
  return within(real, path) || inTree(placeOf(real, mounts));
}

/** The real paths of the overlay layers of a mountinfo list, as {@link realLayer} found them. */
const resolvedLayers = new WeakMap<MountInfo[], Map<string, string | null>>();

/**
 * Whether a relative overlay layer may lie in the tree at `path` (a real path). overlayfs shows a
 * layer as it was given, and one given relative to the directory the mount was made from (the
 * relative-path fallback for long options, stor's and containerd's) does not say which directory
 * that was. It may lie in the tree when its first components are the tree's last ones (given
 * from above the tree), and whenever it climbs (`..`) or is its base itself (`.`). One given from
 * inside the tree is not recognized.
 */
function relativeLayerMayBeIn(layer: string, path: string): boolean {
  const parts = layer.split("/").filter((p) => p !== "");
  if (parts[0] === "." || parts.includes("..")) return true;
  const tree = path.split("/").filter((p) => p !== "");
  for (let k = 1; k <= Math.min(parts.length, tree.length); k++) {
    let same = true;
    for (let i = 0; i < k && same; i++) same = tree[tree.length - k + i] === parts[i];
    if (same) return true;
  }
  return false;
}

/**
 * An overlay layer's real path: overlayfs shows the path it was given, which may go through a
 * symlink (a root given as one, a link to a snapshot's directory). A layer gone since is its path.
 * Layers share most of their directories (`…/snapshots/N/fs`), so each directory on the way is
 * looked at once for the list (one readlink), not once a layer in a realpath(3) of its own: with
 * 1,200 layers mounted, that took every rm 10 ms.
 */
function realLayer(layer: string, resolved: Map<string, string | null>): string {
  // A path that is not plain (`.`, `..`, `//`, a trailing `/`) goes to realpath(3) whole.
  const plain = !layer.includes("//") && !layer.includes("/./") && !layer.includes("/../") && !layer.endsWith("/.") && !layer.endsWith("/..") && !layer.endsWith("/");
  return (plain ? realPrefix(layer, resolved) : wholeRealPath(layer)) ?? layer;
}

/** The real path of plain absolute path `p`, its parent's from `resolved`; null when gone. */
function realPrefix(p: string, resolved: Map<string, string | null>): string | null {
  let real = resolved.get(p);
  if (real !== undefined) return real;
  const slash = p.lastIndexOf("/");
  const parent = slash === 0 ? "" : realPrefix(p.slice(0, slash), resolved);
  if (parent === null) real = null;
  else {
    const here = `${parent}/${p.slice(slash + 1)}`;
    let link;
    try {
      link = isSymlink(here);
    } catch {
      link = true; // no answer here (EACCES…): realpath(3)'s, or the layer as given
    }
    real = link === undefined ? null : link ? wholeRealPath(here) : here;
  }
  resolved.set(p, real);
  return real;
}

function wholeRealPath(p: string): string | null {
  try {
    return realPath(p);
  } catch {
    return null;
  }
}

/**
 * Where a directory is, the same through every alias of it (a bind mount of an ancestor, a
 * symlink, `//`, `..`): the filesystem's device (`major:minor`) and the path inside that
 * filesystem, which a bind of the directory shows as `root`.
 */
interface Place {
  device: string;
  root: string;
}

/**
 * Where the tree at `path` (a real path) is in its filesystem, in this and in every other mount
 * namespace; and the mount it lies on.
 */
export function bindOrigin(path: string, mounts = readMountInfo()): (Place & { holder: number }) | undefined {
  const holder = mountHolding(path, mounts);
  return holder && { ...placeIn(holder, path), holder: holder.id };
}

/**
 * The {@link Place} of `path`, on mount `m`: `m`'s device, and `m`'s root joined with the way from
 * its mount point. Both are normal absolute paths (mountinfo's, real ones) and `path` is at or
 * below the mount point: the way is the rest of `path`, cut off, not worked out (a removal asks
 * this of every mount a namespace has).
 */
function placeIn(m: MountInfo, path: string): Place {
  const way = m.mountPoint === "/" ? path : path.slice(m.mountPoint.length); // "" or "/…"
  return { device: m.device, root: way === "" || way === "/" ? m.root : m.root === "/" ? way : m.root + way };
}

/**
 * A list's mounts by mount point (the latest of equals: the one on top) and by id, and the
 * {@link Place}s found so far: asked for every tree a cleanup or prune looks at, each is found
 * once for the list.
 */
interface MountIndex {
  byPoint: Map<string, MountInfo>;
  byId: Map<number, MountInfo>;
  places: Map<string, Place | undefined>;
  mountPointPlaces: Map<number, Place | undefined>;
}

const mountIndexes = new WeakMap<MountInfo[], MountIndex>();

function mountIndex(mounts: MountInfo[]): MountIndex {
  let index = mountIndexes.get(mounts);
  if (!index) {
    index = { byPoint: new Map(), byId: new Map(), places: new Map(), mountPointPlaces: new Map() };
    for (const m of mounts) {
      index.byPoint.set(m.mountPoint, m);
      index.byId.set(m.id, m);
    }
    mountIndexes.set(mounts, index);
  }
  return index;
}

/**
 * The mount absolute path `path` (a real path) is on: the deepest mount point above it, the
 * latest of equals, as the kernel's lookup finds it. A look at each ancestor, not at each mount:
 * asked for every layer of every overlay, a scan would cost an rm 1,200 × 1,200 comparisons.
 */
function mountHolding(path: string, mounts: MountInfo[]): MountInfo | undefined {
  if (!path.startsWith("/")) return undefined;
  const { byPoint } = mountIndex(mounts);
  for (let p = path; ; p = p.slice(0, Math.max(p.lastIndexOf("/"), 1))) {
    const m = byPoint.get(p);
    if (m || p === "/") return m;
  }
}

/** The {@link Place} of real path `path`, once for the list. */
function placeOf(path: string, mounts: MountInfo[]): Place | undefined {
  const { places } = mountIndex(mounts);
  if (!places.has(path)) places.set(path, bindOrigin(path, mounts));
  return places.get(path);
}

/** Where mount `m`'s mount point is: in the filesystem of the mount it is mounted on (its parent). */
function mountPointPlace(m: MountInfo, mounts: MountInfo[]): Place | undefined {
  const { byId, mountPointPlaces } = mountIndex(mounts);
  if (mountPointPlaces.has(m.id)) return mountPointPlaces.get(m.id);
  const parent = byId.get(m.parent);
  const place = parent && parent.id !== m.id && within(m.mountPoint, parent.mountPoint) ? placeIn(parent, m.mountPoint) : undefined;
  mountPointPlaces.set(m.id, place);
  return place;
}

const isPlainNameChar = (c: string) => (c >= "a" && c <= "z") || (c >= "A" && c <= "Z") || (c >= "0" && c <= "9") || c === "." || c === "_" || c === "-";

/**
 * Whether mountinfo `text` may tell of a mount that uses the tree at `real` (a real path other
 * than `/`). Where no overlay is mounted, any such line has `/NAME`, NAME being the tree's last
 * component, followed by `/`, a space, a newline, `,` or `:` (or the end): mountinfo writes mount
 * points and binds' roots as real paths, so a mount point in the tree has the tree's path, and a
 * bind of something in it has the path inside its filesystem, which ends the same way below the
 * mount holding the tree (or is that mount's own line). A NAME of letters, digits, `.`, `_` and
 * `-` is written as it is; any other, false is never answered. An overlay's options name its
 * layers as they were given, through any symlink and with overlayfs's own escapes, so with an
 * overlay mounted the text proves nothing. When false, nothing uses the tree, and the text need not be parsed.
 */
export function mayMention(text: string, real: string): boolean {
  if (text.includes(" - overlay ")) return true;
  const name = real.slice(real.lastIndexOf("/") + 1);
  if (name === "") return true;
  for (let i = 0; i < name.length; i++) if (!isPlainNameChar(name[i]!)) return true;
  const needle = `/${name}`;
  for (let at = text.indexOf(needle); at >= 0; at = text.indexOf(needle, at + 1)) {
    const next = text[at + needle.length];
    if (next === undefined || next === "/" || next === " " || next === "\n" || next === "," || next === ":") return true;
  }
  return false;
}

/**
 * The real path of the tree at `path`; undefined when it is gone (or below something that is no
 * directory), when nothing can use it. Any other failure is no answer, and "nothing uses it" could
 * let a mounted tree be removed: it throws.
 */
export function treePath(path: string): string | undefined {
  try {
    return realPath(path); // one lookup: gone now or gone between two is the same answer
  } catch (err) {
    if (err instanceof SysError && (err.errno === Errno.ENOENT || err.errno === Errno.ENOTDIR)) return undefined;
    throw err;
  }
}

/** Mount points of the mounts that use the tree at `path` (any path; none when it is gone). */
export function mountPointsUsing(path: string, mounts?: MountInfo[]): string[] {
  const real = treePath(path);
  return real === undefined ? [] : mountPointsUsingTree(real, mounts);
}

/** {@link mountPointsUsing} of a real path (see {@link treePath}). */
export function mountPointsUsingTree(real: string, mounts?: MountInfo[]): string[] {
  if (mounts === undefined) {
    // Most trees are used by nothing, and their name is nowhere in mountinfo: no parse then.
    const text = readMountInfoText(MOUNTINFO);
    if (!mayMention(text, real)) return [];
    mounts = parseMountInfo(text);
  }
  const points: string[] = [];
  for (const m of mountsUsing(real, mounts)) points.push(m.mountPoint);
  return points;
}
