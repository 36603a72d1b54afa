/**
 * Malformed layers: truncated, corrupt or not tar at all, plain and compressed. Each fails with
 * one line on stderr and exit 2, and leaves the committed parent as it was.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { constants, gzipSync, zstdCompressSync } from "node:zlib";
import { STOR, TestRoot, isRoot, need, sh } from "./helpers.ts";
import { SNAPSHOTTERS, committedLayer, oneLineError, tar, viewListing } from "./layer-helpers.ts";

/** Deterministic bytes that do not compress away. */
function noise(n: number, seed = 1): Buffer {
  const out = Buffer.alloc(n);
  let x = seed;
  for (let i = 0; i < n; i++) out[i] = (x = (Math.imul(x, 1103515245) + 12345) >>> 0) >>> 24; // imul: exact in 32 bits
  return out;
}

const GOOD = tar([
  { name: "data/", type: "5", mode: 0o755 },
  { name: "data/blob", data: noise(20000) },
  { name: "data/small", data: "small" },
]);

/** A copy of `buf` with `bytes` written at `offset`. */
function patched(buf: Buffer, offset: number, bytes: Buffer | string): Buffer {
  const out = Buffer.from(buf);
  out.write(typeof bytes === "string" ? bytes : bytes.toString("latin1"), offset, "latin1");
  return out;
}

/** The header at `offset` with `field` rewritten and its checksum made right again. */
function withField(buf: Buffer, offset: number, field: number, text: string): Buffer {
  const out = patched(buf, offset + field, text);
  out.fill(" ", offset + 148, offset + 156);
  let sum = 0;
  for (let i = offset; i < offset + 512; i++) sum += out[i]!;
  out.write(`${sum.toString(8).padStart(6, "0")}\0 `, offset + 148, "latin1");
  return out;
}

const gz = gzipSync(GOOD);
// With a content checksum, as the zstd tool writes by default: without one, corrupt data can pass for data.
const zs = zstdCompressSync(GOOD, { params: { [constants.ZSTD_c_checksumFlag]: 1 } });
const MALFORMED: [string, Buffer, RegExp][] = [
  ["truncated in file data", GOOD.subarray(0, 512 * 2 + 5000), /truncated data of "data\/blob"/],
  ["truncated in a header", GOOD.subarray(0, 512 + 300), /truncated tar header/],
  ["bad header checksum", patched(GOOD, 512 + 3, "X"), /invalid header checksum at offset 512/],
  ["invalid size field", withField(GOOD, 512, 124, "99z9999999\0"), /invalid size field/],
  ["extended header larger than allowed", withField(tar([{ name: "PaxHeaders/x", type: "x" }]), 0, 124, "00010000000\0"), /extended header of 2097152 bytes is too large/],
  ["gzip with corrupt data", patched(gz, Math.floor(gz.length / 2), noise(16, 7)), /gzip stream: corrupt/],
  ["gzip cut short", gz.subarray(0, Math.floor(gz.length / 2)), /gzip stream: corrupt: unexpected end of file/],
  // zlib passes over what follows a gzip stream; Go's reader, and so containerd, refuses it.
  ["gzip followed by NULs", Buffer.concat([gz, Buffer.alloc(1000)]), /gzip stream: corrupt: 1000 bytes after its end/],
  ["zstd with corrupt data", patched(zs, Math.floor(zs.length / 2), noise(16, 9)), /zstd stream: corrupt/],
  ["zstd cut short", zs.subarray(0, zs.length - 10), /zstd stream: truncated/],
  ["not a tar stream", noise(4096, 3), /invalid header checksum at offset 0/],
];

describe.each(SNAPSHOTTERS)("malformed layers on %s", (sn) => {
  let root: TestRoot;
  let dir: string;
  let parentBefore: string[];
  const run = isRoot();
  beforeAll(() => {
    if (!run) return;
    root = TestRoot.for(sn, "stor-layer-bad-");
    dir = root.dir("layers");
    committedLayer(root, sn, "base-c", join(dir, "good.tar"), GOOD);
    parentBefore = viewListing(root, sn, "base-c");
  });
  afterAll(() => root?.close());

  for (const [i, [name, bytes, message]] of MALFORMED.entries()) {
    test.skipIf(!need(run, "needs root"))(name, () => {
      const file = join(dir, `bad-${i}`);
      writeFileSync(file, bytes);
      const key = `victim-${i}`;
      root.ok(["-s", sn, "snapshot", "prepare", key, "base-c"]);
      // Over the parent's own names, so a write through to the parent would show.
      const r = root.stor(["-s", sn, "snapshot", "apply", key, file]);
      expect(r.code).toBe(2);
      expect(oneLineError(r.stderr)).toBe(true);
      expect(r.stderr).toMatch(message);
      expect(viewListing(root, sn, "base-c")).toEqual(parentBefore);
      root.ok(["-s", sn, "snapshot", "rm", key]);
    });
  }
});

describe("what holds no layer", () => {
  let root: TestRoot;
  const run = isRoot();
  beforeAll(() => {
    if (!run) return;
    root = new TestRoot("stor-layer-none-");
    root.ok(["-s", "native", "snapshot", "prepare", "k"]);
  });
  afterAll(() => root?.close());

  // /dev/zero would be read and hashed for ever: its first block ends the archive, and the rest is drained.
  for (const [what, path, why] of [
    ["a character device that never ends, named", "/dev/zero", "is a character device, not a file or a pipe"],
    ["a directory", "/tmp", "is a directory"],
  ] as const) {
    test.skipIf(!need(run, "needs root"))(`${what} is bad input (exit 2), at once`, () => {
      const r = root.stor(["-s", "native", "snapshot", "apply", "k", path], { timeout: 20_000 });
      expect([r.code, r.stderr]).toEqual([2, `stor: layer ${path}: ${why}\n`]);
    });
  }

  test.skipIf(!need(run, "needs root"))("a character device that never ends, as stdin, is bad input (exit 2), at once", () => {
    const r = sh(["sh", "-c", `exec ${STOR} --root ${root.path} --config ${root.config} -s native snapshot apply k < /dev/zero`], { timeout: 20_000 });
    expect([r.code, r.stderr]).toEqual([2, "stor: layer stdin: is a character device, not a file or a pipe\n"]);
  });

  test.skipIf(!need(run, "needs root"))("/dev/null is the empty layer, as ever", () => {
    expect(root.ok(["-s", "native", "snapshot", "apply", "k", "/dev/null"])).toBe("sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n");
  });
});
