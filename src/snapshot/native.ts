/**
 * The native snapshotter: every active snapshot is a full copy of its parent, mounted with a
 * bind. Works on any filesystem; a reflink-capable one (XFS, btrfs) makes the copy cheap.
 */
import { chmodPath, closeFd } from "../sys/pathCalls.ts";
import { openOwnTree } from "../sys/mount.ts";
import { copyTree } from "../fs/copyTree.ts";
import type { Snapshotter } from "./snapshotter.ts";

/**
 * Copies the parent's tree at `parent` into `dir` as the parent's filesystem holds it, through a
 * copy of its mount without what is mounted inside (see openOwnTree): a bind someone put there
 * neither hides what the parent holds (its own `/usr` bound onto itself left the copy's empty) nor
 * brings another filesystem's files into the copy.
 */
function copyParent(parent: string, dir: string): void {
  const tree = openOwnTree(parent);
  try {
    copyTree(`/proc/self/fd/${tree}/.`, dir);
  } finally {
    closeFd(tree);
  }
}

export const native: Snapshotter = {
  name: "native",
  diffStyle: "tree",

  unsupported: () => undefined,

  populate(s) {
    // A view is its parent's directory, mounted read-only; only active snapshots get a copy.
    if (s.kind === "active" && s.parents[0]) copyParent(s.parents[0], s.dir);
    else if (!s.parents[0]) chmodPath(s.dir, 0o755); // an empty root, as a new filesystem's
  },

  mounts(s) {
    const source = s.kind === "view" && s.parents[0] ? s.parents[0] : s.dir;
    return [{ Type: "bind", Source: source, Options: ["rbind", s.kind === "view" ? "ro" : "rw"] }];
  },

  upperDir: (dir) => dir,
};
