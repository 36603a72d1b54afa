/**
 * Room kept on a store's filesystem so that stor works when it is full. A removal writes its
 * transaction to SQLite's WAL before it frees anything, a command whose store has no -shm and WAL
 * at the moment (an older stor left none) makes them before it reads anything, and a volume's
 * lock, restore's locks and its boot record are files made anew: on a disk out of blocks or of
 * inodes all of these fail, and the operator could not even list what to remove, nor restore at
 * boot. So each store keeps a file of {@link RESERVE_BYTES} allocated beside its database
 * ({@link metadataReserve}), made by any command that writes. What fails so runs in
 * {@link withRoom}, which gives the reserve up and tries again; a later command that writes, or a
 * later removal in the same `stor serve`, makes it again once there is room.
 *
 * On btrfs a full disk is often its metadata full, which freed data blocks do not relieve: SQLite
 * cannot size its -shm, nor can any file be made. There the reserve also holds metadata, as
 * extended attributes ({@link XATTRS}), which go with it.
 */
import { metadataReserve } from "./layout.ts";
import { FS_MAGIC, allocateFile, filesystemType, setXattr } from "./sys/file.ts";
import { errnoCode } from "./sys/libc.ts";
import { removeFile, statPath } from "./sys/pathCalls.ts";
import { describe } from "./errors.ts";
import { log } from "./log.ts";

/**
 * The reserve's size: many times what removing a snapshot or a batch of volume records writes
 * (WAL frames of a few pages each), and a checkpoint's growth of the database besides.
 */
export const RESERVE_BYTES = 2 * 1024 * 1024;

/**
 * The metadata the reserve holds on btrfs, as this many extended attributes of {@link XATTR_BYTES}
 * (512 KB): enough, given back, for SQLite's -shm and a volume's removal (measured on a btrfs whose
 * metadata was full: that much freed let `volume ls`, an unmount and two rms run).
 */
const XATTRS = 32;

/** Nearly a metadata block of 16 KiB, btrfs's default, each. */
const XATTR_BYTES = 16_000;

/** The databases whose reserve this process gave up: the room is its own until it makes one again. */
const givenUp = new Set<string>();

/**
 * Makes the reserve beside the database at `db`, unless it is there whole or this process gave it
 * up. Where there is no room (or the filesystem cannot allocate ahead), it is left for a later
 * command: nothing depends on it but stor on a full disk.
 */
export function keepReserve(db: string): void {
  if (!givenUp.has(db) && statPath(metadataReserve(db))?.size !== RESERVE_BYTES) make(db);
}

/**
 * Makes again the reserve this process gave up beside `db`, if there is room now: a long-running
 * `stor serve` opens its stores once. Costs nothing where none was given up.
 */
export function takeBackReserve(db: string): void {
  if (givenUp.has(db) && make(db)) givenUp.delete(db);
}

/**
 * Runs `fn`; should it fail for want of room (`full(err)`), gives up the reserve beside the
 * database `db` and runs it once more. With no reserve there to give up, it runs again all the
 * same: another process may just have given one up, and the room may be there.
 */
export function withRoom<T>(db: string, full: (err: unknown) => boolean, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (!full(err)) throw err;
    givenUp.add(db);
    try {
      removeFile(metadataReserve(db));
    } catch {
      // Not a file that can go (a directory of that name, where an older layout kept the database
      // among the volumes): no reserve, and `fn` tells what failed.
    }
    return fn();
  }
}

/** Whether `err` is a file call's ENOSPC: no block, or no inode, left. */
export const noRoom = (err: unknown): boolean => errnoCode(err) === "ENOSPC";

/** Allocates the reserve beside `db`; false where it cannot be had now. */
function make(db: string): boolean {
  const path = metadataReserve(db);
  try {
    allocateFile(path, RESERVE_BYTES, 0o600);
    if (filesystemType(path) === FS_MAGIC.btrfs) holdMetadata(path);
    return true;
  } catch (err) {
    log.debug(`no reserve beside ${db} for now: ${describe(err)}`);
    try {
      removeFile(path); // a part allocated before the disk filled is no reserve
    } catch {
      // Left short: the next write tries it again.
    }
    return false;
  }
}

/**
 * Gives the reserve at `path` btrfs metadata of its own (see {@link XATTRS}), as far as
 * there is room for it and the filesystem's blocks hold such attributes: its data is a reserve
 * without it.
 */
function holdMetadata(path: string): void {
  const value = new Uint8Array(XATTR_BYTES);
  try {
    for (let i = 0; i < XATTRS; i++) setXattr(path, `user.stor.reserve.${i}`, value);
  } catch (err) {
    log.debug(`no metadata in the reserve ${path}: ${describe(err)}`);
  }
}
