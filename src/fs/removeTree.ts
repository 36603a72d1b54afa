/**
 * Removes a file tree, as `rm -rf`, counting the entries it removes so a terminal can show
 * progress (./treeProgress.ts): removing a large snapshot or volume takes long enough to need
 * it. Names that are not UTF-8 are removed like any other (see src/fileName.ts). What vanishes
 * meanwhile (another remover, cleanup) is no error.
 *
 * The trees removed are written by others: a container in its snapshot or volume, as any user
 * it runs as. So the walk goes by descriptor, one name at a time, and never follows a symlink: a
 * directory swapped for a link to `/etc` while it runs is removed as the link it is. A path
 * built of the names would follow such a link on the way down and remove what it leads to.
 */
import { listDirFd } from "../sys/dirent.ts";
import { Errno, SysError } from "../sys/libc.ts";
import { AT } from "../sys/openat2.ts";
import { closeFd, openDirAt, renameAtErrno, statFd, unlinkErrno } from "../sys/pathCalls.ts";
import { treeCounter } from "./treeProgress.ts";
import { FS_MAGIC, filesystemType } from "../sys/file.ts";
import { decodeName } from "../fileName.ts";
import { failpoint } from "../failpoint.ts";

/**
 * Directories held open on the way down, at most: a deeper one is moved up to the top of the tree
 * and removed from there, so no depth, however a container nests its directories, runs out of
 * descriptors or stack.
 */
const MAX_DEPTH = 128;

/** Removes `path` and everything below it; a path that does not exist is no error. */
export function removeTree(path: string): void {
  // `path` itself is stor's (a snapshot's or a volume's directory, or their trash): only below it do others write.
  removeTreeAt(AT.FDCWD, path, path);
}

/**
 * Removes `name` in directory `dir` (a descriptor) and everything below it, never through a
 * symlink; `shown` names it in errors. Nothing there is no error.
 */
export function removeTreeAt(dir: number, name: string | Uint8Array, shown: string): void {
  const count = treeCounter();
  for (let tries = 3; ; tries--) {
    // An empty directory (a new snapshot's fs and work, a new volume's _data) goes in one call, unlisted; a file too.
    const code = unlinkErrno(dir, name, AT.REMOVEDIR);
    if (code === 0 || code === Errno.ENOENT) return count(0);
    if (tries === 0 || (code !== Errno.ENOTDIR && code !== Errno.ENOTEMPTY && code !== Errno.EEXIST)) throw new SysError(`rmdir ${shown}`, code);
    if (code === Errno.ENOTDIR) {
      const unlinked = unlinkErrno(dir, name, 0);
      if (unlinked === 0 || unlinked === Errno.ENOENT) return count(0);
      if (unlinked !== Errno.EISDIR) throw new SysError(`unlink ${shown}`, unlinked);
      continue; // a directory again
    }
    const top = openDirAt(dir, name, () => `open ${shown}`);
    if (top === undefined) continue; // not a directory any more, or gone
    try {
      const onBtrfs = filesystemType(`/proc/self/fd/${top}`) === FS_MAGIC.btrfs;
      // A subvolume's root is inode 256 of its own: a directory's stat says so, its entry does not.
      if (onBtrfs && statFd(top).ino === SUBVOLUME_ROOT_INO) {
        (require("../sys/btrfs.ts") as typeof import("../sys/btrfs.ts")).destroySubvolumeAt(dir, name, shown);
        return count(0);
      }
      const walk = new Walk(top, shown, onBtrfs, count);
      // Directories moved up to the top land among what is left there: it is listed again until none was.
      while (walk.removeBelow(top, [], 0) > 0);
    } finally {
      closeFd(top);
    }
  }
}

/** One removal's walk below its top directory. */
class Walk {
  /** How many directories were moved up to the top, each under a name of its own. */
  #moved = 0;

  constructor(
    readonly top: number,
    readonly path: string,
    readonly onBtrfs: boolean,
    readonly count: (bytes: number) => void,
  ) {}

