/**
 * A streaming tar reader: ustar, PAX (`x`; `g` is skipped, as containerd does), GNU long names
 * (`L`, `K`), base-256 numbers and sparse files (old GNU `S`, PAX 0.0, 0.1 and 1.0). It holds at
 * most one input chunk plus the last `x`, `L` and `K` entries (≤ 1 MiB each) in memory, whatever
 * the archive's size or the number of metadata entries in a row.
 *
 * No reader on the npm registry keeps PAX values as bytes (they decode them as UTF-8, which
 * corrupts binary xattrs such as security.capability) or reads sparse files; hence this one.
 */
import { decodeName } from "../fileName.ts";
import { ByteStream } from "./byteStream.ts";
import { InvalidArgumentError } from "../errors.ts";
import { BLOCK, FIELD, MAX_SECONDS, XATTR_PREFIX, checksum, isZeroBlock, malformed, parsePax, parsePaxTime, prefixField, readNumber, readString, type EntryType, type TarHeader } from "./tarFormat.ts";

/** Largest PAX header or GNU long name accepted, as Go's archive/tar. */
const MAX_META_BYTES = 1 << 20;
/** Largest number of segments a sparse map may have. */
const MAX_SPARSE_SEGMENTS = 1 << 20;
/** Largest user or group id: 2^32 - 1 means "no change" to chown. */
const MAX_ID = 0xfffffffe;
/** Largest mode an 8-byte octal field holds; only the permission bits are kept. */
const MAX_MODE = 0o7777777;
/** Largest device numbers Linux keeps (12 and 20 bits): mknod would garble bigger ones. */
const MAX_MAJOR = 0xfff;
const MAX_MINOR = 0xfffff;

const TYPES: Record<string, EntryType> = {
  "0": "file",
  "\0": "file",
  "7": "file",
  "1": "link",
  "2": "symlink",
  "3": "char",
  "4": "block",
  "5": "dir",
  "6": "fifo",
  S: "file",
};

/** A piece of an entry's content and where it goes in the file. */
export interface DataPiece {
  position: number;
  bytes: Uint8Array;
}

/**
 * What the metadata entries before an entry say of it, as Go's archive/tar (containerd's reader)
 * reads them: an `x`, `L` or `K` entry replaces the last one of its kind, and a `g` entry ends
 * them all (Go returns it as an entry of its own, which containerd skips). Merging them instead
 * let one layer unpack differently in stor and containerd, and let any number of them add up in
 * memory. Decoded as they are read: the bytes they came in are gone by the time the entry is.
 */
interface Meta {
  /** An `x`, `L` or `K` entry was read: an archive may not end after one. */
  pending: boolean;
  /** The names of the last `L` and `K` entries, unless empty; they win over PAX records, as in Go. */
  longName?: string;
  longLink?: string;
  pax: Pax;
}

/** The records of the last `x` entry, later ones overriding earlier ones of the same key. */
interface Pax {
  path?: string;
  linkpath?: string;
  size?: number;
  uid?: number;
  gid?: number;
  mtimeNs?: bigint;
  xattrs?: Map<string, Uint8Array>;
  /** `GNU.sparse.*` records (PAX sparse 0.1 and 1.0) without the prefix. */
  sparse?: Map<string, string>;
  /** The repeated offset and numbytes records of PAX sparse 0.0, in order. */
  sparse00?: number[];
  /** The first record whose value was refused. */
  invalid?: unknown;
}

/** A region of a sparse file that holds data; everything else is a hole. */
interface Segment {
  offset: number;
  length: number;
}

const NO_SEGMENTS: Segment[] = [];
const SPARSE_PREFIX = "GNU.sparse.";
const utf8 = (bytes: Uint8Array) => (Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)).toString("utf8");

/**
 * Reads a tar stream entry by entry: {@link TarReader.next}, then optionally {@link TarReader.read}.
 * Headers are parsed where they lie in the input's buffers, each done with before the stream is
 * read again; only what an entry keeps (names, xattr values) is copied out.
 */
