/**
 * Removes a file tree, as `rm -rf`, counting the entries it removes so a terminal can show
 * progress (./treeProgress.ts): removing a large snapshot or volume takes long enough to need
 * it. Names that are not UTF-8 are removed like any other (see src/fileName.ts). What vanishes
 * meanwhile (another remover, cleanup) is no error.
 */
import { listDir } from "../sys/dirent.ts";
import { Errno, SysError } from "../sys/libc.ts";
import { removeDir, removeDirIfEmpty, removeFile, statPath } from "../sys/pathCalls.ts";
import { treeCounter } from "./treeProgress.ts";
import { FS_MAGIC, filesystemType } from "../sys/file.ts";

/** Removes `path` and everything below it; a path that does not exist is no error. */
export function removeTree(path: string): void {
  const st = statPath(path, false);
  if (!st) return;
  const count = treeCounter();
  // A subvolume's root is inode 256 of its own: a directory's stat says so, its entry does not.
  const onBtrfs = st.isDirectory && filesystemType(path) === FS_MAGIC.btrfs;
  const remove = (p: string, isDirectory: boolean) => {
    if (!isDirectory) removeFile(p);
    // An empty directory (a new snapshot's fs and work, a new volume's _data) goes in one call, unlisted.
    else if (!removeDirIfEmpty(p)) {
      // A btrfs subvolume a container made (read-only, maybe: nothing in it could be unlinked) goes whole.
      if (onBtrfs && statPath(p, false)?.ino === SUBVOLUME_ROOT_INO) {
        (require("../sys/btrfs.ts") as typeof import("../sys/btrfs.ts")).destroySubvolume(p);
        return count(0);
      }
      let entries: ReturnType<typeof listDir> = [];
      try {
        entries = listDir(p, false);
      } catch (err) {
        if (!(err instanceof SysError && err.errno === Errno.ENOENT)) throw err;
      }
      // The directory's entry says what each is: no call fails to find out.
      for (const e of entries) remove(`${p}/${e.name}`, e.isDirectory);
      removeDir(p);
    }
    count(0);
  };
  remove(path, st.isDirectory);
}

/** The inode number of every btrfs subvolume's root directory. */
const SUBVOLUME_ROOT_INO = 256n;
