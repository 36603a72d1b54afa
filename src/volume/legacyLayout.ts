/**
 * Roots made before `volumes/.meta` kept the volume database beside the volumes, where a volume
 * named after one of SQLite's side files (`metadata.db-journal`, `-wal`, `-shm`) broke every
 * volume command. Opening such a root moves the database and its side files into `.meta`;
 * a directory by one of those names is a volume, and stays.
 */
import { mkdirSync, renameSync, rmSync } from "../nodeFs.ts";
import { statPath } from "../sys/pathCalls.ts";
import { join } from "../path.ts";
import { LEGACY_VOLUME_DB, volumeDb, volumeMetaDir, volumesDir } from "../layout.ts";

/** SQLite's files of one database: the database first, so that its journal never arrives alone. */
const SIDE_FILES = ["", "-wal", "-journal", "-shm"] as const;

/**
 * Moves a volume database of the older layout into `.meta`; returns the files moved. Safe to run
 * by several processes at once and after a crash half-way: each file moves once, by whoever
 * renames it first, and each process has moved or seen moved every one before it opens the
 * database.
 */
export function migrateLegacyVolumeDb(root: string): string[] {
  const home = volumesDir(root);
  // The common case, a migrated or new root, costs two lstat calls.
  if (!isFile(join(home, LEGACY_VOLUME_DB)) && !isFile(join(home, `${LEGACY_VOLUME_DB}-wal`))) return [];
  mkdirSync(volumeMetaDir(root), { recursive: true, mode: 0o700 });
  const moved: string[] = [];
  for (const suffix of SIDE_FILES) {
    const from = join(home, LEGACY_VOLUME_DB + suffix);
    const to = volumeDb(root) + suffix;
    if (!isFile(from) || statPath(to, false)) continue;
    try {
      renameSync(from, to);
      moved.push(from);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err; // another process moved it
    }
  }
  // The older layout's lock files; the new ones live in `.meta/locks` and leave nothing behind.
  rmSync(join(home, ".locks"), { recursive: true, force: true });
  return moved;
}

/** The older layout's database when a root still has it there, for a read that must not move it. */
export function unmigratedVolumeDb(root: string): string | undefined {
  const legacy = join(volumesDir(root), LEGACY_VOLUME_DB);
  return !isFile(volumeDb(root)) && isFile(legacy) ? legacy : undefined;
}

/** A regular file: a directory of that name is a volume. */
function isFile(path: string): boolean {
  return statPath(path, false)?.isFile ?? false;
}
