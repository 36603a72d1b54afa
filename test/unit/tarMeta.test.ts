/**
 * Metadata entries (`x`, `g`, `L`, `K`) before an entry, and PAX sparse maps, read by the tar
 * reader (src/layer/tarReader.ts) as Go's archive/tar reads them: containerd unpacks a layer with
 * it, so a layer stor reads otherwise unpacks differently in the two for the same diffID.
 */
import { expect, test } from "bun:test";
import { paxRecord, type TarHeader } from "../../src/layer/tarFormat.ts";
import { TarReader } from "../../src/layer/tarReader.ts";
import { concat, encode, type Entry } from "../fuzz/tarModel.ts";

const text = (s: string) => new TextEncoder().encode(s);
/** An `x` (or `g`) entry holding `records`, in order. */
const pax = (records: [string, string][], type = "x"): Entry => ({ name: "PaxHeaders/0", type, data: concat(records.map(([k, v]) => paxRecord(k, v))) });
/** A GNU long name (`L`) or long link (`K`) entry. */
const long = (type: "L" | "K", name: string): Entry => ({ name: "././@LongLink", type, data: text(`${name}\0`) });
const file = (name: string, data = "", more: Partial<Entry> = {}): Entry => ({ name, type: "0", data: text(data), ...more });

/** Every entry of `chunks`, fed to the reader one at a time, with its content. */
async function readAll(chunks: Iterable<Uint8Array>): Promise<[TarHeader, string][]> {
  const reader = new TarReader((async function* () {
    yield* chunks;
  })());
  const out: [TarHeader, string][] = [];
  for (let h = await reader.next(); h; h = await reader.next()) {
    const data = Buffer.alloc(h.size);
    for (let p = await reader.read(); p; p = await reader.read()) data.set(p.bytes, p.position);
    out.push([h, data.toString("latin1")]);
  }
  return out;
}
const read = (entries: Entry[]) => readAll([encode(entries)]);
const paths = async (entries: Entry[]) => (await read(entries)).map(([h]) => h.path);

test("each x entry replaces the one before: only the last one's records apply", async () => {
  const [[h]] = (await read([pax([["path", "evil"], ["uid", "5"], ["SCHILY.xattr.user.a", "1"]]), pax([["mtime", "1234"]]), file("good")])) as [[TarHeader, string]];
  expect([h.path, h.uid, h.xattrs.size, h.mtimeNs]).toEqual(["good", 0, 0, 1234_000_000_000n]);
});

test("a value refused in a replaced x entry does not count", async () => {
  expect(await paths([pax([["size", "-1"]]), pax([["mtime", "1"]]), file("good", "data")])).toEqual(["good"]);
});

test("a g entry ends the metadata before it, and its own records apply to nothing", async () => {
  expect(await paths([pax([["path", "evil"]]), pax([["path", "global"], ["linkpath", "x"]], "g"), file("good")])).toEqual(["good"]);
  expect(await paths([long("L", "evil"), pax([], "g"), file("good")])).toEqual(["good"]);
  const [[h]] = (await read([long("K", "evil"), pax([["linkpath", "evil2"]], "g"), file("sym", "", { type: "2", linkname: "good" })])) as [[TarHeader, string]];
  expect(h.linkpath).toBe("good");
});

test("of repeated L or K entries, the last counts", async () => {
  expect(await paths([long("L", "evil"), long("L", "good"), file("short")])).toEqual(["good"]);
  const [[h]] = (await read([long("K", "evil"), long("K", "good"), file("sym", "", { type: "2", linkname: "short" })])) as [[TarHeader, string]];
  expect(h.linkpath).toBe("good");
});

test("an L name wins over a PAX path and a K name over a PAX linkpath, in either order", async () => {
  expect(await paths([pax([["path", "pax"]]), long("L", "gnu"), file("short")])).toEqual(["gnu"]);
  expect(await paths([long("L", "gnu"), pax([["path", "pax"]]), file("short")])).toEqual(["gnu"]);
  const [[h]] = (await read([long("K", "gnu"), pax([["linkpath", "pax"]]), file("sym", "", { type: "2", linkname: "short" })])) as [[TarHeader, string]];
  expect(h.linkpath).toBe("gnu");
});

