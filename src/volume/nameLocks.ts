/**
 * Per-name serialisation across processes: two processes working on one volume take turns,
 * and different volumes never wait on each other. An exclusive flock on `<dir>/<name>`, a file
 * that exists only while its lock is held, so creating and removing ever new volumes leaves no
 * lock files behind.
 *
 * Each such lock is held under a shared flock of `<dir>` itself. Where no lock file can be made
 * even in the reserve's room (btrfs with its metadata full: the reserve frees data, not metadata),
 * the directory is locked exclusively instead, which needs no new file: every volume then waits
 * for that one command, which a disk that full can spare.
 */
import { join } from "../path.ts";
import { listDir } from "../sys/dirent.ts";
import { lockEphemeral, lockEphemeralMany, lockPath, type FileLock, type GroupLock } from "../sys/file.ts";
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
    return this.#locked([name], (names) => lockEphemeral(join(this.#dir, names[0]!))!);
  }

  /**
   * Runs `fn` on `names` in batches of {@link BATCH}, each batch holding the locks of its names
   * while `fn` runs. Unless `wait`, a name whose lock another process holds is left out.
   */
  async inBatches(names: readonly string[], wait: boolean, fn: (names: string[]) => void | Promise<void>): Promise<void> {
    for (let i = 0; i < names.length; i += BATCH) {
      const batch = this.#locked(names.slice(i, i + BATCH), (some) => lockEphemeralMany(this.#dir, some, wait));
      try {
        if (batch.names.length > 0) await fn(batch.names);
      } finally {
        batch.release();
      }
    }
  }

  /**
   * The locks `take` takes of `names` under the directory's shared lock; where their files cannot
   * be made for want of room, the directory's exclusive lock, which holds every name.
   */
  #locked<T extends FileLock>(names: string[], take: (names: string[]) => T): T | GroupLock {
    const shared = lockPath(this.#dir, { shared: true })!;
    let own: T;
    try {
      own = withRoom(this.#db, noRoom, () => take(names));
    } catch (err) {
      shared.release(); // before the exclusive lock is waited for: flocks of one process conflict too
      if (!noRoom(err)) throw err;
      const all = lockPath(this.#dir)!;
      return { names, release: () => all.release() };
    }
    return {
      ...own,
      release() {
        own.release();
        shared.release();
      },
    };
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
