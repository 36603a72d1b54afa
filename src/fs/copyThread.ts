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

/**
 * What the copying thread hands the second one (as workerData): the files packed in shared memory
 * (see {@link packJobs}), the control slots and the room for the error.
 */
interface Shared {
  jobs: PackedJobs;
  ctl: Int32Array;
  error: Uint8Array;
}

/**
 * File jobs in shared memory, one record each, where {@link at} says: a new thread gets them
 * without a copy. Handed over as objects, 30,000 of them took the thread 0.6–0.75 s to receive
 * (structured cloning, 90,000 arrays), a time in which the first thread copied alone.
 */
interface PackedJobs {
  bytes: Uint8Array;
  /** Where each record starts in {@link bytes}, and after the last, where it ends. */
  at: Float64Array;
}

/** A record's fixed part: size, blocks (f64), uid, gid, mode, what the file has as created (u32), times (32), then the two paths' lengths (u32). */
const FIXED = 8 + 8 + 4 * 4 + 32 + 4 + 4;
const HAS_OWNER = 1;
const HAS_MODE = 2;

/** Packs `files` into shared memory (see {@link PackedJobs}). */
function packJobs(files: readonly FileJob[]): PackedJobs {
  let length = 0;
  for (const f of files) length += FIXED + f.s.length + f.d.length;
  const bytes = new Uint8Array(new SharedArrayBuffer(length));
  const at = new Float64Array(new SharedArrayBuffer(8 * (files.length + 1)));
  const view = new DataView(bytes.buffer);
  let o = 0;
  for (const [k, f] of files.entries()) {
    at[k] = o;
    view.setFloat64(o, f.size, true);
    view.setFloat64(o + 8, f.blocks, true);
    view.setUint32(o + 16, f.uid, true);
    view.setUint32(o + 20, f.gid, true);
    view.setUint32(o + 24, f.mode, true);
    view.setUint32(o + 28, (f.has.owner ? HAS_OWNER : 0) | (f.has.mode ? HAS_MODE : 0), true);
    bytes.set(f.times, o + 32);
    view.setUint32(o + 64, f.s.length, true);
    view.setUint32(o + 68, f.d.length, true);
    bytes.set(f.s, o + FIXED);
    bytes.set(f.d, o + FIXED + f.s.length);
    o += FIXED + f.s.length + f.d.length;
  }
  at[files.length] = o;
  return { bytes, at };
}

/** Job `k` of `jobs`, in memory of this thread's own (slices, not views of the shared bytes). */
function unpackJob({ bytes, at }: PackedJobs, k: number): FileJob {
  const o = at[k]!;
  const view = new DataView(bytes.buffer, o, FIXED);
  const [sLength, dLength] = [view.getUint32(64, true), view.getUint32(68, true)];
  const has = view.getUint32(28, true);
  return {
    size: view.getFloat64(0, true),
    blocks: view.getFloat64(8, true),
    uid: view.getUint32(16, true),
    gid: view.getUint32(20, true),
    mode: view.getUint32(24, true),
    has: { owner: (has & HAS_OWNER) !== 0, mode: (has & HAS_MODE) !== 0 },
    times: bytes.slice(o + 32, o + 64),
    s: bytes.slice(o + FIXED, o + FIXED + sLength),
    d: bytes.slice(o + FIXED + sLength, o + FIXED + sLength + dLength),
  };
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
export function startCopyThread(files: readonly FileJob[]): CopyThread {
  const ctl = new Int32Array(new SharedArrayBuffer(4 * 4));
  const error = new Uint8Array(new SharedArrayBuffer(ERROR_BYTES));
  const { Worker } = require("node:worker_threads") as typeof import("node:worker_threads");
  // The executable's entry point, which runs runCopyThread when it sees this workerData.
  const worker = new Worker(Bun.main, { workerData: { copyThread: { jobs: packJobs(files), ctl, error } satisfies Shared } });
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
export function runCopyThread({ jobs, ctl, error }: Shared): void {
  if (Atomics.compareExchange(ctl, STATE, NOT_STARTED, RUNNING) !== NOT_STARTED) return;
  try {
    takeFiles(jobs.at.length - 1, (k) => unpackJob(jobs, k), ctl, () => Atomics.load(ctl, STOP) === 1);
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
