/**
 * The tar format as OCI layers use it: POSIX ustar header blocks, PAX extended headers (`x`)
 * for what ustar cannot hold, and the GNU extensions readers meet in the wild. Shared by
 * {@link ./tarReader.ts} and {@link ./tarWriter.ts}. PAX values are bytes, not text: an xattr such
 * as security.capability is binary, which is why stor keeps its own codec.
 */
import { InvalidArgumentError } from "../errors.ts";

export const BLOCK = 512;

/** The kinds of entry a layer holds, after the GNU and PAX metadata entries are folded in. */
export type EntryType = "file" | "link" | "symlink" | "char" | "block" | "dir" | "fifo";

/** One tar entry's metadata. */
export interface TarHeader {
  /** The name as stored: relative, `/`-separated, a directory's without its trailing slash. */
  path: string;
  type: EntryType;
  /** Permission bits with setuid, setgid and sticky (no file type bits). */
  mode: number;
  uid: number;
  gid: number;
  /** Bytes of content (for a sparse file its full length, holes included). */
  size: number;
  mtimeNs: bigint;
  /** Target of a symlink, or the earlier entry a hardlink refers to. */
  linkpath: string;
  devMajor: number;
  devMinor: number;
  /** Extended attributes, from and to `SCHILY.xattr.NAME` records. */
  xattrs: Map<string, Uint8Array>;
}

/** Type flags by entry type, as the writer emits them. */
export const TYPEFLAG: Record<EntryType, string> = {
  file: "0",
  link: "1",
  symlink: "2",
  char: "3",
  block: "4",
  dir: "5",
  fifo: "6",
};

/** Field offsets and lengths of a ustar header block. */
export const FIELD = {
  name: [0, 100],
  mode: [100, 8],
  uid: [108, 8],
  gid: [116, 8],
  size: [124, 12],
  mtime: [136, 12],
  chksum: [148, 8],
  typeflag: [156, 1],
  linkname: [157, 100],
  magic: [257, 8],
  uname: [265, 32],
  gname: [297, 32],
  devmajor: [329, 8],
  devminor: [337, 8],
  prefix: [345, 155],
} as const satisfies Record<string, readonly [number, number]>;

export const XATTR_PREFIX = "SCHILY.xattr.";

/** A malformed archive: invalid input, exit 2. */
export function malformed(why: string): InvalidArgumentError {
  return new InvalidArgumentError("tar stream", why);
}

/** The header checksum: the sum of the block's bytes with the checksum field read as spaces. */
export function checksum(block: Uint8Array, signed = false): number {
  let sum = 8 * 0x20;
  for (let i = 0; i < BLOCK; i++) {
    if (i >= 148 && i < 156) continue;
    const b = block[i]!;
    sum += signed && b > 127 ? b - 256 : b;
  }
  return sum;
}

/** A view of `bytes` as a Buffer, without copying. */
const view = (bytes: Uint8Array) => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);

/** A NUL-terminated string field. */
export function readString(block: Uint8Array, [off, len]: readonly [number, number]): string {
  let end = off;
  while (end < off + len && block[end] !== 0) end++;
  return view(block).toString("utf8", off, end);
}

/**
 * A numeric field: octal digits (leading spaces or NULs, ending at a space or NUL), or GNU
 * base-256 when the high bit of the first byte is set. Parsed by hand: it runs for every field
 * of every header.
 */
export function readNumber(block: Uint8Array, [off, len]: readonly [number, number], what: string): number {
  if (block[off]! & 0x80) {
    // Base-256: the bits after the marker bit are a big-endian two's complement number.
    let n = BigInt(block[off]! & 0x7f);
    for (let i = off + 1; i < off + len; i++) n = (n << 8n) | BigInt(block[i]!);
    n = BigInt.asIntN(len * 8 - 1, n);
    if (n > BigInt(Number.MAX_SAFE_INTEGER) || n < BigInt(Number.MIN_SAFE_INTEGER)) throw malformed(`${what} out of range`);
    return Number(n);
  }
  let i = off;
  const end = off + len;
  while (i < end && (block[i] === 0x20 || block[i] === 0)) i++;
  let n = 0;
  for (; i < end; i++) {
    const c = block[i]!;
    if (c === 0x20 || c === 0) break;
    if (c < 0x30 || c > 0x37) throw malformed(`invalid ${what} field "${view(block).toString("latin1", off, end).replace(/[^\x20-\x7e]/g, "?")}"`);
    n = n * 8 + (c - 0x30);
  }
  for (; i < end; i++) if (block[i] !== 0x20 && block[i] !== 0) throw malformed(`invalid ${what} field`);
  return n;
}

/** True for an all-zero block: the end-of-archive marker. */
export function isZeroBlock(block: Uint8Array): boolean {
  for (let i = 0; i < BLOCK; i++) if (block[i] !== 0) return false;
  return true;
}

/** Writes `value` as zero-padded octal with a NUL; false when it does not fit the field. */
export function writeOctal(block: Uint8Array, [off, len]: readonly [number, number], value: number): boolean {
  const text = value.toString(8);
  if (value < 0 || text.length > len - 1) return false;
  block.set(Buffer.from(`${text.padStart(len - 1, "0")}\0`, "latin1"), off);
  return true;
}

/** One PAX record, `LEN KEY=VALUE\n`, LEN counting the whole record including itself. */
export function paxRecord(key: string, value: Uint8Array | string): Buffer {
  const body = Buffer.concat([Buffer.from(` ${key}=`, "utf8"), typeof value === "string" ? Buffer.from(value, "utf8") : value, Buffer.from("\n")]);
  let len = body.length + 1;
  while (String(len).length + body.length !== len) len = String(len).length + body.length;
  return Buffer.concat([Buffer.from(String(len)), body]);
}

/** Parses PAX records into key/value pairs in order (keys may repeat: GNU sparse 0.0 does). */
export function parsePax(data: Uint8Array): [string, Buffer][] {
  const out: [string, Buffer][] = [];
  const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  let pos = 0;
  while (pos < buf.length) {
    if (buf[pos] === 0) break; // NUL padding after the last record
    const space = buf.indexOf(0x20, pos);
    const len = space < 0 ? NaN : Number(buf.toString("latin1", pos, space));
    if (!Number.isSafeInteger(len) || len <= space - pos + 1 || pos + len > buf.length || buf[pos + len - 1] !== 0x0a) {
      throw malformed("invalid PAX extended header");
    }
    const eq = buf.indexOf(0x3d, space + 1);
    if (eq < 0 || eq >= pos + len - 1) throw malformed("invalid PAX extended header");
    out.push([buf.toString("utf8", space + 1, eq), Buffer.from(buf.subarray(eq + 1, pos + len - 1))]);
    pos += len;
  }
  return out;
}

/** A PAX time (`SECONDS[.FRACTION]`, possibly negative) in nanoseconds. */
export function parsePaxTime(text: string): bigint {
  const m = /^(-?)(\d+)(?:\.(\d*))?$/.exec(text);
  if (!m) throw malformed(`invalid PAX time "${text}"`);
  const ns = BigInt(m[2]!) * 1_000_000_000n + BigInt((m[3] ?? "").slice(0, 9).padEnd(9, "0"));
  return m[1] ? -ns : ns;
}