test("an empty L name or PAX value keeps the header's own", async () => {
  expect(await paths([long("L", ""), file("own")])).toEqual(["own"]);
  expect(await paths([long("L", "evil"), long("L", ""), file("own")])).toEqual(["own"]);
  expect(await paths([pax([["path", ""]]), file("own")])).toEqual(["own"]);
  const [[h, data]] = (await read([pax([["path", "evil"], ["path", ""], ["size", ""], ["uid", ""], ["mtime", ""]]), file("own", "abc", { uid: 7 })])) as [[TarHeader, string]];
  expect([h.path, data, h.uid, h.mtimeNs]).toEqual(["own", "abc", 7, 1_600_000_000_000_000_000n]);
});

test("an archive may not end after an x, L or K entry", async () => {
  for (const meta of [pax([["path", "p"]]), long("L", "n"), long("K", "k")]) {
    await expect(read([file("a"), meta])).rejects.toThrow("archive ends after an extended header");
  }
});

test("PAX sparse 0.0 offsets and lengths out of turn are refused", async () => {
  const entry = pax([["GNU.sparse.size", "4"], ["GNU.sparse.numbytes", "2"], ["GNU.sparse.offset", "0"]]);
  await expect(read([entry, file("victim", "ab")])).rejects.toThrow('entry "victim": GNU.sparse.offset and GNU.sparse.numbytes out of turn');
});

/** `count` x entries, each of `records` records made by `record(i, j)`, as chunks made one at a time. */
function* manyPax(count: number, records: number, record: (i: number, j: number) => [string, string]): Generator<Uint8Array> {
  for (let i = 0; i < count; i++) yield encode([pax(Array.from({ length: records }, (_, j) => record(i, j)))], false);
}

test("any number of x entries hold no more than the last one's records", async () => {
  const chunks = function* () {
    yield* manyPax(200, 500, (i, j) => [`SCHILY.xattr.user.${i}.${j}`, "v"]);
    yield encode([file("victim")]);
  };
  const [[h]] = (await readAll(chunks())) as [[TarHeader, string]];
  expect(h.xattrs.size).toBe(500);
  expect([...h.xattrs.keys()].every((k) => k.startsWith("user.199."))).toBe(true);
});

test("PAX sparse 0.0 records of earlier x entries are not added to the entry's map", async () => {
  const chunks = function* () {
    // Merged, these segments (at 5) would come before the last entry's (at 0), and be refused.
    yield* manyPax(100, 200, (_, j) => (j % 2 ? ["GNU.sparse.numbytes", "1"] : ["GNU.sparse.offset", "5"]));
    yield encode([{ ...file("victim", "a"), sparse: { kind: "0.0", realSize: 6, map: [[0, 1]] } }]);
  };
  const [[h, data]] = (await readAll(chunks())) as [[TarHeader, string]];
  expect([h.path, h.size, data]).toEqual(["victim", 6, "a\0\0\0\0\0"]);
});

test("a PAX sparse 1.0 map over several blocks is read", async () => {
  const map = Array.from({ length: 300 }, (_, i): [number, number] => [i * 10, 1]);
  const data = "x".repeat(300);
  const [[h, content]] = (await read([{ ...file("sparse", data), sparse: { kind: "1.0", realSize: 3000, map } }])) as [[TarHeader, string]];
  expect(h.path).toBe("sparse");
  expect(content).toBe(Array.from({ length: 300 }, () => "x\0\0\0\0\0\0\0\0\0").join(""));
});

/**
 * A PAX sparse 1.0 entry whose stored size is one block, `start` then `fill` over and over, then
 * `blocks` more blocks of `fill` after the entry, made one at a time; `pulled` counts the chunks
 * the reader asked for.
 */
