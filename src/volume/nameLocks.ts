/**
 * Per-name serialisation across processes: two processes working on one volume take turns,
 * and different volumes never wait on each other. An exclusive flock on `<dir>/<name>`, a file
 * that exists only while its lock is held, so creating and removing ever new volumes leaves no
 * lock files behind.
 */
import { join } from "node:path";
import { lockEphemeral, type FileLock } from "../sys/file.ts";

/** Names locked and worked on at a time by {@link NameLocks.inBatches}: each holds a lock file open meanwhile. */
const BATCH = 256;

/** The lock files of the volumes below one root. */
export class NameLocks {
  readonly #dir: string;

  /** `dir` holds the lock files; the volume service makes it before any lock is taken. */
  constructor(dir: string) {
    this.#dir = dir;
  }

  /** Waits for and takes the lock of `name`, a valid volume name. */
  lock(name: string): FileLock {
    return lockEphemeral(join(this.#dir, name))!;
  }

  /** Takes the lock of `name`, or returns undefined when another process holds it. */
  tryLock(name: string): FileLock | undefined {
    return lockEphemeral(join(this.#dir, name), false);
  }

  /**
   * Runs `fn` on `names` in batches of {@link BATCH}, each batch holding the locks of its names
   * while `fn` runs. Unless `wait`, a name whose lock another process holds is left out.
   */
  async inBatches(names: readonly string[], wait: boolean, fn: (names: string[]) => void | Promise<void>): Promise<void> {
    for (let i = 0; i < names.length; i += BATCH) {
      const held: FileLock[] = [];
      try {
        const batch = [];
        for (const name of names.slice(i, i + BATCH)) {
          const lock = wait ? this.lock(name) : this.tryLock(name);
          if (lock) (held.push(lock), batch.push(name));
        }
        if (batch.length > 0) await fn(batch);
      } finally {
        for (const lock of held) lock.release();
      }
    }
  }
}
