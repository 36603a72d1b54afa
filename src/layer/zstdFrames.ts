/**
 * Follows the frame and block structure of a zstd stream (RFC 8878) as it passes, to tell a
 * complete stream from a truncated one. Bun's zstd decompressor ends quietly on truncated input,
 * so without this check a layer cut short could pass for a smaller, valid one.
 */
import { InvalidArgumentError } from "../errors.ts";

const FRAME_MAGIC = 0xfd2fb528;
const SKIPPABLE_MASK = 0xfffffff0;
const SKIPPABLE_MAGIC = 0x184d2a50;

type State = "magic" | "descriptor" | "block" | "skippable";

const corrupt = (why: string) => new InvalidArgumentError("zstd stream", why);

/** Feed it the compressed bytes with {@link update}; {@link end} throws unless the last frame is whole. */
export class ZstdFrameCheck {
  #state: State = "magic";
  /** Bytes still to skip before the next structure. */
  #skip = 0;
  /** Bytes of the structure being read, until it is whole. */
  #pending: number[] = [];
  #checksumAfterLast = false;
  #frames = 0;

  update(chunk: Uint8Array): void {
    let i = 0;
    while (i < chunk.length) {
      if (this.#skip > 0) {
        const n = Math.min(this.#skip, chunk.length - i);
        this.#skip -= n;
        i += n;
        continue;
      }
      this.#pending.push(chunk[i++]!);
      this.#step();
    }
  }

  /** Acts on the pending bytes once the current structure is complete. */
  #step(): void {
    const p = this.#pending;
    const le = (n: number) => p.slice(0, n).reduce((v, b, k) => v + b * 2 ** (8 * k), 0);
    switch (this.#state) {
      case "magic": {
        if (p.length < 4) return;
        const magic = le(4);
        if (magic === FRAME_MAGIC) this.#state = "descriptor";
        else if ((magic & SKIPPABLE_MASK) >>> 0 === SKIPPABLE_MAGIC) this.#state = "skippable";
        else throw corrupt("unknown frame magic number");
        break;
      }
      case "descriptor": {
        const d = p[0]!;
        if (d & 0x08) throw corrupt("reserved bit set in frame header");
        const single = (d & 0x20) !== 0;
        this.#checksumAfterLast = (d & 0x04) !== 0;
        this.#skip = (single ? 0 : 1) + [0, 1, 2, 4][d & 3]! + [single ? 1 : 0, 2, 4, 8][d >> 6]!;
        this.#state = "block";
        this.#frames++;
        break;
      }
      case "block": {
        if (p.length < 3) return;
        const header = le(3);
        const type = (header >> 1) & 3;
        if (type === 3) throw corrupt("reserved block type");
        this.#skip = type === 1 ? 1 : header >>> 3;
        if (header & 1) {
          this.#skip += this.#checksumAfterLast ? 4 : 0;
          this.#state = "magic";
        }
        break;
      }
      case "skippable":
        if (p.length < 4) return;
        this.#skip = le(4);
        this.#state = "magic";
        break;
    }
    this.#pending = [];
  }

  /** Throws when the stream stopped inside a frame. */
  end(): void {
    if (this.#frames === 0 || this.#state !== "magic" || this.#skip > 0 || this.#pending.length > 0) throw corrupt("truncated");
  }
}
