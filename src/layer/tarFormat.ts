/**
 * The tar format as OCI layers use it: POSIX ustar header blocks, PAX extended headers (`x`)
 * for what ustar cannot hold, and the GNU extensions readers meet in the wild. Shared by
 * {@link ./tarReader.ts} and {@link ./tarWriter.ts}. PAX values are bytes, not text: an xattr such
 * as security.capability is binary, which is why stor keeps its own codec.
 */
import { InvalidArgumentError } from "../errors.ts";
import { decodeName, encodeName } from "../fileName.ts";

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

/** Largest file time in seconds either way of 1970 stor takes from a layer: what a double holds exactly. */
export const MAX_SECONDS = Number.MAX_SAFE_INTEGER;

/** A malformed archive: invalid input, exit 2. */
export function malformed(why: string): InvalidArgumentError {
  return new InvalidArgumentError("tar stream", why);
}

/** The header checksum: the sum of the block's bytes with the checksum field read as spaces. */
export function checksum(block: Uint8Array, signed = false): number {
  let sum = 8 * 0x20 + byteSum(block);
  for (let i = 148; i < 156; i++) sum -= block[i]!;
  if (signed) for (let i = 0; i < BLOCK; i++) if (block[i]! > 127 && (i < 148 || i >= 156)) sum -= 256;
  return sum;
}

/**
 * The sum of a block's 512 bytes, four at a time where the block is aligned: every header is
 * checked, so this is one of the reader's hottest loops.
 */
function byteSum(block: Uint8Array): number {
  if (block.byteOffset % 4 !== 0) {
    let sum = 0;
    for (let i = 0; i < BLOCK; i++) sum += block[i]!;
    return sum;
  }
  // Two 16-bit lanes per word, bytes 0 and 2 in one, 1 and 3 in the other: 256 bytes of at most
  // 255 each fit a lane.
  const words = new Uint32Array(block.buffer, block.byteOffset, BLOCK / 4);
  let lanes = 0;
  for (let i = 0; i < words.length; i++) lanes += (words[i]! & 0x00ff00ff) + ((words[i]! >>> 8) & 0x00ff00ff);
  return (lanes & 0xffff) + (lanes >>> 16);
}

/** `bytes` as a Buffer, without copying. */
const view = (bytes: Uint8Array) => (Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));

/** A NUL-terminated string field, such as a name (see {@link decodeName}: any bytes). */
export function readString(block: Uint8Array, [off, len]: readonly [number, number]): string {
  if (block[off] === 0) return "";
  let end = off;
  while (end < off + len && block[end] !== 0) end++;
  return decodeName(view(block).subarray(off, end));
}

/**
 * A numeric field: octal digits (leading spaces or NULs, ending at a space or NUL), or GNU
 * base-256 when the high bit of the first byte is set. Parsed by hand: it runs for every field
 * of every header. A value outside `[min, max]` is refused: a negative size once made the reader
 * step backwards forever.
 */
export function readNumber(block: Uint8Array, [off, len]: readonly [number, number], what: string, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  let n = 0;
  if (block[off]! & 0x80) {
    // Base-256: the bits after the marker bit are a big-endian two's complement number.
    let big = BigInt(block[off]! & 0x7f);
    for (let i = off + 1; i < off + len; i++) big = (big << 8n) | BigInt(block[i]!);
    big = BigInt.asIntN(len * 8 - 1, big);
    if (big > BigInt(max) || big < BigInt(min)) throw malformed(`${what} ${big} out of range`);
    return Number(big);
  }
  let i = off;
  const end = off + len;
  while (i < end && (block[i] === 0x20 || block[i] === 0)) i++;
  for (; i < end; i++) {
    const c = block[i]!;
    if (c === 0x20 || c === 0) break;
    if (c < 0x30 || c > 0x37) throw malformed(`invalid ${what} field "${view(block).toString("latin1", off, end).replace(/[^\x20-\x7e]/g, "?")}"`);
    n = n * 8 + (c - 0x30);
  }
  for (; i < end; i++) if (block[i] !== 0x20 && block[i] !== 0) throw malformed(`invalid ${what} field`);
  if (n > max) throw malformed(`${what} ${n} out of range`);
  return n;
}

/**
 * The prefix field that extends a header's name, as Go's archive/tar (containerd's reader) finds
 * it, so that a layer makes the same tree in stor as in containerd: magic "ustar\0" whatever the
 * version says, 155 bytes; 131 in a STAR header (trailer "tar\0", its times after the prefix);
 * none in a GNU or v7 header.
 */
