/**
 * The calls of `stor serve` that work the disk at length or wait on the kernel (a native prepare
 * copies its parent's whole tree, commit and usage walk one, a volume mount may wait on a
 * network server) run on worker threads, so that the process keeps answering the quick calls
 * (Stat, List, Mounts, Get) and the other socket meanwhile. Each service has threads of its own:
 * volume mounts stuck on an NFS server or on a CLI's lock never leave containerd's Prepare
 * waiting for a thread, nor the other way round. Each thread opens its service over the same
 * root (see thread.ts): the threads serialise on the same SQLite and file locks as separate stor
 * processes do.
 */
import { availableParallelism } from "node:os";
import type { Config } from "../config.ts";
import { type ExitCode, StorError } from "../errors.ts";
import { log } from "../log.ts";
import type { SnapshotService } from "../snapshot/service.ts";
import type { VolumeService } from "../volume/service.ts";

/** The services a thread can run calls of. */
export interface Services {
  snapshots: SnapshotService;
  volumes: VolumeService;
}

/** The methods of each service that run on a thread. */
export interface Offloaded {
  snapshots: "prepare" | "view" | "commit" | "remove" | "usage" | "cleanup" | "updateLabels" | "mounts";
  volumes: "create" | "remove" | "mount" | "unmount";
}

/** The arguments and the result of method `M` of service `S`. */
type Method<S extends keyof Services, M extends Offloaded[S]> = M extends keyof Services[S]
  ? Services[S][M] extends (...args: infer A) => infer R
    ? { args: A; result: Awaited<R> }
    : never
  : never;

/** What a thread opens its service with. */
export interface ThreadInit {
  config: Config;
  /** The snapshotter of the snapshot service, as the main thread resolved it. */
  snapshotter?: string;
}

/** The first message to a thread: the service it runs calls of, and what it opens it with. */
export interface ThreadStart extends ThreadInit {
  service: keyof Services;
}

/** A call posted to a thread; `null` asks it to close its database and end. */
export interface Call {
  id: number;
  method: string;
  args: unknown[];
}

/** A thread's answer: the result, or the error as it was thrown there. */
export type Reply = { id: number; result: unknown } | { id: number; error: { what: string; why: string; code: ExitCode } | { message: string } };

interface Pending {
  call: Call;
  done: (result: unknown) => void;
  fail: (err: Error) => void;
  /** Aborted when the client gave the call up: one not yet started never is. */
  signal?: AbortSignal;
}

/** Threads of a service at most: enough to overlap copies with each other and with fsyncs. */
const MAX_THREADS = 4;

/**
 * A pool of threads running calls of service `S`. With every thread busy, more are started, up to
 * `burst` (calls stuck in the kernel, mounts on a server that does not answer, must not hold up
 * every other); beyond that, calls queue. A thread started so ends once it is idle.
 */
export class Threads<S extends keyof Services> {
  readonly #start: ThreadStart;
  readonly #base: number;
  readonly #burst: number;
  readonly #idle: Worker[] = [];
  readonly #busy = new Map<Worker, Pending>();
  readonly #queue: Pending[] = [];
  /** Threads that have answered a call: worth replacing should they die. */
  readonly #proven = new WeakSet<Worker>();
  /** Why no thread is left, when none is. */
  #broken: string | undefined;
  #nextId = 0;
  #closed = false;

  constructor(service: S, init: ThreadInit, { threads = Math.min(MAX_THREADS, Math.max(2, availableParallelism())), burst = 0 }: { threads?: number; burst?: number } = {}) {
    this.#start = { ...init, service };
    this.#base = threads;
    this.#burst = Math.max(burst, threads);
    for (let i = 0; i < threads; i++) this.#idle.push(this.#spawn());
  }

  /** Runs `method(...args)` of the service on a thread. */
  run<M extends Offloaded[S]>(method: M, ...args: Method<S, M>["args"]): Promise<Method<S, M>["result"]> {
    return this.runFor(undefined, method, ...args);
  }

