/**
 * The btrfs snapshotter: each snapshot's tree is a subvolume, `<id>/fs`. A prepare snapshots the
 * parent's subvolume, in constant time whatever its size (an empty subvolume without a parent);
 * a commit makes the subvolume read-only; a view is a read-only snapshot. Mounted with a bind, as
 * native, and diffed as native: by comparing two trees.
 */
import { chmodSync } from "node:fs";
import { join } from "node:path";
import { diskUsage } from "../fs/diskUsage.ts";
import { createSubvolume, destroySubvolume, isSubvolume, setSubvolumeReadOnly, snapshotSubvolume, subvolumeUsage } from "../sys/btrfs.ts";
import { FS_MAGIC, filesystemType } from "../sys/file.ts";
import { removeTree } from "../fs/removeTree.ts";
import type { Snapshotter } from "./snapshotter.ts";

const fsDir = (dir: string) => join(dir, "fs");

export const btrfs: Snapshotter = {
  name: "btrfs",
  diffStyle: "tree",

  unsupported: (root) => (filesystemType(root) === FS_MAGIC.btrfs ? undefined : `${root} is not on btrfs`),

  populate(s) {
    const fs = fsDir(s.dir);
    if (s.parents[0]) return snapshotSubvolume(fsDir(s.parents[0]), fs, s.kind === "view");
    createSubvolume(fs);
    chmodSync(fs, 0o755); // an empty root, as a new filesystem's, not left to the umask
    if (s.kind === "view") setSubvolumeReadOnly(fs, true);
  },

  commit: (dir) => setSubvolumeReadOnly(fsDir(dir), true),

  mounts: (s) => [{ Type: "bind", Source: fsDir(s.dir), Options: ["rbind", s.kind === "view" ? "ro" : "rw"] }],

  upperDir: fsDir,

  // The quota group's exclusive bytes when quotas are on: what removing the snapshot frees.
  usage: (dir) => subvolumeUsage(fsDir(dir)) ?? diskUsage(fsDir(dir)),

  remove(dir) {
    // Made by a crash before populate, a `new-*` directory may have no subvolume yet.
    if (isSubvolume(fsDir(dir))) destroySubvolume(fsDir(dir));
    removeTree(dir);
  },
};