  /** The path of `name` below directory `parts` (names below the top), for messages only. */
  shown(parts: readonly Uint8Array[], name?: Uint8Array): string {
    const names = name ? [...parts, name] : parts;
    return [this.path, ...names.map(decodeName)].join("/");
  }

  /**
   * Removes everything in directory `dir` (at `parts` below the top, `depth` deep) and says how
   * many directories it moved up to the top instead, to be removed from there.
   */
  removeBelow(dir: number, parts: readonly Uint8Array[], depth: number): number {
    let moved = 0;
    for (const e of listDirFd(dir, () => this.shown(parts))) {
      // The entry says what each is (or the unlink, where the filesystem does not); whatever replaced it since, the call that fails.
      if (e.isDirectory !== true && this.#unlink(dir, e.name, parts)) continue;
      moved += this.#removeDir(dir, e.name, parts, depth);
    }
    return moved;
  }

  /** Unlinks `name` in `dir` unless it is a directory: true when it is gone. */
  #unlink(dir: number, name: Uint8Array, parts: readonly Uint8Array[]): boolean {
    const code = unlinkErrno(dir, name, 0);
    if (code === Errno.EISDIR) return false;
    if (code !== 0 && code !== Errno.ENOENT) throw new SysError(`unlink ${this.shown(parts, name)}`, code);
    this.count(0);
    return true;
  }

  /**
   * Removes directory `name` in `dir` with all in it; 1 when it was moved up to the top instead.
   * `tries` bounds how often it is found not empty, or not a directory, again: a container
   * filling it as fast as it is emptied makes the removal fail, not run on.
   */
  #removeDir(dir: number, name: Uint8Array, parts: readonly Uint8Array[], depth: number, tries = 3): number {
    const code = unlinkErrno(dir, name, AT.REMOVEDIR);
    if (code === 0 || code === Errno.ENOENT) {
      this.count(0);
      return 0;
    }
    if (tries === 0 || (code !== Errno.ENOTDIR && code !== Errno.ENOTEMPTY && code !== Errno.EEXIST)) throw new SysError(`rmdir ${this.shown(parts, name)}`, code);
    if (code === Errno.ENOTDIR) return this.#unlink(dir, name, parts) ? 0 : this.#removeDir(dir, name, parts, depth, tries - 1);
    if (depth >= MAX_DEPTH && this.#moveUp(dir, name)) return 1;
    const sub = openDirAt(dir, name, () => `open ${this.shown(parts, name)}`);
    // Not a directory any more, or gone: what is there now is unlinked, never entered.
    if (sub === undefined) return this.#unlink(dir, name, parts) ? 0 : this.#removeDir(dir, name, parts, depth, tries - 1);
    failpoint("remove-tree:opened");
    let moved: number;
    try {
      // A btrfs subvolume a container made (read-only, maybe: nothing in it could be unlinked) goes whole.
      if (this.onBtrfs && statFd(sub).ino === SUBVOLUME_ROOT_INO) {
        (require("../sys/btrfs.ts") as typeof import("../sys/btrfs.ts")).destroySubvolumeAt(dir, name, this.shown(parts, name));
        this.count(0);
        return 0;
      }
      moved = this.removeBelow(sub, [...parts, name], depth + 1);
    } finally {
      closeFd(sub);
    }
    return moved + this.#removeDir(dir, name, parts, depth, tries - 1);
  }

  /** Moves directory `name` in `dir` to the top under a new name; false where it cannot go (another filesystem). */
  #moveUp(dir: number, name: Uint8Array): boolean {
    for (;;) {
      const code = renameAtErrno(dir, name, this.top, `.deep-${this.#moved++}`);
      if (code === 0) return true;
      if (code !== Errno.EEXIST) return false;
    }
  }
}

/** The inode number of every btrfs subvolume's root directory. */
const SUBVOLUME_ROOT_INO = 256n;