  /**
   * {@link run} for a client whose giving up aborts `signal`: a call it gave up before a thread
   * took it is dropped, never run (a queue of cancelled calls held up every call after them).
   */
  runFor<M extends Offloaded[S]>(signal: AbortSignal | undefined, method: M, ...args: Method<S, M>["args"]): Promise<Method<S, M>["result"]> {
    if (this.#closed || this.#broken) return Promise.reject(this.#error(method, this.#broken ?? "the server is shutting down"));
    return new Promise((done, fail) => {
      this.#queue.push({ call: { id: this.#nextId++, method, args }, done: done as (r: unknown) => void, fail, signal });
      this.#dispatch();
    });
  }

  /**
   * Ends the threads: calls still queued fail, a call running finishes, then each thread closes
   * its database. A thread still busy after `graceMs` is cut off and not waited for: one blocked
   * in a syscall (a lock, an NFS server) cannot be stopped, so the process must end without it,
   * which the databases survive as they survive a crash.
   */
  async close(graceMs: number): Promise<void> {
    this.#closed = true;
    for (const p of this.#queue.splice(0)) p.fail(this.#error(p.call.method, "the server is shutting down"));
    const threads = [...this.#idle.splice(0), ...this.#busy.keys()];
    const ended = threads.map(
      (w) =>
        new Promise<void>((done) => {
          w.addEventListener("close", () => done());
          w.postMessage(null);
        }),
    );
    let timer: Timer | undefined;
    const late = new Promise<void>((done) => {
      timer = setTimeout(() => {
        for (const p of this.#busy.values()) log.warn(`${this.#start.service} ${p.call.method}: still running after ${graceMs} ms of shutdown; cut off`);
        for (const w of threads) w.terminate();
        done();
      }, graceMs);
    });
    await Promise.race([Promise.all(ended), late]);
    clearTimeout(timer);
  }

  #spawn(): Worker {
    // The executable's own entry point, which becomes thread.ts on a thread: a URL relative to
    // this module would name the source file, not the copy inside the compiled binary.
    const w = new Worker(Bun.main);
    w.onmessage = ({ data }: MessageEvent<Reply>) => this.#answered(w, data);
    // A thread that dies takes its call with it. One that had worked is replaced; one that never
    // answered is not (it would die again at once): with no thread left, calls fail with its error.
    w.onerror = (e) => {
      e.preventDefault();
      const why = `thread died: ${errorLine(e.message)}`;
      const p = this.#busy.get(w);
      p?.fail(this.#error(p.call.method, why));
      this.#busy.delete(w);
      const idle = this.#idle.indexOf(w);
      if (idle >= 0) this.#idle.splice(idle, 1);
      w.terminate();
      if (!this.#closed && this.#proven.has(w)) this.#idle.push(this.#spawn());
      if (this.#idle.length + this.#busy.size === 0) {
        this.#broken = why;
        for (const q of this.#queue.splice(0)) q.fail(this.#error(q.call.method, why));
      }
      this.#dispatch();
    };
    w.postMessage(this.#start);
    return w;
  }

  #error(method: string, why: string): StorError {
    return new StorError(`${this.#start.service} ${method}`, why);
  }

  #answered(w: Worker, reply: Reply): void {
    this.#proven.add(w);
    const pending = this.#busy.get(w);
    this.#busy.delete(w);
    // One started for a burst ends when nothing waits for it.
    if (this.#queue.length === 0 && this.#idle.length + this.#busy.size >= this.#base) w.postMessage(null);
    else this.#idle.push(w);
    if (pending) {
      if ("result" in reply) pending.done(reply.result);
      else if ("message" in reply.error) pending.fail(new Error(reply.error.message));
      else pending.fail(new StorError(reply.error.what, reply.error.why, reply.error.code));
    }
    this.#dispatch();
  }

  #dispatch(): void {
    while (this.#queue.length > 0) {
      const p = this.#queue[0]!;
      if (p.signal?.aborted) {
        this.#queue.shift();
        p.fail(this.#error(p.call.method, "given up by its client before it ran"));
        continue;
      }
      if (this.#idle.length === 0) {
        if (this.#closed || this.#busy.size >= this.#burst) return;
        this.#idle.push(this.#spawn());
      }
      this.#queue.shift();
      const w = this.#idle.pop()!;
      this.#busy.set(w, p);
      w.postMessage(p.call);
    }
  }
}

/** The error itself from Bun's report of a thread's uncaught error, which quotes the source around it. */
function errorLine(message: string): string {
  return /^error: (.*)$/m.exec(message)?.[1] ?? message.split("\n")[0]!;
}
