/**
 * A layer's bytes on their way to the tar reader, hashed (the diffID) by a worker thread while the
 * main thread applies them, through a ring of buffers in shared memory: nothing is copied between
 * the threads. Either the main thread fills the buffers ({@link HashRing.buffer} and
 * {@link HashRing.publish}: a stream, decompressed or not) or the worker reads them from a file
 * itself ({@link HashRing.readFile}), so that reading, too, happens off the main thread. The
 * worker starts when first needed: a small layer is hashed where it is read ({@link HashRing.hashHere}),
 * as starting a thread (a JavaScript VM of its own, about 4 ms) costs more than hashing it.
 */

/**
 * Buffers in the ring and the size of each: enough that the worker never holds the applier up,
 * and no more. A ring of 16 MiB cost an apply of a 34,500-entry layer twice the page faults of one
 * of 2 MiB (24,900 against 11,900: the worker's first reads into it, and JavaScriptCore's heap
 * refilling more blocks on the main thread and its warm-up thread), and 10–14% of its time
 * (medians 1.70–1.76 against 1.51–1.52 s, cold cache, ext4; two sets of 7 runs each in turns).
 * Reads of 512 KiB keep the syscalls few.
 */
const SLOTS = 4;
const SLOT_BYTES = 1 << 19;

/** Slot states, one Int32 per slot. */
const FREE = 0; // the filler's: the main thread's (publish) or the worker's (readFile)
const HASHING = 1; // published by the main thread, being hashed
const FILLED = 2; // read and hashed by the worker, for the main thread
const FAILED = 3; // the worker's read failed; its message follows

/**
 * The worker: plain JavaScript in a string, so that the compiled binary needs no second entry
 * point. Messages: the ring (once); then either `[slot, length]` per published buffer or
 * `{ fd }` to read a whole file; then `null` for the digest.
 */
const WORKER_SOURCE = `
const { readSync } = require("node:fs");
const hasher = new Bun.CryptoHasher("sha256");
let slots, states, lengths;
const mark = (slot, state) => { Atomics.store(states, slot, state); Atomics.notify(states, slot); };
function readFile(fd) {
  for (let slot = 0; ; slot = (slot + 1) % slots.length) {
    Atomics.wait(states, slot, ${FILLED});
    let n;
    try {
      n = readSync(fd, slots[slot], 0, slots[slot].length, null);
    } catch (err) {
      postMessage({ error: err.message });
      return mark(slot, ${FAILED});
    }
    hasher.update(slots[slot].subarray(0, n));
    lengths[slot] = n;
    mark(slot, ${FILLED});
    if (n === 0) return;
  }
}
onmessage = ({ data }) => {
  if (data === null) postMessage({ digest: hasher.digest("hex") });
  else if (Array.isArray(data)) {
    hasher.update(slots[data[0]].subarray(0, data[1]));
    mark(data[0], ${FREE});
  } else if (data.fd !== undefined) readFile(data.fd);
  else ({ slots, states, lengths } = data);
};
`;

let workerUrl: string | undefined;

/**
 * A ring of shared buffers and the worker thread that hashes what passes through them; or, for a
 * small input, a hash on the calling thread and no worker at all.
 */
export class HashRing {
  #worker: Worker | undefined;
  #slots: Uint8Array[] = [];
  readonly #states = new Int32Array(new SharedArrayBuffer(SLOTS * 4));
  readonly #lengths = new Int32Array(new SharedArrayBuffer(SLOTS * 4));
  readonly #messages: { digest?: string; error?: string }[] = [];
  #waiting: (() => void) | undefined;
  #next = 0;
  /** What {@link hashHere} hashed, when the worker never started. */
  #here: Bun.CryptoHasher | undefined;