export function prefixField(block: Uint8Array): readonly [number, number] | undefined {
  if (!(block[257] === 0x75 && block[258] === 0x73 && block[259] === 0x74 && block[260] === 0x61 && block[261] === 0x72 && block[262] === 0)) return undefined;
  return block[508] === 0x74 && block[509] === 0x61 && block[510] === 0x72 && block[511] === 0 ? STAR_PREFIX : FIELD.prefix;
}

const STAR_PREFIX = [345, 131] as const;

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
  const body = Buffer.concat([Buffer.from(" "), encodeName(key), Buffer.from("="), typeof value === "string" ? Buffer.from(value, "utf8") : value, Buffer.from("\n")]);
  let len = body.length + 1;
  while (String(len).length + body.length !== len) len = String(len).length + body.length;
  return Buffer.concat([Buffer.from(String(len)), body]);
}

/** The keys nearly every PAX header has (GNU tar writes the three times for every entry). */
const COMMON_KEYS = ["mtime", "atime", "ctime", "path", "linkpath", "size", "uid", "gid"];

/** The key in `buf[start, end)` if it is one of {@link COMMON_KEYS}: found without decoding text. */
function commonKey(buf: Buffer, start: number, end: number): string | undefined {
  next: for (const key of COMMON_KEYS) {
    if (key.length !== end - start) continue;
    for (let i = 0; i < key.length; i++) if (buf[start + i] !== key.charCodeAt(i)) continue next;
    return key;
  }
  return undefined;
}

/**
 * Parses PAX records, calling `onRecord` for each in order (keys may repeat: GNU sparse 0.0 does).
 * The value is a view into `data`.
 */
export function parsePax(data: Uint8Array, onRecord: (key: string, value: Uint8Array) => void): void {
  const buf = view(data);
  let pos = 0;
  while (pos < buf.length) {
    if (buf[pos] === 0) break; // NUL padding after the last record
    let len = 0;
    let space = pos;
    for (; space < buf.length && buf[space]! >= 0x30 && buf[space]! <= 0x39 && space - pos < 16; space++) len = len * 10 + buf[space]! - 0x30;
    if (buf[space] !== 0x20 || space === pos || len <= space - pos + 1 || pos + len > buf.length || buf[pos + len - 1] !== 0x0a) {
      throw malformed("invalid PAX extended header");
    }
    const eq = buf.indexOf(0x3d, space + 1);
    if (eq < 0 || eq >= pos + len - 1) throw malformed("invalid PAX extended header");
    // A key is bytes too (an xattr name may be any): decoded as names are, so that it writes back the same.
    onRecord(commonKey(buf, space + 1, eq) ?? decodeName(buf.subarray(space + 1, eq)), buf.subarray(eq + 1, pos + len - 1));
    pos += len;
  }
}

/**
 * A PAX time (`SECONDS[.FRACTION]`, possibly negative) in nanoseconds, parsed from the record's
 * bytes: every entry GNU tar writes has one.
 */
export function parsePaxTime(value: Uint8Array): bigint {
  const invalid = () => malformed(`invalid PAX time "${view(value).toString("utf8").slice(0, 40)}"`);
  const negative = value[0] === 0x2d;
  let i = negative ? 1 : 0;
  let seconds = 0;
  const start = i;
  for (; i < value.length && value[i] !== 0x2e; i++) {
    const d = value[i]! - 0x30;
    if (d < 0 || d > 9) throw invalid();
    seconds = seconds * 10 + d;
  }
  if (i === start) throw invalid();
  // Beyond what a double holds exactly, and so beyond any file time stor keeps.
  if (i - start > 16 || seconds > MAX_SECONDS) throw malformed(`PAX time "${view(value).toString("utf8").slice(0, 40)}" out of range`);
  const whole = BigInt(seconds);
  let fraction = 0;
  let digits = 0;
  for (i++; i < value.length; i++) {
    const d = value[i]! - 0x30;
    if (d < 0 || d > 9) throw invalid();
    if (digits++ < 9) fraction = fraction * 10 + d;
  }
  for (; digits < 9; digits++) fraction *= 10;
  const ns = whole * 1_000_000_000n + BigInt(fraction);
  return negative ? -ns : ns;
}
