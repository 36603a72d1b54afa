/**
 * Encodes tar headers as POSIX ustar blocks with a PAX extended header for what ustar cannot hold
 * (long or non-ASCII names, large ids and sizes, xattrs). Every field is fixed by the header
 * alone: no user or group names, no access or change times, mtime in whole seconds, PAX records
 * sorted by key. The same tree therefore always gives the same bytes, as containerd's writer does.
 */
import { encodeName } from "../fileName.ts";
import { BLOCK, FIELD, TYPEFLAG, XATTR_PREFIX, checksum, paxRecord, writeOctal, type TarHeader } from "./tarFormat.ts";

/** The two zero blocks that end an archive. */
export const END_OF_ARCHIVE = new Uint8Array(2 * BLOCK);

const isAscii = (b: Uint8Array) => b.every((c) => c < 0x80);

/** The zero bytes that pad `size` bytes of content to a whole block. */
export function padding(size: number): Uint8Array {
  return new Uint8Array((BLOCK - (size % BLOCK)) % BLOCK);
}

/** The header blocks of one entry: a PAX header when needed, then the ustar header. */
export function encodeHeader(h: TarHeader): Uint8Array {
  const name = h.type === "dir" ? `${h.path}/` : h.path;
  const pax: [string, Uint8Array | string][] = [];
  const block = new Uint8Array(BLOCK);
  const text = (field: readonly [number, number], value: string, paxKey: string) => {
    const bytes = encodeName(value);
    if (bytes.length > field[1] || !isAscii(bytes)) pax.push([paxKey, bytes]);
    // The ustar field keeps what fits, for readers that know no PAX.
    block.set(bytes.subarray(0, field[1]), field[0]);
  };
  const number = (field: readonly [number, number], value: number, paxKey: string) => {
    if (!writeOctal(block, field, value)) {
      writeOctal(block, field, 0);
      pax.push([paxKey, String(value)]);
    }
  };
  const seconds = h.mtimeNs / 1_000_000_000n - (h.mtimeNs < 0n && h.mtimeNs % 1_000_000_000n !== 0n ? 1n : 0n);
  text(FIELD.name, name, "path");
  writeOctal(block, FIELD.mode, h.mode & 0o7777);
  number(FIELD.uid, h.uid, "uid");
  number(FIELD.gid, h.gid, "gid");
  number(FIELD.size, h.type === "file" ? h.size : 0, "size");
  number(FIELD.mtime, Number(seconds), "mtime");
  block[156] = TYPEFLAG[h.type].charCodeAt(0);
  text(FIELD.linkname, h.linkpath, "linkpath");
  block.set(Buffer.from("ustar\x0000", "latin1"), FIELD.magic[0]);
  writeOctal(block, FIELD.devmajor, h.devMajor);
  writeOctal(block, FIELD.devminor, h.devMinor);
  for (const [key, value] of [...h.xattrs].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) pax.push([XATTR_PREFIX + key, value]);
  sealHeader(block);
  if (pax.length === 0) return block;
  pax.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const records = Buffer.concat(pax.map(([k, v]) => paxRecord(k, v)));
  return Buffer.concat([paxHeaderBlock(name, records.length), records, padding(records.length), block]);
}

/** The `x` header announcing `size` bytes of PAX records for `name`, named as Go's writer names it. */
function paxHeaderBlock(name: string, size: number): Uint8Array {
  const block = new Uint8Array(BLOCK);
  const slash = name.replace(/\/$/, "").lastIndexOf("/");
  const paxName = `${name.slice(0, slash + 1)}PaxHeaders.0/${name.slice(slash + 1)}`.replace(/[^\x20-\x7e]/g, "_");
  block.set(Buffer.from(paxName, "latin1").subarray(0, FIELD.name[1]), FIELD.name[0]);
  for (const f of [FIELD.mode, FIELD.uid, FIELD.gid, FIELD.mtime, FIELD.devmajor, FIELD.devminor]) writeOctal(block, f, 0);
  writeOctal(block, FIELD.size, size);
  block[156] = "x".charCodeAt(0);
  block.set(Buffer.from("ustar\x0000", "latin1"), FIELD.magic[0]);
  sealHeader(block);
  return block;
}

/** Writes the checksum: six octal digits, NUL, space, as tar has always done. */
function sealHeader(block: Uint8Array): void {
  block.set(Buffer.from(`${checksum(block).toString(8).padStart(6, "0")}\0 `, "latin1"), FIELD.chksum[0]);
}
