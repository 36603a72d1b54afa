/** The tar writer's headers read back by the tar reader (src/layer/tar*.ts), in memory. */
import { expect, test } from "bun:test";
import type { TarHeader } from "../../src/layer/tarFormat.ts";
import { TarReader } from "../../src/layer/tarReader.ts";
import { END_OF_ARCHIVE, encodeHeader, padding } from "../../src/layer/tarWriter.ts";

const header = (h: Partial<TarHeader> & Pick<TarHeader, "path" | "type">): TarHeader => ({
  mode: 0o644,
  uid: 0,
  gid: 0,
  size: 0,
  mtimeNs: 1_700_000_000_123_456_789n,
  linkpath: "",
  devMajor: 0,
  devMinor: 0,
  xattrs: new Map(),
  ...h,
});

/** An archive of `entries`, each with its content. */
function archive(entries: [TarHeader, string][]): Uint8Array {
  const parts: Uint8Array[] = [];
  for (const [h, data] of entries) parts.push(encodeHeader(h), Buffer.from(data), padding(data.length));
  parts.push(END_OF_ARCHIVE);
  return Buffer.concat(parts);
}

async function readAll(bytes: Uint8Array): Promise<[TarHeader, string][]> {
  const reader = new TarReader((async function* () {
    yield bytes;
  })());
  const out: [TarHeader, string][] = [];
  for (let h = await reader.next(); h; h = await reader.next()) {
    let data = "";
    for (let p = await reader.read(); p; p = await reader.read()) data += Buffer.from(p.bytes).toString();
    out.push([h, data]);
  }
  return out;
}

test("files, directories, links, a long non-ASCII name, big ids and xattrs survive a round trip", async () => {
  const long = `${"dir/".repeat(40)}ünïcode-name`;
  const entries: [TarHeader, string][] = [
    [header({ path: "etc", type: "dir", mode: 0o755 }), ""],
    [header({ path: "etc/hosts", type: "file", size: 9, uid: 3_000_000, gid: 7 }), "127.0.0.1"],
    [header({ path: "link", type: "symlink", linkpath: "etc/hosts" }), ""],
    [header({ path: "hard", type: "link", linkpath: "etc/hosts" }), ""],
    [header({ path: long, type: "file", size: 2, xattrs: new Map([["user.k", Buffer.from("v")]]) }), "ok"],
  ];
  const back = await readAll(archive(entries));
  expect(back.map(([h, d]) => [h.path, h.type, h.size, h.uid, h.linkpath, d])).toEqual(entries.map(([h, d]) => [h.path, h.type, h.size, h.uid, h.linkpath, d]));
  expect(back[4]![0].xattrs.get("user.k")).toEqual(Buffer.from("v"));
  expect(back[1]![0].mtimeNs).toBe(1_700_000_000_000_000_000n); // whole seconds, as Go's writer (so containerd's) writes them
});

test("a header with a bad checksum is refused, naming the offset", async () => {
  const bytes = archive([[header({ path: "f", type: "file", size: 1 }), "x"]]);
  bytes[0]! ^= 1;
  await expect(readAll(bytes)).rejects.toThrow("invalid header checksum at offset 0");
});