function runawayMap(fill: string, blocks: number, start = "") {
  const map = text((start + fill.repeat(512)).slice(0, 512));
  const head = encode([pax([["GNU.sparse.major", "1"], ["GNU.sparse.minor", "0"], ["GNU.sparse.name", "victim"], ["GNU.sparse.realsize", "10"]]), { name: "GNUSparseFile.0/victim", type: "0", data: map }], false);
  const source = {
    pulled: 0,
    *[Symbol.iterator]() {
      this.pulled++;
      yield head;
      for (let i = 0; i < blocks; i++) {
        this.pulled++;
        yield text(fill.repeat(512));
      }
      yield new Uint8Array(1024);
    },
  };
  return source;
}

test("a PAX sparse 1.0 map line running past the entry is refused there, nothing after it read", async () => {
  // 1 MiB of digits with no newline: this once was scanned again for each block (quadratic) and
  // read on through whatever followed the entry.
  const source = runawayMap("0", 2048);
  await expect(readAll(source)).rejects.toThrow('entry "victim": sparse map larger than the entry');
  expect(source.pulled).toBeLessThanOrEqual(2);
});

test("a PAX sparse 1.0 map number beyond 2^53 is refused", async () => {
  const source = runawayMap("1", 2048);
  await expect(readAll(source)).rejects.toThrow('entry "victim": sparse map number out of range');
  expect(source.pulled).toBeLessThanOrEqual(2);
});

test("a PAX sparse 1.0 map of more lines than the entry holds is refused at the entry's end", async () => {
  const source = runawayMap("0\n", 2048, "1000000\n");
  await expect(readAll(source)).rejects.toThrow('entry "victim": sparse map larger than the entry');
  expect(source.pulled).toBeLessThanOrEqual(2);
});

test("a PAX sparse 1.0 map line that is not a number is refused", async () => {
  await expect(readAll(runawayMap("1 \n", 0))).rejects.toThrow('entry "victim": invalid sparse map');
  await expect(readAll(runawayMap("\n", 0))).rejects.toThrow('entry "victim": invalid sparse map');
});

/**
 * One file `name` holding "hi", its header with `prefix` and magic and version (bytes 257–264)
 * `magic`, and a STAR trailer with its times when `star`; the checksum made good, the archive ended.
 */
function rawEntry(name: string, prefix: string, magic: string, star = false): Uint8Array {
  const h = new Uint8Array(512);
  const put = (at: number, s: string) => h.set(text(s), at);
  put(0, name);
  put(100, "0000644\0");
  put(108, "0000000\0");
  put(116, "0000000\0");
  put(124, "00000000002\0");
  put(136, "00000000000\0");
  put(156, "0");
  put(257, magic);
  put(345, prefix);
  if (star) {
    put(476, "00000000000\0"); // atime, ctime: right after a STAR header's 131-byte prefix
    put(488, "00000000000\0");
    put(508, "tar\0");
  }
  h.fill(0x20, 148, 156);
  put(148, `${h.reduce((a, b) => a + b, 0).toString(8).padStart(6, "0")}\0 `);
  const data = new Uint8Array(512);
  data.set(text("hi"));
  return concat([h, data, new Uint8Array(1024)]);
}
const rawPaths = async (archive: Uint8Array) => (await readAll([archive])).map(([h, data]) => [h.path, data]);

test("a ustar header's prefix names the entry whatever its version field says, as Go's archive/tar reads it", async () => {
  for (const magic of ["ustar\x0000", "ustar\0\0\0", "ustar\0  "]) expect(await rawPaths(rawEntry("f", "pfx", magic))).toEqual([["pfx/f", "hi"]]);
  // A GNU header ("ustar  \0") has no prefix: those bytes are its times and sparse map.
  expect(await rawPaths(rawEntry("f", "pfx", "ustar  \0"))).toEqual([["f", "hi"]]);
});

test("a STAR header's prefix is 131 bytes: the times after it are no part of the name", async () => {
  expect(await rawPaths(rawEntry("f", "x".repeat(131), "ustar\x0000", true))).toEqual([[`${"x".repeat(131)}/f`, "hi"]]);
});
