/**
 * Trees removed on a helper thread while the caller goes on: a long prune renames and commits its
 * next batch of volumes while the last batch's trash goes. Removing mostly waits for the disk (on
 * a filesystem mounted with -o discard, every freed block is a synchronous discard), so the two
 * overlap. The thread runs the executable's entry point, as copyThread.ts's does, removes trees
 * one at a time in the order given, and reports progress and each tree's outcome as messages.
 */
import type { Worker } from "node:worker_threads";
import { describe } from "../errors.ts";
import { removeTree } from "./removeTree.ts";
import { observeTreeProgress, treeCounter, type TreeCounts } from "./treeProgress.ts";

/** How often the thread reports progress while it removes a tree. */
const REPORT_MS = 50;

/** A message from the thread: progress (entries and bytes since the last), and a tree done. */
interface Report {
  entries: number;
  bytes: number;
  /** The tree done, with why it is not gone if it is not. */
  done?: { id: number; error?: string };
}

/** One helper thread, how many of its trees are not done yet, and why it ended if it did. */
interface Thread {
  worker: Worker;
  waiting: number;
  ended?: string;
}

/** Helper threads removing trees; see {@link RemoveThreads.remove}. */
export class RemoveThreads {
  readonly #threads: Thread[];
  readonly #waiting = new Map<number, { resolve: (error: string | undefined) => void; thread: Thread }>();
  readonly #count = treeCounter();
  #next = 0;

  /**
   * Starts `count` threads (see helperThreads.ts for who may). Two remove twice as fast as one:
   * their trees are in different directories, whose removals the kernel does not serialize.
   */
  constructor(count = 2) {
    const { Worker } = require("node:worker_threads") as typeof import("node:worker_threads");
    this.#threads = Array.from({ length: count }, () => {
      // The executable's entry point, which runs runRemoveThread when it sees this workerData.
      const thread = { worker: new Worker(Bun.main, { workerData: { removeThread: true } }), waiting: 0 };
      thread.worker.unref();
      thread.worker.on("message", (r: Report) => {
        if (r.entries > 0) this.#count(r.bytes, r.entries);
        if (r.done) this.#settle(r.done.id, r.done.error);
      });
      // A thread that cannot run leaves every tree it had: each stays for a later cleanup.
      thread.worker.on("error", (err) => this.#failAll(thread, describe(err)));
      thread.worker.on("exit", () => this.#failAll(thread, "the removing thread ended"));
      return thread;
    });
  }

  /**
   * Removes the tree `path` on one of the threads, in turn. Resolves once it is gone, or with why
   * not (what could not go stays). With no thread left running, it is removed on this one.
   */
  remove(path: string): Promise<string | undefined> {
    const id = this.#next++;
    const live = this.#threads.filter((t) => t.ended === undefined);
    if (live.length === 0) return Promise.resolve(removeOrWhy(path));
    const thread = live[id % live.length]!;
    // Waited for: the process must not end while a thread still has work.
    if (thread.waiting++ === 0) thread.worker.ref();
    thread.worker.postMessage({ id, path });
    return new Promise((resolve) => this.#waiting.set(id, { resolve, thread }));
  }

  /** Ends the threads; call it once every removal has resolved. */
  close(): void {
    for (const { worker } of this.#threads) {
      worker.removeAllListeners("exit");
      void worker.terminate();
    }
  }

  #settle(id: number, error: string | undefined): void {
    const w = this.#waiting.get(id);
    if (!w) return; // settled already: its thread ended before this report arrived
    this.#waiting.delete(id);
    if (--w.thread.waiting === 0) w.thread.worker.unref();
    w.resolve(error);
  }

  #failAll(thread: Thread, why: string): void {
    thread.ended ??= why;
    for (const [id, w] of this.#waiting) if (w.thread === thread) this.#settle(id, why);
  }
}

/** The thread's side: removes each tree it is sent (see {@link RemoveThreads}). */
export function runRemoveThread(): void {
  const { parentPort } = require("node:worker_threads") as typeof import("node:worker_threads");
  const port = parentPort!;
  let sent: TreeCounts = { entries: 0, bytes: 0 };
  let last: TreeCounts = sent;
  let at = 0;
  observeTreeProgress((p) => {
    last = p;
    if (Date.now() - at < REPORT_MS) return;
    at = Date.now();
    port.postMessage({ entries: p.entries - sent.entries, bytes: p.bytes - sent.bytes } satisfies Report);
    sent = { ...p };
  });
  port.on("message", ({ id, path }: { id: number; path: string }) => {
    sent = last = { entries: 0, bytes: 0 };
    const error = removeOrWhy(path);
    port.postMessage({ entries: last.entries - sent.entries, bytes: last.bytes - sent.bytes, done: { id, error } } satisfies Report);
  });
}

/** Removes the tree `path`: undefined when it is gone, else why not. */
function removeOrWhy(path: string): string | undefined {
  try {
    removeTree(path);
    return undefined;
  } catch (err) {
    return describe(err);
  }
}
