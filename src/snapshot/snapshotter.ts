/**
 * The snapshotter interface. A snapshotter only knows its directories and its mounts; the
 * metadata, transactions and directory life cycle belong to {@link ./snapshots.ts}.
 */
import type { Mount } from "../sys/mount.ts";
import type { SnapshotterName } from "../config.ts";

/** The three kinds of snapshot, as containerd names them. */
export type Kind = "active" | "view" | "committed";

/** What a snapshotter sees of a snapshot when asked for its mounts. */
export interface SnapshotDirs {
  kind: Kind;
  /** The snapshot's own directory. */
  dir: string;
  /** Directories of its ancestors, nearest parent first. */
  parents: string[];
}

/** One storage strategy for snapshots. */
export interface Snapshotter {
  readonly name: SnapshotterName;
  /**
   * Why this snapshotter cannot run on `root` (kernel or filesystem), or undefined when it can.
   * `root` is the snapshotter's directory; it exists.
   */
  unsupported(root: string): string | undefined;
  /** Fills a new snapshot's directory `s.dir`, still under its temporary name. */
  populate(s: SnapshotDirs): void;
  /** The mounts that present the snapshot's file tree. */
  mounts(s: SnapshotDirs): Mount[];
  /**
   * The directory holding what the snapshot itself adds: its upper layer for overlay (deletions
   * as whiteouts), its whole tree for native. Its usage is the snapshot's usage.
   */
  upperDir(dir: string): string;
}
