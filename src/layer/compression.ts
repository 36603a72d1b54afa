/**
 * Layer compression: gzip and zstd through node:zlib, detected on input by their magic numbers
 * (as containerd's compression.DecompressStream does), chosen on output. node:zlib and node:stream
 * (with node:events) are loaded only for a compressed layer: about 1.5 ms that a plain one skips.
 */
import type { Readable as ReadableType, Transform } from "node:stream";
import { InvalidArgumentError } from "../errors.ts";
import { ZstdFrameCheck } from "./zstdFrames.ts";

export type Compression = "gzip" | "zstd" | "none";

const GZIP_MAGIC = [0x1f, 0x8b];
const ZSTD_MAGIC = [0x28, 0xb5, 0x2f, 0xfd];
/** Output chunks of the decompressors: large enough that per-chunk costs vanish. */
const CHUNK = 256 * 1024;
/**
 * Reads of a file that may be compressed (a stream's chunks, each a fresh buffer). Of 1 MiB, a
 * 170 MiB gzip layer's reads cost its apply 16,000 page faults more than of 256 KiB (48,000–52,000
 * against 31,000–33,000 in all), and 4–8% of its time; reads of 64 KiB saved no more time.
 */
export const READ_CHUNK = 256 * 1024;
/**
 * The largest zstd window decoded, 512 MiB: what containerd's decoder (klauspost/compress, at its
 * default) accepts, and as much memory as one hostile frame can make stor set aside. libzstd's own
 * default, 128 MiB, refused layers that `zstd --long` writes and containerd unpacks.
 */
const ZSTD_WINDOW_LOG_MAX = 29;

const startsWith = (bytes: Uint8Array, magic: number[]) => magic.every((b, i) => bytes[i] === b);

const zlib = () => require("node:zlib") as typeof import("node:zlib");
const Readable = () => (require("node:stream") as typeof import("node:stream")).Readable as typeof ReadableType;

/** The compression of a stream that begins with `head` (at least 4 bytes unless the stream is shorter). */
export function detectCompression(head: Uint8Array): Compression {
  if (startsWith(head, GZIP_MAGIC)) return "gzip";
  // A zstd stream may begin with a skippable frame (magic 0x184D2A50–5F, as pzstd writes), as containerd knows.
  if (startsWith(head, ZSTD_MAGIC) || (head.length >= 4 && (head[0]! & 0xf0) === 0x50 && head[1] === 0x2a && head[2] === 0x4d && head[3] === 0x18)) return "zstd";
  return "none";
}

/** A compressor for `kind`, or undefined for none. */
export function compressor(kind: Compression): Transform | undefined {
  if (kind === "gzip") return zlib().createGzip();
  if (kind === "zstd") return zlib().createZstdCompress();
  return undefined;
}

/** The decompressed bytes of `input`, whatever of gzip, zstd or plain it is. */
export async function* decompress(input: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  const it = input[Symbol.asyncIterator]();
  const head: Uint8Array[] = [];
  let headBytes = 0;
  while (headBytes < ZSTD_MAGIC.length) {
    const r = await it.next();
    if (r.done) break;
    head.push(r.value);
    headBytes += r.value.length;
  }
  let read = 0;
  const all = async function* () {
    for (const chunk of head) {
      read += chunk.length;
      yield chunk;
    }
    for (let r = await it.next(); !r.done; r = await it.next()) {
      read += r.value.length;
      yield r.value;
    }
  };
  const kind = detectCompression(Buffer.concat(head));
  if (kind === "none") return yield* all();
  const z =
    kind === "gzip"
      ? zlib().createGunzip({ chunkSize: CHUNK })
      : zlib().createZstdDecompress({ chunkSize: CHUNK, params: { [zlib().constants.ZSTD_d_windowLogMax]: ZSTD_WINDOW_LOG_MAX } });
  const source = Readable().from(kind === "zstd" ? checkedZstd(all()) : all(), { objectMode: false });
  source.on("error", (err) => z.destroy(err));
  source.pipe(z);
  try {
    for await (const chunk of z) yield chunk as Buffer;
    // The input is read to its end whatever the decompressor left of it: what checks it there (a
    // blob's size and digest) must run. zlib passes over bytes after a gzip stream, NULs
    // included; Go's reader, and so containerd, refuses them.
    source.unpipe(z);
    for await (const _ of source);
    if (read !== z.bytesWritten) throw new InvalidArgumentError(`${kind} stream`, `corrupt: ${read - z.bytesWritten} bytes after its end`);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === "ZSTD_error_frameParameter_windowTooLarge") {
      throw new InvalidArgumentError(`${kind} stream`, `its window is larger than ${2 ** (ZSTD_WINDOW_LOG_MAX - 20)} MiB, the most stor (as containerd) decodes`);
    }
    // zlib's failures carry a Z_ or ZSTD_ code; anything else came from reading the input.
    if (typeof e.code === "string" && /^(Z_|ZSTD_|ERR_ZLIB|ERR_ZSTD)/.test(e.code)) {
      throw new InvalidArgumentError(`${kind} stream`, `corrupt: ${e.message}`);
    }
    throw err;
  } finally {
    source.destroy();
  }
}

/** Passes zstd input through, failing at its end if the last frame is incomplete. */
async function* checkedZstd(input: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  const check = new ZstdFrameCheck();
  for await (const chunk of input) {
    check.update(chunk);
    yield chunk;
  }
  check.end();
}