  /** The worker, started on first use with the ring it shares. */
  #started(): Worker {
    if (this.#worker) return this.#worker;
    if (this.#here) throw new Error("HashRing: hashHere and the worker are one or the other");
    workerUrl ??= URL.createObjectURL(new Blob([WORKER_SOURCE], { type: "application/javascript" }));
    const worker = new Worker(workerUrl);
    const ring = new SharedArrayBuffer(SLOTS * SLOT_BYTES);
    this.#slots = Array.from({ length: SLOTS }, (_, i) => new Uint8Array(ring, i * SLOT_BYTES, SLOT_BYTES));
    worker.addEventListener("message", (e) => this.#received(e.data));
    worker.addEventListener("error", (e) => this.#died(e.message));
    worker.postMessage({ slots: this.#slots, states: this.#states, lengths: this.#lengths });
    return (this.#worker = worker);
  }

  /** Hashes `bytes` on this thread, for an input too small to pay for the worker. Use it alone, not with the rest. */
  hashHere(bytes: Uint8Array): void {
    if (this.#worker) throw new Error("HashRing: hashHere and the worker are one or the other");
    (this.#here ??= new Bun.CryptoHasher("sha256")).update(bytes);
  }

  #received(message: { digest?: string; error?: string }): void {
    this.#messages.push(message);
    this.#waiting?.();
  }

  /** The worker failed outright: whatever waits on a slot wakes up to the error. */
  #died(error: string): void {
    this.#received({ error: `sha256 worker: ${error}` });
    for (let slot = 0; slot < SLOTS; slot++) {
      Atomics.store(this.#states, slot, FAILED);
      Atomics.notify(this.#states, slot);
    }
  }

  /** The worker's next message; its error, if it reports one, is thrown. */
  async #message(): Promise<{ digest?: string }> {
    while (this.#messages.length === 0) await new Promise<void>((resolve) => (this.#waiting = resolve));
    const m = this.#messages.shift()!;
    if (m.error !== undefined) throw new Error(m.error);
    return m;
  }

  /** Waits while `slot` is in `state`; throws the worker's error if it failed. */
  async #waitWhile(slot: number, state: number): Promise<void> {
    const wait = Atomics.waitAsync(this.#states, slot, state);
    if (wait.async) await wait.value;
    if (Atomics.load(this.#states, slot) === FAILED) {
      await this.#message();
      throw new Error("sha256 worker failed");
    }
  }

  /**
   * The next buffer for the main thread to fill, once the worker is done with it. It stays valid
   * until the following call: the bytes published from it may be used until then.
   */
  async buffer(): Promise<Uint8Array> {
    this.#started();
    await this.#waitWhile(this.#next, HASHING);
    return this.#slots[this.#next]!;
  }

  /** Hands the first `length` bytes of the last {@link buffer} to the worker to hash. */
  publish(length: number): void {
    const slot = this.#next;
    Atomics.store(this.#states, slot, HASHING);
    this.#started().postMessage([slot, length]);
    this.#next = (slot + 1) % SLOTS;
  }

  /**
   * The content of the open file `fd` from its current offset, read and hashed by the worker.
   * A chunk stays valid until the next one is asked for. Use either this or {@link publish}.
   */
  async *readFile(fd: number): AsyncGenerator<Uint8Array> {
    this.#started().postMessage({ fd });
    for (let slot = 0; ; slot = (slot + 1) % SLOTS) {
      await this.#waitWhile(slot, FREE);
      const n = this.#lengths[slot]!;
      if (n === 0) return;
      yield this.#slots[slot]!.subarray(0, n);
      Atomics.store(this.#states, slot, FREE);
      Atomics.notify(this.#states, slot);
    }
  }

  /** The hex sha256 of everything published or read. */
  async digest(): Promise<string> {
    if (!this.#worker) return (this.#here ?? new Bun.CryptoHasher("sha256")).digest("hex");
    this.#worker.postMessage(null);
    return (await this.#message()).digest!;
  }

  /** Stops the worker, if it started; call it however the hashing ended. */
  close(): void {
    this.#worker?.terminate();
  }
}
