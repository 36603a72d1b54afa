/**
 * Layers as the fuzzer sees them: a list of entries with every header field, PAX record, GNU
 * long name and sparse map under its control, written to bytes by its own encoder (never stor's),
 * and mutations that work on that structure (fields, records, names, order, maps) and then on
 * the bytes (truncation, flipped bits). Deterministic: input `i` of seed `s` is always the same.
 */

/** A small fast PRNG (mulberry32): the same seed gives the same layers. */
export class Rng {
  #s: number;
  constructor(seed: number) {
    this.#s = seed >>> 0;
  }
  next(): number {
    let t = (this.#s = (this.#s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  pick<T>(list: readonly T[]): T {
    return list[this.int(list.length)]!;
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
}

/** Sparse layouts the encoder knows: old GNU `S` headers, and the three PAX forms. */
export type SparseKind = "gnu" | "0.0" | "0.1" | "1.0";

export interface Sparse {
  kind: SparseKind;
  realSize: number;
  /** Data segments: offset and length; the entry's data is their bytes in order. */
  map: [number, number][];
}

/** One entry; fields left out get sane values. */
export interface Entry {
  name: string;
  /** The type flag byte, as a one-character string. */
  type: string;
  data?: Uint8Array;
  mode?: number;
  uid?: number;
  gid?: number;
  mtime?: number;
  linkname?: string;
  devmajor?: number;
  devminor?: number;
  /** PAX records written in an `x` header before the entry, in order (keys may repeat). */
  pax?: [string, string | Uint8Array][];
  /** Put the name (and link name) in GNU `L` / `K` entries instead of the header. */
  gnuLong?: boolean;
  sparse?: Sparse;
  /** Raw bytes written over header fields after encoding: offset in the header, bytes. */
  raw?: [number, Uint8Array][];
  /** Leave the checksum wrong after `raw`. */
  badChecksum?: boolean;
}

const enc = new TextEncoder();
const bytes = (v: string | Uint8Array) => (typeof v === "string" ? enc.encode(v) : v);

function octal(h: Uint8Array, off: number, len: number, v: number): void {
  const s = Math.max(0, v).toString(8).padStart(len - 1, "0").slice(-(len - 1));
  h.set(enc.encode(`${s}\0`), off);
}

function paxRecords(records: [string, string | Uint8Array][]): Uint8Array {
  const parts: Uint8Array[] = [];
  for (const [k, v] of records) {
    const body = concat([enc.encode(` ${k}=`), bytes(v), enc.encode("\n")]);
    let len = body.length + 1;
    while (String(len).length + body.length !== len) len = String(len).length + body.length;
    parts.push(enc.encode(String(len)), body);
  }
  return concat(parts);
}

export function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

const pad = (n: number) => new Uint8Array((512 - (n % 512)) % 512);

function seal(h: Uint8Array): void {
  h.fill(0x20, 148, 156);
  let sum = 0;
  for (const b of h) sum += b;
  h.set(enc.encode(`${sum.toString(8).padStart(6, "0")}\0 `), 148);
}

/** A header block; `name` longer than 100 bytes goes in the ustar prefix when it splits there. */
function header(e: { name: string; type: string; size: number; mode?: number; uid?: number; gid?: number; mtime?: number; linkname?: string; devmajor?: number; devminor?: number }): Uint8Array {
  const h = new Uint8Array(512);
  let name = bytes(e.name);
  if (name.length > 100) {
    const slash = e.name.lastIndexOf("/", e.name.length - 1);
    const prefix = bytes(e.name.slice(0, Math.max(0, slash)));
    if (slash > 0 && prefix.length <= 155 && bytes(e.name.slice(slash + 1)).length <= 100) {
      h.set(prefix, 345);
      name = bytes(e.name.slice(slash + 1));
    }
  }
  h.set(name.subarray(0, 100), 0);
  octal(h, 100, 8, e.mode ?? 0o644);
  octal(h, 108, 8, e.uid ?? 0);
  octal(h, 116, 8, e.gid ?? 0);
  octal(h, 124, 12, e.size);
  octal(h, 136, 12, e.mtime ?? 1_600_000_000);
  h[156] = e.type.charCodeAt(0) & 0xff;
  h.set(bytes(e.linkname ?? "").subarray(0, 100), 157);
  h.set(enc.encode("ustar\x0000"), 257);
  octal(h, 329, 8, e.devmajor ?? 0);
  octal(h, 337, 8, e.devminor ?? 0);
  return h;
}

/** The bytes of a layer: each entry with its metadata entries, then the end-of-archive blocks. */
export function encode(entries: Entry[], end = true): Uint8Array {
  const out: Uint8Array[] = [];
  for (const e of entries) {
    let data = e.data ?? new Uint8Array(0);
    const pax = [...(e.pax ?? [])];
    let type = e.type;
    let name = e.name;
    let extra: Uint8Array[] = [];
    if (e.sparse) {
      const s = e.sparse;
      if (s.kind === "gnu") type = "S";
      else if (s.kind === "0.0") {
        pax.push(["GNU.sparse.size", String(s.realSize)], ["GNU.sparse.numblocks", String(s.map.length)]);
        for (const [o, l] of s.map) pax.push(["GNU.sparse.offset", String(o)], ["GNU.sparse.numbytes", String(l)]);
      } else if (s.kind === "0.1") {
        pax.push(["GNU.sparse.size", String(s.realSize)], ["GNU.sparse.numblocks", String(s.map.length)], ["GNU.sparse.map", s.map.flat().join(",")]);
      } else {
        pax.push(["GNU.sparse.major", "1"], ["GNU.sparse.minor", "0"], ["GNU.sparse.name", e.name], ["GNU.sparse.realsize", String(s.realSize)]);
        name = `GNUSparseFile.0/${e.name.split("/").pop()}`;
        const map = enc.encode(`${s.map.length}\n${s.map.flat().join("\n")}\n`);
        data = concat([map, pad(map.length), data]);
      }
    }
    if (e.gnuLong) {
      const long = (flag: string, v: string) => {
        const d = concat([bytes(v), new Uint8Array(1)]);
        const h = header({ name: "././@LongLink", type: flag, size: d.length });
        seal(h);
        extra.push(h, d, pad(d.length));
      };
      long("L", name);
      if (e.linkname) long("K", e.linkname);
    }
    if (pax.length) {
      const recs = paxRecords(pax);
      const h = header({ name: `PaxHeaders.0/${name.split("/").pop()}`.slice(0, 99), type: "x", size: recs.length });
      seal(h);
      out.push(h, recs, pad(recs.length));
    }
    out.push(...extra);
    extra = [];
    const h = header({ ...e, name, type, size: data.length });
    if (e.sparse?.kind === "gnu") {
      const s = e.sparse;
      const inHeader = s.map.slice(0, 4);
      inHeader.forEach(([o, l], i) => {
        octal(h, 386 + i * 24, 12, o);
        octal(h, 386 + i * 24 + 12, 12, l);
      });
      octal(h, 483, 12, s.realSize);
      const rest = s.map.slice(4);
      if (rest.length) h[482] = 1;
      for (let i = 0; i < rest.length; i += 21) {
        const b = new Uint8Array(512);
        rest.slice(i, i + 21).forEach(([o, l], j) => {
          octal(b, j * 24, 12, o);
          octal(b, j * 24 + 12, 12, l);
        });
        if (i + 21 < rest.length) b[504] = 1;
        extra.push(b);
      }
    }
    for (const [off, b] of e.raw ?? []) h.set(b.subarray(0, 512 - off), off);
    seal(h);
    if (e.badChecksum) h[150]! ^= 1;
    out.push(h, ...extra, data, pad(data.length));
  }
  if (end) out.push(new Uint8Array(1024));
  return concat(out);
}

// --- seeds -------------------------------------------------------------------------------------

const text = (s: string) => enc.encode(s);
const D = (name: string, mode = 0o755, more: Partial<Entry> = {}): Entry => ({ name: `${name}/`, type: "5", mode, ...more });
const F = (name: string, data: string, more: Partial<Entry> = {}): Entry => ({ name, type: "0", data: text(data), ...more });

/** The layer every fuzz snapshot's parent is made of. */
export const BASE: Entry[] = [
  D("etc"),
  F("etc/passwd", "root:x:0:0"),
  F("etc/hosts", "127.0.0.1 localhost", { mode: 0o600, uid: 7, gid: 8 }),
  D("p", 0o750, { uid: 12, gid: 34 }),
  D("p/q"),
  F("p/q/lower", "lower"),
  D("a"),
  F("a/keep", "k"),
  F("a/gone", "g"),
  D("a/sub"),
  F("a/sub/x", "x"),
  D("b", 0o755, { pax: [["SCHILY.xattr.user.tag", "base"]] }),
  F("b/old1", "1"),
  D("b/sub"),
  F("b/sub/y", "y"),
  { name: "lnk", type: "2", linkname: "etc/passwd" },
  { name: "hard", type: "1", linkname: "etc/passwd" },
  { name: "fifo", type: "6" },
  { name: "null", type: "3", devmajor: 1, devminor: 3 },
];

/** A layer applied to each fuzz snapshot before the fuzzed one, so that an undo has work to do. */
export const PRE: Entry[] = [
  F("c/new", "new"),
  { name: "a/.wh.gone", type: "0" },
  D("b"),
  { name: "b/.wh..wh..opq", type: "0" },
  F("b/n", "n"),
  F("etc/passwd", "changed", { mode: 0o640, pax: [["SCHILY.xattr.user.note", "pre"]] }),
];

/** Seed layers: what layers in the wild hold, and the four attacks of issue 12. */
export const SEEDS: Entry[][] = [
  // Everything a layer may hold.
  [
    D("./", 0o755),
    D("usr"),
    D("usr/bin", 0o755, { mtime: 1_500_000_000 }),
    F("usr/bin/tool", "#!/bin/sh\necho hi\n", { mode: 0o4755, uid: 0, gid: 0, pax: [["SCHILY.xattr.security.capability", new Uint8Array([1, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])]] }),
    { name: "usr/bin/link", type: "1", linkname: "usr/bin/tool" },
    { name: "usr/bin/sym", type: "2", linkname: "../../etc/passwd" },
    { name: `usr/${"long-".repeat(30)}name`, type: "0", data: text("long"), gnuLong: true },
    { name: `usr/${"pax-".repeat(40)}name`, type: "0", data: text("pax"), pax: [["path", `usr/${"pax-".repeat(40)}name`], ["mtime", "1600000000.123456789"], ["uid", "5000000"], ["gid", "4294967294"]] },
    { name: "usr/sparse-gnu", type: "0", data: text("AAAABBBB"), sparse: { kind: "gnu", realSize: 100000, map: [[0, 4], [65536, 4]] } },
    { name: "usr/sparse-1", type: "0", data: text("CCCCDDDD"), sparse: { kind: "1.0", realSize: 9000, map: [[10, 4], [8000, 4]] } },
    { name: "usr/sparse-00", type: "0", data: text("EE"), sparse: { kind: "0.0", realSize: 3000, map: [[1000, 2]] } },
    { name: "usr/sparse-01", type: "0", data: text("FF"), sparse: { kind: "0.1", realSize: 3000, map: [[2000, 2]] } },
    { name: "usr/fifo", type: "6", mode: 0o600 },
    { name: "usr/dev", type: "4", devmajor: 7, devminor: 0x12345 },
    F("usr/neg-time", "old", { pax: [["mtime", "-100.5"]] }),
    F("usr/xattrs", "x", { pax: [["SCHILY.xattr.user.bin", new Uint8Array([0, 255, 10, 61])], ["SCHILY.xattr.trusted.x", "t"]] }),
  ],
  // Whiteouts, in the order of issue 12 and others.
  [D("p"), D("p/q"), F("p/q/upper", "u"), { name: "p/.wh.q", type: "0" }, { name: "a/.wh.keep", type: "0" }, { name: ".wh.etc", type: "0" }, F("b/sub/z", "z"), { name: "b/.wh..wh..opq", type: "0" }],
  [{ name: "p/.wh.q", type: "0" }, F("p/q/upper", "u"), { name: "a/.wh.sub", type: "0" }, D("a/sub"), F("a/sub/new", "n"), { name: "x/y/.wh.z", type: "0" }],
  // A directory with the whiteout prefix, and overlay's own xattrs.
  [D(".wh.etc"), F(".wh.etc/somefile", "s"), F("ok", "fine")],
  [D("o", 0o755, { pax: [["SCHILY.xattr.user.overlay.opaque", "y"], ["SCHILY.xattr.user.overlay.redirect", "/etc"], ["SCHILY.xattr.trusted.overlay.opaque", "y"], ["SCHILY.xattr.user.ok", "1"]] }), F("o/f", "f", { pax: [["SCHILY.xattr.user.overlay.origin", "z"]] })],
  // Replacing what the parent has: a file over a directory, a directory over a file, a link over a file.
  [F("a", "now a file"), D("etc/passwd"), { name: "etc/hosts", type: "2", linkname: "/nowhere" }, F("lnk", "replaced")],
];

// --- mutation ----------------------------------------------------------------------------------

const base256 = (v: bigint, len: number) => {
  const out = new Uint8Array(len);
  let x = BigInt.asUintN(len * 8, v);
  for (let i = len - 1; i >= 0; i--) {
    out[i] = Number(x & 0xffn);
    x >>= 8n;
  }
  out[0] = (out[0]! & 0x7f) | 0x80;
  if (v < 0n) out[0] |= 0x40; // sign bit of the 95-bit (or 63-bit) number
  return out;
};

const FIELDS: [string, number, number][] = [
  ["mode", 100, 8],
  ["uid", 108, 8],
  ["gid", 116, 8],
  ["size", 124, 12],
  ["mtime", 136, 12],
  ["devmajor", 329, 8],
  ["devminor", 337, 8],
];

/** Values that have broken numeric fields somewhere: signs, widths, edges, junk. */
function hostileField(rng: Rng, len: number): Uint8Array {
  const bigs = [-1n, -512n, -(2n ** 40n), 2n ** 31n, 2n ** 32n - 1n, 2n ** 32n, 2n ** 53n, 2n ** 63n - 1n, 2n ** 40n, 4096n, 1n << 20n, 0n];
  switch (rng.int(6)) {
    case 0:
      return base256(rng.pick(bigs), len);
    case 1:
      return enc.encode(`${"7".repeat(len - 1)}\0`);
    case 2:
      return enc.encode(rng.pick(["9z", " 1 2", "-1", "+7", "0x10", "", "\0\0\0\0\u00ff", " ".repeat(len)]).padEnd(len, "\0").slice(0, len));
    case 3:
      return enc.encode(`${rng.int(2 ** 30).toString(8)}\0`.slice(0, len));
    case 4: {
      const b = new Uint8Array(len);
      for (let i = 0; i < len; i++) b[i] = rng.int(256);
      return b;
    }
    default:
      return enc.encode(`${(2 ** rng.int(36)).toString(8)}\0`.slice(-len));
  }
}

const PAX_NUMBERS = ["-1", "0", "1e3", "99999999999999999999", "4294967295", "4294967294", "18446744073709551616", "1.5", "-1.5", "", " 12", "9007199254740993", "9".repeat(2000), "-9223372036854775808", "1600000000.9999999999999", "0x10", "١٢"];
const XATTRS: [string, string | Uint8Array][] = [
  ["SCHILY.xattr.user.overlay.opaque", "y"],
  ["SCHILY.xattr.user.overlay.redirect", "/etc"],
  ["SCHILY.xattr.trusted.overlay.opaque", "y"],
  ["SCHILY.xattr.trusted.overlay.origin", "x"],
  ["SCHILY.xattr.user.big", "v".repeat(3000)],
  ["SCHILY.xattr.user.", "empty name"],
  ["SCHILY.xattr.", "no name"],
  ["SCHILY.xattr.security.capability", "junk"],
  ["SCHILY.xattr.system.posix_acl_access", "junk"],
  ["SCHILY.xattr.nonamespace", "x"],
  ["SCHILY.xattr.user.bin", new Uint8Array([0, 1, 2, 255])],
];
const TYPES = ["0", "1", "2", "3", "4", "5", "6", "7", "x", "g", "L", "K", "S", "\0", "V", "Z"];

function mutateName(rng: Rng, name: string): string {
  const parts = name.split("/");
  const i = rng.int(parts.length);
  switch (rng.int(10)) {
    case 0:
      parts[i] = `.wh.${parts[i]}`;
      break;
    case 1:
      parts.splice(i, 0, "..");
      break;
    case 2:
      return `/${name}`;
    case 3:
      parts[i] = "n".repeat(rng.pick([100, 101, 155, 255, 256, 300]));
      break;
    case 4:
      return `${name}/`;
    case 5:
      return rng.pick(["", ".", "./", "/", "..", ".wh.", ".wh..wh..opq", ".wh..wh.plnk", "a/.wh..wh..opq/b", ".wh...", "a\0b"]);
    case 6:
      parts[i] = `${parts[i]}\udcff`;
      break;
    case 7:
      return rng.pick(BASE).name.replace(/\/$/, "");
    case 8:
      parts[i] = ".wh..wh..opq";
      break;
    default:
      return `${"d/".repeat(rng.int(300))}${name}`;
  }
  return parts.join("/");
}

function mutateEntry(rng: Rng, e: Entry, all: Entry[]): void {
  switch (rng.int(12)) {
    case 0: {
      const [, off, len] = rng.pick(FIELDS);
      (e.raw ??= []).push([off, hostileField(rng, len)]);
      break;
    }
    case 1:
      (e.pax ??= []).push([rng.pick(["size", "uid", "gid", "mtime", "atime", "GNU.sparse.size", "GNU.sparse.offset", "GNU.sparse.numbytes", "GNU.sparse.map", "GNU.sparse.realsize"]), rng.pick(PAX_NUMBERS)]);
      break;
    case 2:
      e.type = rng.pick(TYPES);
      break;
    case 3:
      e.name = mutateName(rng, e.name);
      break;
    case 4:
      (e.pax ??= []).push(rng.pick(XATTRS));
      break;
    case 5:
      e.linkname = rng.chance(0.5) ? mutateName(rng, e.linkname ?? rng.pick(all).name) : rng.pick(all).name;
      if (rng.chance(0.5)) e.type = rng.pick(["1", "2"]);
      break;
    case 6: {
      const realSize = rng.pick([0, 10, 4096, 1 << 20, 2 ** 40, 2 ** 53, -1]);
      const map: [number, number][] = [];
      for (let n = rng.int(6); n > 0; n--) map.push([rng.pick([0, 5, 100, 4096, realSize, realSize - 1, -1, 2 ** 52]), rng.pick([0, 1, 4, 512, -4])]);
      const total = map.reduce((s, [, l]) => s + Math.max(0, l), 0);
      e.sparse = { kind: rng.pick(["gnu", "0.0", "0.1", "1.0"] as const), realSize, map };
      e.data = new Uint8Array(rng.chance(0.8) ? Math.min(total, 4096) : rng.int(600));
      break;
    }
    case 7:
      if (e.sparse) {
        const m = e.sparse.map;
        if (m.length && rng.chance(0.5)) m[rng.int(m.length)]![rng.int(2)] = rng.pick([-1, 0, 2 ** 53, 7, 1 << 30]);
        else e.sparse.realSize = rng.pick([-1, 0, 3, 2 ** 53, 2 ** 62]);
      } else e.gnuLong = !e.gnuLong;
      break;
    case 8:
      e.data = new Uint8Array(rng.pick([0, 1, 511, 512, 513, 5000]));
      break;
    case 9:
      e.badChecksum = true;
      break;
    case 10:
      e.mode = rng.pick([0, 0o7777, 0o4755, 0o1777, 0o2750]);
      e.uid = rng.pick([0, 1, 65534, 0o7777777]);
      e.mtime = rng.pick([0, 1, 2 ** 33 - 1, 0o77777777777]);
      break;
    default: {
      const b = new Uint8Array(1 + rng.int(8));
      for (let i = 0; i < b.length; i++) b[i] = rng.int(256);
      (e.raw ??= []).push([rng.int(512 - b.length), b]);
    }
  }
}

/** How many inputs the truncation sweep has. */
export const SWEEP_LENGTH = SEEDS.reduce((n, seed) => n + encode(seed, false).length + 1, 0);

/**
 * Input `index` of the truncation sweep: each seed layer cut at every offset in turn (a header,
 * a PAX record, a long name, a sparse map, file data, the end blocks); undefined past the last.
 */
export function sweepInput(index: number): Uint8Array | undefined {
  for (const seed of SEEDS) {
    // Without the end blocks: a cut in them is the same input as a cut before them, accepted.
    const bytes = encode(seed, false);
    if (index <= bytes.length) return bytes.subarray(0, index);
    index -= bytes.length + 1;
  }
  return undefined;
}

/** Input `index` of seed `seed`: a seed layer, mutated in its structure and then in its bytes. */
export function fuzzInput(seed: number, index: number): Uint8Array {
  const rng = new Rng((seed * 0x9e3779b1) ^ (index * 0x85ebca6b));
  const entries: Entry[] = structuredClone(rng.pick(SEEDS));
  for (let n = 1 + rng.int(4); n > 0; n--) {
    const op = rng.int(10);
    if (op < 5 && entries.length) mutateEntry(rng, rng.pick(entries), entries);
    else if (op === 5 && entries.length > 1) {
      // Whiteouts (or anything) in every order: one entry moved to any place.
      const [moved] = entries.splice(rng.int(entries.length), 1);
      entries.splice(rng.int(entries.length + 1), 0, moved!);
    } else if (op === 6) entries.push(structuredClone(rng.pick(rng.pick(SEEDS))));
    else if (op === 7 && entries.length) entries.splice(rng.int(entries.length), 1);
    else if (op === 8) entries.splice(rng.int(entries.length + 1), 0, { name: `${rng.pick(BASE).name.replace(/\/$/, "").replace(/[^/]+$/, "")}.wh.${rng.pick(["q", "keep", "sub", "etc", "passwd", "b", "p", "..wh..opq", "c", "new"])}`, type: "0" });
    else for (let i = entries.length - 1; i > 0; i--) {
      const j = rng.int(i + 1);
      [entries[i], entries[j]] = [entries[j]!, entries[i]!];
    }
  }
  let out = encode(entries, !rng.chance(0.05));
  if (rng.chance(0.25)) out = out.subarray(0, rng.chance(0.3) ? rng.int(out.length / 512 + 1) * 512 : rng.int(out.length + 1));
  if (rng.chance(0.1)) {
    out = Uint8Array.from(out);
    for (let n = 1 + rng.int(4); n > 0 && out.length; n--) out[rng.int(out.length)]! ^= 1 << rng.int(8);
  }
  return out;
}
