/**
 * Buffered reading of exact byte counts from a stream of chunks, for the tar reader. What is
 * already buffered is served without waiting, so the common case (a header or a small file
 * inside the current chunk) costs no promise. What it returns is a view into the current chunk
 * (a copy only when the bytes span two), valid until the stream is next read: the source may
 * then reuse its buffers. Views are Buffers, which decode text without copying.
 */
import { malformed } from "./tarFormat.ts";

export class ByteStream {
  readonly #source: AsyncIterator<Uint8Array>;
  #chunk: Buffer = Buffer.alloc(0);
  #pos = 0;
  /** Bytes consumed so far. */
  offset = 0;

  constructor(source: AsyncIterable<Uint8Array>) {
    this.#source = source[Symbol.asyncIterator]();
  }

  /** Bytes buffered and not yet consumed. */
  get buffered(): number {
    return this.#chunk.length - this.#pos;
  }

  /** Waits for the next chunk once the current one is used up; false at the end of the stream. */
  async #fill(): Promise<boolean> {
    while (this.#pos >= this.#chunk.length) {
      const r = await this.#source.next();
      if (r.done) return false;
      this.#chunk = Buffer.isBuffer(r.value) ? r.value : Buffer.from(r.value.buffer, r.value.byteOffset, r.value.byteLength);
      this.#pos = 0;
    }
    return true;
  }

  /** A view of the next `n` bytes at most, which must be buffered (at least one). */
  view(n: number): Buffer {
    const end = Math.min(this.#chunk.length, this.#pos + n);
    const out = this.#chunk.subarray(this.#pos, end);
    this.offset += end - this.#pos;
    this.#pos = end;
    return out;
  }

  /** Exactly `n` bytes; undefined when the stream ends before the first of them. */
  async exact(n: number, what: () => string): Promise<Buffer | undefined> {
    if (this.buffered >= n) return this.view(n);
    if (!(await this.#fill())) return undefined;
    if (this.buffered >= n) return this.view(n);
    const out = Buffer.allocUnsafe(n);
    for (let got = 0; got < n; ) {
      if (!(await this.#fill())) throw malformed(`truncated ${what()}`);
      const part = this.view(n - got);
      out.set(part, got);
      got += part.length;
    }
    return out;
  }

  /** Between 1 and `n` bytes, as they come. */
  async some(n: number, what: () => string): Promise<Buffer> {
    if (this.buffered === 0 && !(await this.#fill())) throw malformed(`truncated ${what()}`);
    return this.view(n);
  }

  async skip(n: number, what: () => string): Promise<void> {
    // A negative count would step back onto bytes already read, forever.
    if (!(n >= 0)) throw malformed(`negative length of ${what()}`);
    let left = n;
    while (left > this.buffered) left -= (await this.some(left, what)).length;
    this.view(left);
  }

  /** Reads whatever is left. */
  async drain(): Promise<void> {
    this.view(this.buffered);
    for (let r = await this.#source.next(); !r.done; r = await this.#source.next()) this.offset += r.value.length;
  }
}
