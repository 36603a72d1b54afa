/**
 * The btrfs snapshotter: each snapshot is a subvolume, `<id>/sv`, whose directory `fs` is the
 * snapshot's tree. A prepare snapshots the parent's subvolume, in constant time whatever its size
 * (an empty subvolume without a parent), with the subvolumes a container made inside it; a commit
 * makes the subvolume read-only, those inside too; a view is a read-only snapshot. Mounted with a bind of `fs`, as native, and diffed as native: by comparing
 * two trees. The tree is a directory of the subvolume, not its root, so that what works on it
 * (an apply's undo trash) has room beside it on the same subvolume: a rename never crosses one.
 */
import { chmodSync, mkdirSync } from "../nodeFs.ts";
import { join } from "../path.ts";
import { diskUsage } from "../fs/diskUsage.ts";
import { FS_MAGIC, filesystemType } from "../sys/file.ts";
import { listDir } from "../sys/dirent.ts";
import { Errno, SysError } from "../sys/libc.ts";
import type { Snapshotter } from "./snapshotter.ts";
import { Lazy, treeRemoval } from "../lazy.ts";

// Loaded when btrfs snapshots are worked on (ahead, to write: see load): every command loads each
// snapshotter, and most never use this one.
const subvolumeCalls = new Lazy(() => import("../sys/btrfs.ts"), () => require("../sys/btrfs.ts") as typeof import("../sys/btrfs.ts"));
const subvolumes = () => subvolumeCalls.get();
const removeTree = (path: string) => treeRemoval.get().removeTree(path);

const subvolume = (dir: string) => join(dir, "sv");
const fsDir = (dir: string) => join(subvolume(dir), "fs");

/**
 * Destroys subvolume `sv` with the subvolumes a container made in it. Those are found from the
 * kernel's refs and reached by their path, which it cannot give past about 4 KB: then the tree
 * is emptied by removeTree's walk by descriptor, which destroys each subvolume it meets, first.
 */
function destroyWhole(sv: string): void {
  try {
    subvolumes().destroySubvolume(sv);
  } catch (err) {
    if (!(err instanceof SysError && err.errno === Errno.ENAMETOOLONG)) throw err;
    for (const e of listDir(sv, false)) removeTree(join(sv, e.name));
    subvolumes().destroySubvolume(sv);
  }
}

export const btrfs: Snapshotter = {
  name: "btrfs",
  diffStyle: "tree",

  unsupported: (home, probe) => (filesystemType(probe) === FS_MAGIC.btrfs ? undefined : `${home} is not on btrfs`),

  populate(s) {
    const sv = subvolume(s.dir);
    if (s.parents[0]) return subvolumes().snapshotSubvolume(subvolume(s.parents[0]), sv, s.kind === "view");
    subvolumes().createSubvolume(sv);
    chmodSync(sv, 0o700);
    mkdirSync(fsDir(s.dir), 0o755);
    chmodSync(fsDir(s.dir), 0o755); // an empty root, as a new filesystem's, not left to the umask
    if (s.kind === "view") subvolumes().setSubvolumeReadOnly(sv, true);
  },

  commit: (dir) => subvolumes().sealSubvolume(subvolume(dir)),

  mounts: (s) => [{ Type: "bind", Source: fsDir(s.dir), Options: ["rbind", s.kind === "view" ? "ro" : "rw"] }],

  upperDir: fsDir,

  // The quota group's exclusive bytes when quotas are on: what removing the snapshot frees.
  usage(dir) {
    const u = subvolumes().subvolumeUsage(subvolume(dir));
    // The subvolume's own root directory holds the tree; it is not the snapshot's.
    return u ? { size: u.size, inodes: u.inodes - 1 } : diskUsage(fsDir(dir));
  },

  async load() {
    await Promise.all([subvolumeCalls.load(), treeRemoval.load()]);
  },

  remove(dir) {
    // Made by a crash before populate, a `new-*` directory may have no subvolume yet.
    if (subvolumes().isSubvolume(subvolume(dir))) destroyWhole(subvolume(dir));
    removeTree(dir);
  },
};
