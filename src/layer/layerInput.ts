/**
 * Where a layer's bytes come from, and how they reach the tar reader: uncompressed, hashed on the
 * way (the diffID), in large buffers. A plain tar in a regular file, the common case, is read and
 * hashed by the {@link HashRing}'s worker thread, or at once on the main thread when it is small;
 * anything else (stdin, a compressed layer, a blob streamed from an image) is decompressed on the
 * main thread and copied into the ring.
 */
import { closeSync, createReadStream, fstatSync, openSync, readFileSync, readSync } from "../nodeFs.ts";
import { describe, InvalidArgumentError, NotFoundError, StorError } from "../errors.ts";
import { READ_CHUNK, decompress, detectCompression } from "./compression.ts";
import type { HashRing } from "./hashRing.ts";

/** A layer file opened for applying, or a stream of a layer's (possibly compressed) bytes. */
export type LayerInput = LayerFile | AsyncIterable<Uint8Array>;

/**
 * A plain layer file up to this size is read and hashed on the main thread, at once: the
 * worker's start (about 4 ms) would cost more than hashing it (SHA-256 here: over 1 GB/s).
 */
const SMALL_LAYER_BYTES = 4 << 20;

/** A layer in a file, held open. */
export class LayerFile {
  readonly #fd: number;

  /** Opens `path`; a missing file is not found (exit 3), what holds no layer is bad input (exit 2). */
  constructor(path: string) {
    try {
      this.#fd = openSync(path, "r");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") throw new NotFoundError(`layer ${path}`);
      throw new StorError(`open layer ${path}`, describe(err));
    }
    try {
      refuseNonLayer(this.#fd, path);
    } catch (err) {
      closeSync(this.#fd);
      throw err;
    }
  }

  /** The size of an uncompressed tar in a regular file (one the worker can read itself), else undefined. */
  #plainSize(): number | undefined {
    const st = fstatSync(this.#fd);
    if (!st.isFile()) return undefined;
    const head = new Uint8Array(4);
    return detectCompression(head.subarray(0, readSync(this.#fd, head, 0, head.length, 0))) === "none" ? st.size : undefined;
  }

  /** The uncompressed bytes, hashed by `ring`; closes the file at the end. */
  async *chunks(ring: HashRing): AsyncGenerator<Uint8Array> {
    try {
      const size = this.#plainSize();
      if (size !== undefined && size <= SMALL_LAYER_BYTES) {
        // All of it, from the offset to the end however long the file is now.
        const bytes: Uint8Array = readFileSync(this.#fd);
        ring.hashHere(bytes);
        yield bytes;
      }
      else if (size !== undefined) yield* ring.readFile(this.#fd);
      else yield* copied(decompress(createReadStream("", { fd: this.#fd, autoClose: false, highWaterMark: READ_CHUNK })), ring);
    } finally {
      closeSync(this.#fd);
    }
  }
}

/**
 * Refuses a layer read from descriptor `fd` (named `name`) that cannot be one: a directory, or a
 * character device, which never ends (/dev/zero) or waits for a person (a terminal). /dev/null
 * is the empty layer, as it always was.
 */
function refuseNonLayer(fd: number, name: string): void {
  const st = fstatSync(fd);
  if (st.isDirectory()) throw new InvalidArgumentError(`layer ${name}`, "is a directory");
  if (st.isCharacterDevice() && st.rdev !== NULL_DEVICE) throw new InvalidArgumentError(`layer ${name}`, "is a character device, not a file or a pipe");
}

/** The device number of /dev/null, 1:3. */
const NULL_DEVICE = (1 << 8) | 3;

/** Standard input as a layer's bytes, refused where it cannot hold one (see refuseNonLayer). */
export function stdinLayer(): AsyncIterable<Uint8Array> {
  refuseNonLayer(0, "stdin");
  return process.stdin;
}

/**
 * The uncompressed bytes of `input` in buffers of `ring`, hashed by its worker. A chunk yielded
 * stays valid until the next one is asked for.
 */
export function uncompressedChunks(input: LayerInput, ring: HashRing): AsyncGenerator<Uint8Array> {
  return input instanceof LayerFile ? input.chunks(ring) : copied(decompress(input), ring);
}

/** Copies `input` into the ring, a full buffer at a time (the last one partly). */
async function* copied(input: AsyncIterable<Uint8Array>, ring: HashRing): AsyncGenerator<Uint8Array> {
  let buf = await ring.buffer();
  let filled = 0;
  for await (const chunk of input) {
    for (let done = 0; done < chunk.length; ) {
      const n = Math.min(chunk.length - done, buf.length - filled);
      buf.set(chunk.subarray(done, done + n), filled);
      filled += n;
      done += n;
      if (filled === buf.length) {
        ring.publish(filled);
        yield buf;
        buf = await ring.buffer();
        filled = 0;
      }
    }
  }
  if (filled > 0) {
    ring.publish(filled);
    yield buf.subarray(0, filled);
  }
}
