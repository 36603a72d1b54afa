/**
 * The on-disk layout of a stor root: every path below `--root` is spelled here and nowhere else.
 *
 * ```
 * <root>/serve.lock                          held (shared) by every running `stor serve`
 * <root>/restore.boot                        the boot id `stor restore` last ran in
 * <root>/volumes/<name>/_data                a local volume's data (its name is the user's)
 * <root>/volumes/<name>/opts.json            its mount options
 * <root>/volumes/.meta/metadata.db           volume metadata (and SQLite's side files)
 * <root>/volumes/.meta/locks/                per-volume lock files, gone when unlocked
 * <root>/volumes/.rm-*                       a volume being removed
 * <root>/snapshots/<snapshotter>/metadata.db snapshot metadata
 * <root>/snapshots/<snapshotter>/snapshots/<id>
 *                                            a snapshot; inside it, its snapshotter's own files
 *                                            (native: the tree; overlay: fs/ and work/; btrfs:
 *                                            fs, a subvolume)
 * <root>/snapshots/<snapshotter>/snapshots/new-*, rm-*
 *                                            a snapshot being made, one being removed
 * ```
 *
 * Volume names start with a letter or digit, so nothing the store keeps among the volumes
 * (`.meta`, `.rm-*`) can ever be a volume's directory, nor a volume's directory one of the store's
 * files: older roots kept `metadata.db` beside the volumes, where a volume named
 * `metadata.db-journal` broke SQLite; {@link LEGACY_VOLUME_DB} names it for the migration.
 */
import { join } from "node:path";

/** The directory holding every local volume. */
export const volumesDir = (root: string) => join(root, "volumes");

/** Where the store keeps its own files among the volumes: a name no volume can have. */
export const volumeMetaDir = (root: string) => join(volumesDir(root), ".meta");

/** The volume metadata database. */
export const volumeDb = (root: string) => join(volumeMetaDir(root), "metadata.db");

/** The volume lock files. */
export const volumeLocksDir = (root: string) => join(volumeMetaDir(root), "locks");

/** Where roots made before the `.meta` directory kept the volume database. */
export const LEGACY_VOLUME_DB = "metadata.db";

/** The directory of every snapshotter. */
export const snapshotsDir = (root: string) => join(root, "snapshots");

/** The directory of snapshotter `name`. */
export const snapshotterDir = (root: string, name: string) => join(snapshotsDir(root), name);

/** Snapshotter `name`'s metadata database. */
export const snapshotDb = (root: string, name: string) => join(snapshotterDir(root, name), "metadata.db");

/** Where snapshotter `name`'s snapshot directories live, each named by its id. */
export const snapshotDirs = (root: string, name: string) => join(snapshotterDir(root, name), "snapshots");

/** The lock every running `stor serve` holds shared, and restore takes exclusively. */
export const serveLock = (root: string) => join(root, "serve.lock");

/** The boot id restore last ran in. */
export const restoreBootFile = (root: string) => join(root, "restore.boot");
