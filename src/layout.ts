/**
 * The on-disk layout of a stor root: every path below `--root` is spelled here and nowhere else.
 *
 * {@link LAYOUT} lists every path and what it holds (the man page and docs/CLI.md print it).
 *
 * Volume names start with a letter or digit, so nothing the store keeps among the volumes
 * (`.meta`, `.new-*`, `.rm-*`) can ever be a volume's directory, nor a volume's directory one of the store's
 * files: older roots kept `metadata.db` beside the volumes, where a volume named
 * `metadata.db-journal` broke SQLite; {@link LEGACY_VOLUME_DB} names it for the migration.
 */
import { basename, dirname, join } from "./path.ts";
import type { StorError } from "./errors.ts";
import { dirsError } from "./dirsError.ts";

/** Every path below a root, relative to it, and what it holds. */
export const LAYOUT: readonly (readonly [path: string, holds: string])[] = [
  ["serve.lock", "held (shared) by every running `stor serve`"],
  ["restore.lock", "held by a running `stor restore`: the next waits for it"],
  ["restore.boot", "the boot id `stor restore` last ran in"],
  ["volumes/<name>/_data", "a local volume's data (its name is the user's)"],
  ["volumes/<name>/opts.json", "its mount options"],
  ["volumes/<name>/labels.json", "the labels it was created with, if any: what `stor restore` gives it back if its metadata is missing"],
  ["volumes/.meta/metadata.db", "volume metadata; its -wal (SQLite's write-ahead log, kept between commands: part of the database) and -shm"],
  ["volumes/.meta/metadata.reserve", "disk kept for a full disk: given up when SQLite finds no room to record a removal or to open the store, and made again once there is room"],
  ["volumes/.meta/locks/", "per-volume lock files, gone when unlocked (one a killed process held stays until the next locker of its name or `stor restore` takes it; a batch of names may share one file)"],
  ["volumes/.new-*", "a volume being made, renamed to its name once whole"],
  ["volumes/.rm-*", "a volume being removed, or several, each under its name inside"],
  ["snapshots/<snapshotter>/metadata.db", "snapshot metadata; its -wal and -shm, likewise"],
  ["snapshots/<snapshotter>/metadata.reserve", "disk kept for a full disk, likewise"],
  ["snapshots/<snapshotter>/snapshots/<id>", "a snapshot; inside it, its snapshotter's own files (native: the tree; overlay: fs/ and work/; btrfs: fs, a subvolume)"],
  ["snapshots/<snapshotter>/snapshots/new-*, rm-*", "a snapshot being made, one being removed"],
  ["snapshots/<snapshotter>/unpacks/<key>", "locked by the `stor unpack` applying a layer into active snapshot <key> (`extract-…`), gone when it is done; one a killed unpack left is free, and restore and cleanup remove it and its snapshot"],
  ["…/new-apply-*, beside a snapshot's upper directory", "what an apply under way deleted, put back if it fails (native: among the snapshots; overlay: in <id>; btrfs: in <id>/sv)"],
];

/** The prefix of an apply's trash (see src/layer/undoJournal.ts), which cleanup removes after a crash. */
export const APPLY_TRASH_PREFIX = "new-apply-";

/** Where an apply to the tree at `tree` keeps its trash and journal: beside it, on its filesystem, one name a tree. */
export const applyTrashPath = (tree: string) => join(dirname(tree), `${APPLY_TRASH_PREFIX}${basename(tree)}`);

/** The directory holding every local volume. */
export const volumesDir = (root: string) => join(root, "volumes");

/** Where the store keeps its own files among the volumes: a name no volume can have. */
export const volumeMetaDir = (root: string) => join(volumesDir(root), ".meta");

/** The volume metadata database. */
export const volumeDb = (root: string) => join(volumeMetaDir(root), "metadata.db");

/** The space reserve (see src/spaceReserve.ts) beside the metadata database `db`, either store's. */
export const metadataReserve = (db: string) => join(dirname(db), "metadata.reserve");

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

/** Where unpacks claim the snapshots they apply into (see src/layer/extractKey.ts), in a snapshotter's directory `home`. */
export const extractClaimsDir = (home: string) => join(home, "unpacks");

/** The lock every running `stor serve` holds shared, and restore takes exclusively. */
export const serveLock = (root: string) => join(root, "serve.lock");

/** The lock a running `stor restore` holds, so that restores take turns. */
export const restoreLock = (root: string) => join(root, "restore.lock");

/** The boot id restore last ran in. */
export const restoreBootFile = (root: string) => join(root, "restore.boot");

/**
 * stor's directory in /run (a tmpfs, emptied at boot): one for the host, whatever the root, for
 * what lasts a boot and belongs to no root. Only root may write it.
 */
export const RUN_DIR = "/run/stor";

/** Where stor serves take their claim locks of socket paths (see {@link socketClaimLock}). */
export const SOCKET_CLAIMS_DIR = join(RUN_DIR, "sockets");

/**
 * The claim lock of unix socket `socket` (absolute, its directory's symlinks resolved), which a
 * stor serve holds while it binds or unbinds it; named by a hash of the path, which may be longer
 * than a file's name may be.
 */
export const socketClaimLock = (socket: string) => join(SOCKET_CLAIMS_DIR, `${new Bun.CryptoHasher("sha256").update(socket).digest("hex").slice(0, 32)}.lock`);

/** The error for a root whose directories could not be made (see {@link dirsError}). */
export function rootError(root: string, err: unknown): StorError {
  return dirsError("root", root, root, err);
}
