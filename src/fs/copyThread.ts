/**
 * The second thread of a large tree copy (see copyTree.ts). It runs the executable's own entry
 * point, as serve's threads do, and takes files from the same shared counter as the thread that
 * walked the tree. That thread waits for it without returning to its event loop (a copy is
 * synchronous), so all they share is in shared memory: the counter, the state of each, and the
 * second one's error.
 */
import { describe, exitCodeOf, StorError } from "../errors.ts";
import { utf8Bytes } from "../fileName.ts";
import { takeFiles, type FileJob } from "./copyTree.ts";

/** Slots of the shared Int32Array; slot 0 is the next file to take (see takeFiles). */
const STATE = 1; // the second thread's state, below
const STOP = 2; // set when the first thread failed: the second takes no more
const ERROR_LENGTH = 3;

const NOT_STARTED = 0;
const RUNNING = 1;
const DONE = 2;
const FAILED = 3;
const CANCELLED = 4; // the first thread finished before the second began: it does nothing

/** Room for the error: two fields of {@link cut} length, each character up to six bytes as JSON. */
const ERROR_BYTES = 64 * 1024;

/** A field of the error, cut to fit {@link ERROR_BYTES} whatever it holds (a path may be 4 KiB). */
const cut = (s: string) => (s.length > 4096 ? `${s.slice(0, 4096)}…` : s);

/** What the copying thread hands the second one (as workerData). */
interface Shared {
  files: FileJob[];
  ctl: Int32Array;
  error: Uint8Array;
}

/** The first thread's side of a copy shared with a second thread. */
export interface CopyThread {
  /** The shared counter files are taken from (slot 0). */
  next: Int32Array;
  /** Whether the second thread failed: the first takes no more files. */
  failed(): boolean;
  /**
   * Waits for the second thread to finish the file it has; then throws its error, if it failed,
   * unless `stop` (the first thread failed: its own error is the one to report).
   */
  join(stop: boolean): void;
}

/** Starts a second thread copying `files` (see {@link takeFiles}). */
export function startCopyThread(files: FileJob[]): CopyThread {
  const ctl = new Int32Array(new SharedArrayBuffer(4 * 4));
  const error = new Uint8Array(new SharedArrayBuffer(ERROR_BYTES));
  const { Worker } = require("node:worker_threads") as typeof import("node:worker_threads");
  // The executable's entry point, which runs runCopyThread when it sees this workerData.
  const worker = new Worker(Bun.main, { workerData: { copyThread: { files, ctl, error } satisfies Shared } });
  worker.unref();
  // A thread that cannot start never takes a file: join finds it not started and cancels it.
  worker.on("error", () => {});
  return {
    next: ctl,
    failed: () => Atomics.load(ctl, STATE) === FAILED,
    join(stop) {
      if (stop) Atomics.store(ctl, STOP, 1);
      if (Atomics.compareExchange(ctl, STATE, NOT_STARTED, CANCELLED) === NOT_STARTED) return;
      while (Atomics.load(ctl, STATE) === RUNNING) Atomics.wait(ctl, STATE, RUNNING, 1000);
      if (stop || Atomics.load(ctl, STATE) !== FAILED) return;
      // Decoded from a copy (slice), not from a view of the shared memory.
      const { what, why, code } = JSON.parse(new TextDecoder().decode(error.slice(0, Atomics.load(ctl, ERROR_LENGTH))));
      throw new StorError(what, why, code);
    },
  };
}

/** The second thread's work, on the thread the entry point started with {@link Shared} as workerData. */
export function runCopyThread({ files, ctl, error }: Shared): void {
  if (Atomics.compareExchange(ctl, STATE, NOT_STARTED, RUNNING) !== NOT_STARTED) return;
  try {
    takeFiles(files, ctl, () => Atomics.load(ctl, STOP) === 1);
    Atomics.store(ctl, STATE, DONE);
  } catch (err) {
    const report = err instanceof StorError ? { what: err.what, why: err.why, code: err.code } : { what: "copy", why: describe(err), code: exitCodeOf(err) };
    const bytes = utf8Bytes(JSON.stringify({ ...report, what: cut(report.what), why: cut(report.why) }));
    error.set(bytes);
    Atomics.store(ctl, ERROR_LENGTH, bytes.length);
    Atomics.store(ctl, STATE, FAILED);
  }
  Atomics.notify(ctl, STATE);
}
