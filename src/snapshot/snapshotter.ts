/**
 * The snapshotter interface. A snapshotter knows its directories, its mounts and what it is;
 * the metadata, transactions and directory life cycle belong to {@link ./service.ts}, so a new
 * snapshotter is one short file plus its line in {@link ./registry.ts}.
 */
import type { Usage } from "../fs/diskUsage.ts";
import type { Mount } from "../sys/mount.ts";

/** The three kinds of snapshot, as containerd names them. */
export type Kind = "active" | "view" | "committed";

/**
 * How a snapshot's changes are found and its deletions written, which the layer code switches
 * on. `upper`: the snapshot's upper directory holds only what it changed, deletions as overlayfs
 * whiteouts (0/0 character devices) and opaque directories (an xattr), read against the
 * parents' upper directories. `tree`: the snapshot is a whole tree, compared with its parent's
 * tree, and a deletion deletes in place.
 */
export type DiffStyle = "upper" | "tree";

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
  /** Its name in `-s`, the config and the layout (`<root>/snapshots/<name>`). */
  readonly name: string;
  readonly diffStyle: DiffStyle;
  /**
   * Why this snapshotter cannot keep its snapshots in `home`, its directory (kernel, filesystem,
   * path), or undefined when it can. `probe` is where to look at the filesystem: `home`, or the
   * nearest directory above it that exists.
   */
  unsupported(home: string, probe: string): string | undefined;
  /** Fills a new snapshot's directory `s.dir`, still under its temporary name. */
  populate(s: SnapshotDirs): void;
  /**
   * Seals snapshot `dir` once its metadata says committed (btrfs: read-only); none by default.
   * Called again on sealed snapshots by cleanup, after a crash: it must be idempotent.
   */
  commit?(dir: string): void;
  /** The mounts that present the snapshot's file tree. */
  mounts(s: SnapshotDirs): Mount[];
  /**
   * The directory holding what the snapshot itself adds: its upper layer for overlay (deletions
   * as whiteouts), its whole tree for the others. Its usage is the snapshot's usage.
   */
  upperDir(dir: string): string;
  /** Space the snapshot in `dir` uses; a walk of {@link upperDir} by default. */
  usage?(dir: string): Usage;
  /**
   * Removes directory `dir` and everything in it, whatever state a crash left it in: a snapshot's,
   * a half-populated `new-*`, a trash `rm-*`. Nothing there is a no-op. By default, as `rm -rf`
   * (src/fs/removeTree.ts).
   */
  remove?(dir: string): void;
  /**
   * Loads ahead, with `import()`, code that its writes run and every other command can do without
   * (see src/lazy.ts); the service's opening to write calls it.
   */
  load?(): Promise<void>;
}
