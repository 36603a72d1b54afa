/**
 * The native snapshotter: every active snapshot is a full copy of its parent, mounted with a
 * bind. Works on any filesystem; a reflink-capable one (XFS, btrfs) makes the copy cheap.
 */
import { chmodPath } from "../sys/pathCalls.ts";
import { copyTree } from "../fs/copyTree.ts";
import { removeTree } from "../fs/removeTree.ts";
import type { Snapshotter } from "./snapshotter.ts";

export const native: Snapshotter = {
  name: "native",
  diffStyle: "tree",

  unsupported: () => undefined,

  populate(s) {
    // A view is its parent's directory, mounted read-only; only active snapshots get a copy.
    if (s.kind === "active" && s.parents[0]) copyTree(s.parents[0], s.dir);
    else if (!s.parents[0]) chmodPath(s.dir, 0o755); // an empty root, as a new filesystem's
  },

  mounts(s) {
    const source = s.kind === "view" && s.parents[0] ? s.parents[0] : s.dir;
    return [{ Type: "bind", Source: source, Options: ["rbind", s.kind === "view" ? "ro" : "rw"] }];
  },

  upperDir: (dir) => dir,

  remove: removeTree,
};
