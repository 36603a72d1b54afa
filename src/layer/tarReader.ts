/**
 * A streaming tar reader: ustar, PAX (`x`; `g` is skipped, as containerd does), GNU long names
 * (`L`, `K`), base-256 numbers and sparse files (old GNU `S`, PAX 0.0, 0.1 and 1.0). It holds at
 * most one input chunk plus one metadata entry (≤ 1 MiB) in memory, whatever the archive's size.
 *
 * No reader on the npm registry keeps PAX values as bytes (they decode them as UTF-8, which
 * corrupts binary xattrs such as security.capability) or reads sparse files; hence this one.
 */
import { BLOCK, FIELD, XATTR_PREFIX, checksum, isZeroBlock, malformed, parsePax, parsePaxTime, readNumber, readString, type EntryType, type TarHeader } from "./tarFormat.ts";

/** Largest PAX header or GNU long name accepted, as Go's archive/tar. */
const MAX_META_BYTES = 1 << 20;
/** Largest number of segments a sparse map may have. */
const MAX_SPARSE_SEGMENTS = 1 << 20;

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

/** What the metadata entries before an entry said of it. */
interface Meta {
  pax: [string, Buffer][];
  longName?: string;
  longLink?: string;
}

/** A region of a sparse file that holds data; everything else is a hole. */
interface Segment {
  offset: number;
  length: number;
}

/** Buffered reading of exact byte counts from a stream of chunks. */
class ByteStream {
  readonly #source: AsyncIterator<Uint8Array>;
  #chunk: Uint8Array = new Uint8Array(0);
  #pos = 0;
  /** Bytes consumed so far. */
  offset = 0;

  constructor(source: AsyncIterable<Uint8Array>) {
    this.#source = source[Symbol.asyncIterator]();
  }

