/**
 * Per-name serialisation across processes: two processes working on one volume take turns,
 * and different volumes never wait on each other. An exclusive flock on `<dir>/<name>`; the
 * lock files stay, because removing one races with the next process that opens it.
 */
import { closeSync, mkdirSync, openSync } from "node:fs";
import { join } from "node:path";
import { lockPath, type FileLock } from "../sys/file.ts";

/** The lock files of the volumes below one root. */
export class NameLocks {
  readonly #dir: string;

  constructor(dir: string) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    this.#dir = dir;
  }

  /** Waits for and takes the lock of `name`, a valid volume name. */
  lock(name: string): FileLock {
    return this.#take(name, true)!;
  }

  /** Takes the lock of `name`, or returns undefined when another process holds it. */
  tryLock(name: string): FileLock | undefined {
    return this.#take(name, false);
  }

  #take(name: string, wait: boolean): FileLock | undefined {
    const path = join(this.#dir, name);
    closeSync(openSync(path, "a", 0o600));
    return lockPath(path, wait);
  }
}
