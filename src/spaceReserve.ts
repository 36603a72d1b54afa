/**
 * Room kept on a store's filesystem so that stor works when it is full. A removal writes its
 * transaction to SQLite's WAL before it frees anything, and a command whose store has no -shm and
 * WAL at the moment (a command before it left none) makes them before it reads anything: on a full
 * filesystem both fail, and the operator could not even list what to remove, nor restore at boot.
 * So each store keeps a file of {@link RESERVE_BYTES} allocated beside its database
 * ({@link metadataReserve}), made by any command that writes. An open or a removal that SQLite
 * finds the disk full for gives it up and tries again (openDatabase and inFreeingTransaction in
 * src/db.ts), and a later command that writes, or a later removal in the same `stor serve`, makes
 * it again once there is room.
 */
import { metadataReserve } from "./layout.ts";
import { allocateFile } from "./sys/file.ts";
import { removeFile, statPath } from "./sys/pathCalls.ts";
import { describe } from "./errors.ts";
import { log } from "./log.ts";

/**
 * The reserve's size: many times what removing a snapshot or a batch of volume records writes
 * (WAL frames of a few pages each), and a checkpoint's growth of the database besides.
 */
export const RESERVE_BYTES = 2 * 1024 * 1024;

/**
 * Makes the reserve beside the database at `db`, unless it is there whole. Where there is no room
 * (or the filesystem cannot allocate ahead), it is left for a later command: nothing depends on it
 * but stor on a full disk.
 */
export function keepReserve(db: string): void {
  const path = metadataReserve(db);
  if (statPath(path)?.size === RESERVE_BYTES) return;
  try {
    allocateFile(path, RESERVE_BYTES, 0o600);
  } catch (err) {
    log.debug(`no reserve beside ${db} for now: ${describe(err)}`);
    try {
      removeFile(path); // a part allocated before the disk filled is no reserve
    } catch {
      // Left short: the next write tries it again.
    }
  }
}

/** Frees the reserve beside the database at `db`: true when there was one to free. */
export function giveUpReserve(db: string): boolean {
  return removeFile(metadataReserve(db));
}