  async #fill(): Promise<boolean> {
    while (this.#pos >= this.#chunk.length) {
      const r = await this.#source.next();
      if (r.done) return false;
      this.#chunk = r.value;
      this.#pos = 0;
    }
    return true;
  }

  /** Exactly `n` bytes; undefined when the stream ends before the first of them. */
  async exact(n: number, what: () => string): Promise<Uint8Array | undefined> {
    if (!(await this.#fill())) return undefined;
    if (this.#chunk.length - this.#pos >= n) {
      const out = this.#chunk.subarray(this.#pos, this.#pos + n);
      this.#pos += n;
      this.offset += n;
      return out;
    }
    const out = new Uint8Array(n);
    let got = 0;
    while (got < n) {
      if (!(await this.#fill())) throw malformed(`truncated ${what()}`);
      const take = Math.min(n - got, this.#chunk.length - this.#pos);
      out.set(this.#chunk.subarray(this.#pos, this.#pos + take), got);
      this.#pos += take;
      got += take;
    }
    this.offset += n;
    return out;
  }

  /** Between 1 and `n` bytes, as they come. */
  async some(n: number, what: () => string): Promise<Uint8Array> {
    if (!(await this.#fill())) throw malformed(`truncated ${what()}`);
    const take = Math.min(n, this.#chunk.length - this.#pos);
    const out = this.#chunk.subarray(this.#pos, this.#pos + take);
    this.#pos += take;
    this.offset += take;
    return out;
  }

  async skip(n: number, what: () => string): Promise<void> {
    for (let left = n; left > 0; ) left -= (await this.some(left, what)).length;
  }

  /** Reads whatever is left. */
  async drain(): Promise<void> {
    this.offset += this.#chunk.length - this.#pos;
    this.#pos = this.#chunk.length;
    for (let r = await this.#source.next(); !r.done; r = await this.#source.next()) this.offset += r.value.length;
  }
}

/** Reads a tar stream entry by entry: {@link TarReader.next}, then optionally {@link TarReader.data}. */
export class TarReader {
  readonly #in: ByteStream;
  /** Stored bytes of the current entry not yet read, and its padding. */
  #left = 0;
  #padding = 0;
  #segments: Segment[] | undefined;
  #current: TarHeader | undefined;
  #ended = false;
  /** Offset in the stream where the current entry's stored data begins. */
  dataOffset = 0;

  constructor(source: AsyncIterable<Uint8Array>) {
    this.#in = new ByteStream(source);
  }

  /** The next entry, skipping what is left of the previous one; undefined at the end of the archive. */
  async next(): Promise<TarHeader | undefined> {
    await this.#skipRest();
    this.#current = undefined;
    if (this.#ended) return undefined;
    const meta: Meta = { pax: [] };
    for (;;) {
      const block = await this.#in.exact(BLOCK, () => "tar header");
      // A stream that stops between entries has ended, as Go's reader (and so containerd) accepts.
      if (!block || isZeroBlock(block)) {
        this.#ended = true;
        if (meta.pax.length || meta.longName !== undefined || meta.longLink !== undefined) throw malformed("archive ends after an extended header");
        return undefined;
      }
      if (!validChecksum(block)) {
        throw malformed(`invalid header checksum at offset ${this.#in.offset - BLOCK}`);
      }
      const flag = String.fromCharCode(block[156]!);
      const size = readNumber(block, FIELD.size, "size");
      if (flag === "x" || flag === "g" || flag === "L" || flag === "K") {
        if (size > MAX_META_BYTES) throw malformed(`extended header of ${size} bytes is too large`);
        const data = (await this.#in.exact(size, () => "extended header")) ?? new Uint8Array(0);
        if (data.length < size) throw malformed("truncated extended header");
        await this.#in.skip(padTo(size), () => "extended header");
        if (flag === "x") meta.pax.push(...parsePax(data));
        else if (flag === "L") meta.longName = cString(data);
        else if (flag === "K") meta.longLink = cString(data);
        continue;
      }
      return this.#entry(block, flag, size, meta);
    }
  }

  async #entry(block: Uint8Array, flag: string, storedSize: number, meta: Meta): Promise<TarHeader> {
    const magic = readString(block, [257, 6]);
    const version = readString(block, [263, 2]);
    const posix = magic === "ustar" && version === "00";
    const prefix = posix ? readString(block, FIELD.prefix) : "";
    const path = meta.longName ?? (prefix ? `${prefix}/${readString(block, FIELD.name)}` : readString(block, FIELD.name));
    let type = TYPES[flag];
    if (!type) throw malformed(`unsupported entry type "${flag.replace(/[^\x20-\x7e]/g, "?")}" for "${path}"`);
    if (type === "file" && flag !== "S" && path.endsWith("/")) type = "dir";
    const h: TarHeader = {
      path,
      type,
      mode: readNumber(block, FIELD.mode, "mode") & 0o7777,
      uid: readNumber(block, FIELD.uid, "uid"),
      gid: readNumber(block, FIELD.gid, "gid"),
      size: storedSize,
      mtimeNs: BigInt(readNumber(block, FIELD.mtime, "mtime")) * 1_000_000_000n,
      linkpath: meta.longLink ?? readString(block, FIELD.linkname),
      devMajor: type === "char" || type === "block" ? readNumber(block, FIELD.devmajor, "devmajor") : 0,
      devMinor: type === "char" || type === "block" ? readNumber(block, FIELD.devminor, "devminor") : 0,
      xattrs: new Map(),
    };
    let segments: Segment[] | undefined;
    let realSize: number | undefined;
    let mapBytes = 0;
    if (flag === "S") ({ segments, realSize } = await this.#gnuSparse(block));
    const sparsePax = new Map<string, string>();
    const sparse00: number[] = [];
    for (const [key, value] of meta.pax) {
      const text = () => value.toString("utf8");
      if (key.startsWith(XATTR_PREFIX)) h.xattrs.set(key.slice(XATTR_PREFIX.length), value);
      else if (key === "path") h.path = text();
      else if (key === "linkpath") h.linkpath = text();
      else if (key === "size") h.size = storedSize = paxNumber(key, text());
      else if (key === "uid") h.uid = paxNumber(key, text());
      else if (key === "gid") h.gid = paxNumber(key, text());
      else if (key === "mtime") h.mtimeNs = parsePaxTime(text());
      else if (key === "GNU.sparse.offset" || key === "GNU.sparse.numbytes") sparse00.push(paxNumber(key, text()));
      else if (key.startsWith("GNU.sparse.")) sparsePax.set(key.slice(11), text());
    }
    if (sparsePax.size || sparse00.length) {
      if (sparsePax.has("name")) h.path = sparsePax.get("name")!;
      realSize = paxNumber("GNU.sparse.size", sparsePax.get("realsize") ?? sparsePax.get("size") ?? "");
      if (sparsePax.get("major") === "1") {
        ({ segments, mapBytes } = await this.#sparseMap1(() => h.path));
        storedSize -= mapBytes;
      } else {
        const list = sparsePax.has("map") ? (sparsePax.get("map") || "").split(",").filter(Boolean).map((n) => paxNumber("GNU.sparse.map", n)) : sparse00;
        segments = pairs(list);
      }
    }
    if (type === "dir" || type === "symlink" || type === "link" || type === "fifo" || type === "char" || type === "block") {
      // These carry no content, whatever their size field says (a hardlink may, and it is skipped).
      h.size = 0;
    }
    if (segments) {
      h.size = realSize ?? 0;
      checkSegments(segments, h.size, storedSize, h.path);
    } else if (h.type === "file") {
      h.size = storedSize;
    }
    this.#segments = segments;
    this.#left = storedSize;
    this.#padding = padTo(storedSize + mapBytes);
    this.dataOffset = this.#in.offset;
    h.path = h.path.replace(/\/+$/, "");
    this.#current = h;
    return h;
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
   * The PAX 1.0 sparse map: decimal numbers, one a line, at the start of the data, padded to a
   * block. Returns the segments and the bytes the map took.
   */
  async #sparseMap1(path: () => string): Promise<{ segments: Segment[]; mapBytes: number }> {
    let text = "";
    let blocks = 0;
    const numbers: number[] = [];
    let count = -1;
    while (count < 0 || numbers.length < 2 * count) {
      const lines = text.split("\n");
      if (lines.length > 1) {
        text = lines.pop()!;
        for (const line of lines) {
          const n = paxNumber("sparse map", line);
          if (count < 0) {
            if (n > MAX_SPARSE_SEGMENTS) throw malformed(`sparse map of "${path()}" too large`);
            count = n;
          } else numbers.push(n);
        }
        continue;
      }
      const b = await this.#in.exact(BLOCK, () => `sparse map of "${path()}"`);
      if (!b) throw malformed(`truncated sparse map of "${path()}"`);
      blocks++;
      text += Buffer.from(b).toString("latin1");
    }
    if (numbers.length !== 2 * count) throw malformed(`invalid sparse map of "${path()}"`);
    return { segments: pairs(numbers), mapBytes: blocks * BLOCK };
  }

  /** The current entry's content, piece by piece; a sparse file's holes are left out. */
  async *data(): AsyncGenerator<DataPiece> {
    const h = this.#current;
    if (!h) return;
    const what = () => `data of "${h.path}"`;
    const segments = this.#segments ?? [{ offset: 0, length: this.#left }];
    for (const s of segments) {
      for (let done = 0; done < s.length; ) {
        const bytes = await this.#in.some(Math.min(s.length - done, this.#left), what);
        yield { position: s.offset + done, bytes };
        done += bytes.length;
        this.#left -= bytes.length;
      }
    }
    await this.#skipRest();
  }

  async #skipRest(): Promise<void> {
    const name = this.#current?.path ?? "";
    await this.#in.skip(this.#left + this.#padding, () => `data of "${name}"`);
    this.#left = 0;
    this.#padding = 0;
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

function cString(data: Uint8Array): string {
  const end = data.indexOf(0);
  return Buffer.from(data.subarray(0, end < 0 ? data.length : end)).toString("utf8");
}

function paxNumber(key: string, text: string): number {
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(Number(text))) throw malformed(`invalid ${key} "${text.slice(0, 40)}"`);
  return Number(text);
}

function pairs(list: number[]): Segment[] {
  if (list.length % 2) throw malformed("invalid sparse map");
  const out: Segment[] = [];
  for (let i = 0; i < list.length; i += 2) out.push({ offset: list[i]!, length: list[i + 1]! });
  return out;
}

/** Segments must ascend without overlap, end within the file, and add up to the stored bytes. */
function checkSegments(segments: Segment[], realSize: number, stored: number, path: string): void {
  let end = 0;
  let total = 0;
  for (const s of segments) {
    if (s.offset < end || s.offset + s.length > realSize) throw malformed(`invalid sparse map of "${path}"`);
    end = s.offset + s.length;
    total += s.length;
  }
  if (total !== stored) throw malformed(`sparse map of "${path}" does not match its data`);
}
