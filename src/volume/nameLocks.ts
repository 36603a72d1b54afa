/**
 * Per-name serialisation across processes: two processes working on one volume take turns,
 * and different volumes never wait on each other. An exclusive flock on `<dir>/<name>`, a file
 * that exists only while its lock is held, so creating and removing ever new volumes leaves no
 * lock files behind.
 */
import { join } from "../path.ts";
import { listDir } from "../sys/dirent.ts";
import { lockEphemeral, lockEphemeralMany, type FileLock } from "../sys/file.ts";
import { Errno, SysError } from "../sys/libc.ts";
import { noRoom, withRoom } from "../spaceReserve.ts";

/** Names locked and worked on at a time by {@link NameLocks.inBatches}. */
export const BATCH = 256;

/** The lock files of the volumes below one root. */
export class NameLocks {
  readonly #dir: string;
  readonly #db: string;

  /**
   * `dir` holds the lock files; the volume service makes it before any lock is taken. A lock file
   * is made anew, so on a disk out of inodes or blocks the reserve beside the volume database `db`
   * makes room for it (see withRoom).
   */
  constructor(dir: string, db: string) {
    this.#dir = dir;
    this.#db = db;
  }

  /** Waits for and takes the lock of `name`, a valid volume name. */
  lock(name: string): FileLock {
    return withRoom(this.#db, noRoom, () => lockEphemeral(join(this.#dir, name))!);
  }

  /**
   * Runs `fn` on `names` in batches of {@link BATCH}, each batch holding the locks of its names
   * while `fn` runs. Unless `wait`, a name whose lock another process holds is left out.
   */
  async inBatches(names: readonly string[], wait: boolean, fn: (names: string[]) => void | Promise<void>): Promise<void> {
    for (let i = 0; i < names.length; i += BATCH) {
      const batch = withRoom(this.#db, noRoom, () => lockEphemeralMany(this.#dir, names.slice(i, i + BATCH), wait));
      try {
        if (batch.names.length > 0) await fn(batch.names);
      } finally {
        batch.release();
      }
    }
  }

  /**
   * Removes the lock files of holders that died (a process killed while it held one): each free
   * one is taken and released, which unlinks it, as the next locker of its name would. One held
   * by a live process stays; so does anything else found there (a directory), which no lock is.
   */
  sweep(): void {
    let entries;
    try {
      entries = listDir(this.#dir);
    } catch (err) {
      if (err instanceof SysError && err.errno === Errno.ENOENT) return; // no lock was ever taken
      throw err;
    }
    for (const e of entries) if (!e.isDirectory) lockEphemeral(join(this.#dir, e.name), false)?.release();
  }
}