export class TarReader {
  readonly #in: ByteStream;
  /** Stored bytes of the current entry not yet read, and its padding. */
  #left = 0;
  #padding = 0;
  /** The data segments of a sparse entry not yet started (none for any other entry). */
  #segments = NO_SEGMENTS;
  #segment = 0;
  /** Where the next byte of content goes in the file, and the bytes left in its segment. */
  #position = 0;
  #segmentLeft = 0;
  #current: TarHeader | undefined;
  /** The name of the entry being read, once known: what its errors name. */
  #naming: string | undefined;
  #ended = false;
  /** Offset in the stream where the current entry's stored data begins. */
  dataOffset = 0;

  constructor(source: AsyncIterable<Uint8Array>) {
    this.#in = new ByteStream(source);
  }

  /**
   * The next entry, skipping what is left of the previous one; undefined at the end of the
   * archive. What is buffered is parsed without waiting.
   */
  async next(): Promise<TarHeader | undefined> {
    const skipping = this.#skipRest();
    if (skipping) await skipping;
    this.#current = undefined;
    if (this.#ended) return undefined;
    let meta: Meta = { pending: false, pax: {} };
    for (;;) {
      const block = this.#in.buffered >= BLOCK ? this.#in.view(BLOCK) : await this.#in.exact(BLOCK, () => "tar header");
      // A stream that stops between entries has ended, as Go's reader (and so containerd) accepts.
      if (!block || isZeroBlock(block)) {
        this.#ended = true;
        if (meta.pending) throw malformed("archive ends after an extended header");
        return undefined;
      }
      if (!validChecksum(block)) {
        throw malformed(`invalid header checksum at offset ${this.#in.offset - BLOCK}`);
      }
      try {
        this.#naming = meta.longName ?? meta.pax.path;
        const flag = String.fromCharCode(block[156]!);
        const size = readNumber(block, FIELD.size, "size");
        if (flag === "x" || flag === "g" || flag === "L" || flag === "K") {
          if (size > MAX_META_BYTES) throw malformed(`extended header of ${size} bytes is too large`);
          const data = size <= this.#in.buffered ? this.#in.view(size) : await this.#in.exact(size, () => "extended header");
          if (!data || data.length < size) throw malformed("truncated extended header");
          if (flag === "g") meta = { pending: false, pax: {} };
          else meta.pending = true;
          if (flag === "x") meta.pax = paxOf(data);
          else if (flag === "L") meta.longName = cString(data) || undefined;
          else if (flag === "K") meta.longLink = cString(data) || undefined;
          const padding = padTo(size);
          if (padding <= this.#in.buffered) this.#in.view(padding);
          else await this.#in.skip(padding, () => "extended header");
          continue;
        }
        const h = this.#header(block, flag, size, meta);
        if (flag === "S" || meta.pax.sparse || meta.pax.sparse00) await this.#sparse(h, block, flag, meta.pax);
        this.#current = h;
        return h;
      } catch (err) {
        throw named(err, this.#naming ?? headerName(block));
      }
    }
  }

  /** The entry of header `block`, with what `meta` says; all of it but a sparse map, which follows. */
  #header(block: Uint8Array, flag: string, storedSize: number, meta: Meta): TarHeader {
    const { pax } = meta;
    const name = meta.longName ?? pax.path ?? headerName(block);
    this.#naming = name;
    if (pax.invalid) throw pax.invalid;
    let type = TYPES[flag];
    if (!type) throw malformed(`unsupported entry type "${flag.replace(/[^\x20-\x7e]/g, "?")}"`);
    let path = name;
    // The full name decides (the PAX header's), not the ustar field, which holds only a long name's first 100 bytes.
    if (type === "file" && flag !== "S" && path.endsWith("/")) type = "dir";
    const device = type === "char" || type === "block";
    const stored = pax.size ?? storedSize;
    if (path.endsWith("/")) path = path.replace(/\/+$/, "");
    const uid = readNumber(block, FIELD.uid, "uid", 0, MAX_ID);
    const gid = readNumber(block, FIELD.gid, "gid", 0, MAX_ID);
    const mtime = readNumber(block, FIELD.mtime, "mtime", -MAX_SECONDS, MAX_SECONDS);
    const h: TarHeader = {
      path,
      type,
      mode: readNumber(block, FIELD.mode, "mode", 0, MAX_MODE) & 0o7777,
      uid: pax.uid ?? uid,
      gid: pax.gid ?? gid,
      // These carry no content, whatever their size field says (a hardlink may, and it is skipped).
      size: type === "file" ? stored : 0,
      mtimeNs: pax.mtimeNs ?? BigInt(mtime) * 1_000_000_000n,
      linkpath: meta.longLink ?? pax.linkpath ?? readString(block, FIELD.linkname),
      devMajor: device ? readNumber(block, FIELD.devmajor, "devmajor", 0, MAX_MAJOR) : 0,
      devMinor: device ? readNumber(block, FIELD.devminor, "devminor", 0, MAX_MINOR) : 0,
      xattrs: pax.xattrs ?? new Map(),
    };
    this.#segments = NO_SEGMENTS;
    this.#segment = 0;
    this.#position = 0;
    this.#segmentLeft = stored;
    this.#left = stored;
    this.#padding = padTo(stored);
    this.dataOffset = this.#in.offset;
    return h;
  }

  /**
   * Reads the sparse map of entry `h` (old GNU `S` header, or PAX sparse 0.0, 0.1 or 1.0) and sets
   * its segments and real size.
   */
  async #sparse(h: TarHeader, block: Uint8Array, flag: string, pax: Pax): Promise<void> {
    let segments: Segment[] | undefined;
    let realSize: number | undefined;
    let stored = this.#left;
    let mapBytes = 0;
    // The header's own part of an old GNU map, read before anything else overwrites the block.
    if (flag === "S") ({ segments, realSize } = await this.#gnuSparse(block));
    const sparse = pax.sparse ?? new Map<string, string>();
    if (sparse.size || pax.sparse00) {
      if (sparse.has("name")) this.#naming = h.path = sparse.get("name")!.replace(/\/+$/, "");
      realSize = paxNumber("GNU.sparse.size", sparse.get("realsize") ?? sparse.get("size") ?? "");
      if (sparse.get("major") === "1") {
        ({ segments, mapBytes } = await this.#sparseMap1());
        stored -= mapBytes;
      } else {
        // PAX 0.0 records win over a 0.1 map in the same header, as Go turns them into that map.
        const list = pax.sparse00 ?? (sparse.get("map") || "").split(",").filter(Boolean).map((n) => paxNumber("GNU.sparse.map", n));
        segments = pairs(list);
      }
    }
    if (!segments) return;
    h.size = realSize ?? 0;
    checkSegments(segments, h.size, stored);
    this.#segments = segments;
    this.#segmentLeft = 0;
    this.#left = stored;
    this.#padding = padTo(stored + mapBytes);
    this.dataOffset = this.#in.offset;
  }

  /** The sparse map of an old GNU `S` header and its extension blocks. */
  async #gnuSparse(block: Uint8Array): Promise<{ segments: Segment[]; realSize: number }> {
    const list: number[] = [];
    const collect = (b: Uint8Array, start: number, count: number) => {
      for (let i = 0; i < count; i++) {
        const off = start + i * 24;
        if (b[off] === 0) break;
        list.push(readNumber(b, [off, 12], "sparse offset"), readNumber(b, [off + 12, 12], "sparse length"));
      }
    };
    collect(block, 386, 4);
    let extended = block[482] !== 0;
    const realSize = readNumber(block, [483, 12], "sparse size");
    while (extended) {
      const ext = await this.#in.exact(BLOCK, () => "sparse header");
      if (!ext) throw malformed("truncated sparse header");
      collect(ext, 0, 21);
      extended = ext[504] !== 0;
      if (list.length > 2 * MAX_SPARSE_SEGMENTS) throw malformed("sparse map too large");
    }
    return { segments: pairs(list), realSize };
  }

  /**
   * The PAX 1.0 sparse map: decimal numbers, one a line (the count of segments, then each one's
   * offset and length), at the start of the entry's data, padded to a block. Returns the segments
   * and the bytes the map took. Each byte is looked at once, and only within the entry: a line
   * that never ends once cost time quadratic in its length and read on through later entries.
   */
  async #sparseMap1(): Promise<{ segments: Segment[]; mapBytes: number }> {
    const numbers: number[] = [];
    let count = -1;
    let n = 0;
    let digits = 0;
    let mapBytes = 0;
    while (count < 0 || numbers.length < 2 * count) {
      if (mapBytes + BLOCK > this.#left) throw malformed("sparse map larger than the entry");
      const b = await this.#in.exact(BLOCK, () => "sparse map");
      if (!b) throw malformed("truncated sparse map");
      mapBytes += BLOCK;
      for (let i = 0; i < BLOCK && (count < 0 || numbers.length < 2 * count); i++) {
        const c = b[i]!;
        if (c >= 0x30 && c <= 0x39) {
          n = n * 10 + (c - 0x30);
          digits++;
          if (n > Number.MAX_SAFE_INTEGER) throw malformed("sparse map number out of range");
        } else if (c === 0x0a && digits > 0) {
          if (count >= 0) numbers.push(n);
          else if (n > MAX_SPARSE_SEGMENTS) throw malformed("sparse map too large");
          else count = n;
          n = 0;
          digits = 0;
        } else throw malformed("invalid sparse map");
      }
    }
    return { segments: pairs(numbers), mapBytes };
  }

  /**
   * The next piece of the current entry's content, or undefined once it is all read; a sparse
   * file's holes are left out. The bytes are a view, valid until the reader is next used.
   */
  async read(): Promise<DataPiece | undefined> {
    while (this.#segmentLeft === 0) {
      const s = this.#segments[this.#segment++];
      if (!s) return undefined;
      this.#position = s.offset;
      this.#segmentLeft = s.length;
    }
    const n = Math.min(this.#segmentLeft, this.#left);
    const bytes = this.#in.buffered > 0 ? this.#in.view(n) : await this.#in.some(n, () => `data of "${this.#current?.path}"`);
    const piece = { position: this.#position, bytes };
    this.#position += bytes.length;
    this.#segmentLeft -= bytes.length;
    this.#left -= bytes.length;
    return piece;
  }

  /** Skips what is left of the current entry; a promise only when that means waiting for input. */
  #skipRest(): Promise<void> | undefined {
    const n = this.#left + this.#padding;
    this.#left = 0;
    this.#padding = 0;
    this.#segmentLeft = 0;
    this.#segments = NO_SEGMENTS;
    if (n > this.#in.buffered) return this.#in.skip(n, () => `data of "${this.#current?.path ?? ""}"`);
    this.#in.view(n);
    return undefined;
  }

  /** Reads the stream to its end (bytes after the end-of-archive blocks still count toward its digest). */
  async drain(): Promise<void> {
    await this.#in.drain();
  }

  /** Bytes of the stream consumed so far. */
  get offset(): number {
    return this.#in.offset;
  }
}

/** True when the header's checksum field matches its bytes, summed unsigned or (old tars) signed. */
function validChecksum(block: Uint8Array): boolean {
  if (block[FIELD.chksum[0]]! & 0x80) return false;
  let stored: number;
  try {
    stored = readNumber(block, FIELD.chksum, "checksum");
  } catch {
    return false;
  }
  return stored === checksum(block) || stored === checksum(block, true);
}

const padTo = (n: number) => (BLOCK - (n % BLOCK)) % BLOCK;

/**
 * The records of an `x` entry's `data`. A bad value is kept, not thrown: it is reported with the
 * name of the entry it is for, which comes next, and only if no later `x` entry replaces it.
 */
function paxOf(data: Uint8Array): Pax {
  const pax: Pax = {};
  parsePax(data, (key, value) => {
    try {
      addRecord(pax, key, value);
    } catch (err) {
      pax.invalid ??= err;
    }
  });
  return pax;
}

/** Folds PAX record `key` into `pax`; `value` is only valid during the call. */
function addRecord(pax: Pax, key: string, value: Uint8Array): void {
  // An empty value keeps the ustar field, as Go's mergePAX does (and undoes an earlier record of the key).
  const set = <K extends keyof Pax>(field: K, parse: (v: Uint8Array) => Pax[K]) => {
    pax[field] = value.length ? parse(value) : undefined;
  };
  if (key === "mtime") set("mtimeNs", parsePaxTime);
  else if (key === "atime" || key === "ctime") return;
  else if (key.startsWith(XATTR_PREFIX)) (pax.xattrs ??= new Map()).set(key.slice(XATTR_PREFIX.length), new Uint8Array(value)); // copied: it outlives its buffer
  else if (key === "path") set("path", decodeName);
  else if (key === "linkpath") set("linkpath", decodeName);
  else if (key === "size") set("size", (v) => paxNumber(key, utf8(v)));
  else if (key === "uid") set("uid", (v) => paxNumber(key, utf8(v), MAX_ID));
  else if (key === "gid") set("gid", (v) => paxNumber(key, utf8(v), MAX_ID));
  else if (key === "GNU.sparse.offset" || key === "GNU.sparse.numbytes") {
    const list = (pax.sparse00 ??= []);
    // Go refuses them out of turn; read in pairs regardless, they would make a different file.
    if ((key === "GNU.sparse.offset") !== (list.length % 2 === 0)) throw malformed("GNU.sparse.offset and GNU.sparse.numbytes out of turn");
    list.push(paxNumber(key, utf8(value)));
  } else if (key.startsWith(SPARSE_PREFIX)) (pax.sparse ??= new Map()).set(key.slice(SPARSE_PREFIX.length), utf8(value));
}

function cString(data: Uint8Array): string {
  const end = data.indexOf(0);
  return decodeName(data.subarray(0, end < 0 ? data.length : end));
}

function paxNumber(key: string, text: string, max = Number.MAX_SAFE_INTEGER): number {
  if (!/^\d+$/.test(text)) throw malformed(`invalid ${key} "${text.slice(0, 40)}"`);
  const n = Number(text);
  if (!(n <= max)) throw malformed(`${key} ${text.slice(0, 40)} out of range`);
  return n;
}

/** Wraps a malformed-archive error in the name of the entry it is about. */
function named(err: unknown, name: string): unknown {
  if (!(err instanceof InvalidArgumentError) || err.why.startsWith("entry ")) return err;
  return malformed(`entry "${name}": ${err.why}`);
}

/** The name a header gives, its prefix field included. */
function headerName(block: Uint8Array): string {
  const field = prefixField(block);
  const prefix = field && block[field[0]] !== 0 ? readString(block, field) : "";
  return prefix ? `${prefix}/${readString(block, FIELD.name)}` : readString(block, FIELD.name);
}

function pairs(list: number[]): Segment[] {
  if (list.length % 2) throw malformed("invalid sparse map");
  const out: Segment[] = [];
  for (let i = 0; i < list.length; i += 2) out.push({ offset: list[i]!, length: list[i + 1]! });
  return out;
}

/** Segments must ascend without overlap, end within the file, and add up to the stored bytes. */
function checkSegments(segments: Segment[], realSize: number, stored: number): void {
  let end = 0;
  let total = 0;
  for (const s of segments) {
    if (s.offset < end || s.offset + s.length > realSize) throw malformed(`invalid sparse map`);
    end = s.offset + s.length;
    total += s.length;
  }
  if (total !== stored) throw malformed(`sparse map does not match its data`);
}
