/**
 * Hostile layers of issue 12, on both snapshotters: numbers no field may hold, names the OCI
 * format reserves, whiteouts in every order, overlayfs's own xattrs, and failures part-way. A
 * refused layer fails at once with one line naming the entry and exit 2, and leaves the snapshot
 * exactly as it was; an accepted one diffs back to the same tree.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { applyLayer } from "../src/layer/apply.ts";
import { getXattr, setXattr } from "../src/sys/file.ts";
import { TestRoot, isRoot, must, need } from "./helpers.ts";
import { SNAPSHOTTERS, committedLayer, oneLineError, tar, viewListing } from "./layer-helpers.ts";
import { treeListing } from "./fuzz/harness.ts";
import { encode, type Entry } from "./fuzz/tarModel.ts";

/** A field of `len` bytes holding `v` in GNU base-256 (two's complement after the marker bit). */
function base256(v: bigint, len: number): Uint8Array {
  const out = new Uint8Array(len);
  let x = BigInt.asUintN(len * 8, v);
  for (let i = len - 1; i >= 0; i--, x >>= 8n) out[i] = Number(x & 0xffn);
  out[0] = out[0]! | 0x80;
  return out;
}
const field = (text: string) => new TextEncoder().encode(text);
const file = (name: string, more: Partial<Entry> = {}): Entry => ({ name, type: "0", data: field("data"), ...more });

/** Each layer has a bad number in its second entry, `victim`; the first, `first`, would apply. */
const BAD_NUMBERS: [string, Entry][] = [
  ["base-256 size of -512 (once a hang)", file("victim", { data: new Uint8Array(0), raw: [[124, base256(-512n, 12)]] })],
  ["base-256 size beyond 2^53", file("victim", { data: new Uint8Array(0), raw: [[124, base256(1n << 60n, 12)]] })],
  ["negative mode", file("victim", { raw: [[100, base256(-1n, 8)]] })],
  ["uid of 2^32 - 1 (chown's 'no change')", file("victim", { raw: [[108, base256(0xffffffffn, 8)]] })],
  ["negative gid", file("victim", { raw: [[116, base256(-5n, 8)]] })],
  ["mtime beyond 2^53 seconds", file("victim", { raw: [[136, base256(-(1n << 60n), 12)]] })],
  ["device major beyond 12 bits", { name: "victim", type: "3", devmajor: 4096 }],
  ["device minor beyond 20 bits", { name: "victim", type: "4", raw: [[337, base256(1n << 20n, 8)]] }],
  ["PAX size -1", file("victim", { pax: [["size", "-1"]] })],
  ["PAX uid 4294967295", file("victim", { pax: [["uid", "4294967295"]] })],
  ["PAX gid beyond 2^53", file("victim", { pax: [["gid", "99999999999999999999"]] })],
  ["PAX mtime of 30 digits", file("victim", { pax: [["mtime", "1".repeat(30)]] })],
  ["old GNU sparse offset -1", { name: "victim", type: "0", data: field("ab"), sparse: { kind: "gnu", realSize: 10, map: [[0, 2]] }, raw: [[386, base256(-1n, 12)]] }],
  ["PAX sparse segment past the end of the file", { name: "victim", type: "0", data: field("ab"), sparse: { kind: "1.0", realSize: 10, map: [[9, 2]] } }],
  ["PAX sparse size -1", { name: "victim", type: "0", data: field("ab"), sparse: { kind: "0.1", realSize: -1, map: [[0, 2]] } }],
];

/** A layer the snapshot gets first: a refusal must keep what it made, times and all. */
const OWN = tar([
  { name: "etc/", type: "5", mode: 0o755 },
  { name: "etc/passwd", data: "root:x:0:0" },
  { name: "etc/group", data: "root:x:0:" },
  { name: "p/", type: "5", mode: 0o750 },
  { name: "p/q/", type: "5", mode: 0o755 },
  { name: "p/q/lower", data: "lower" },
  { name: "b/", type: "5", mode: 0o755 },
  { name: "b/old", data: "old" },
]);

describe.each(SNAPSHOTTERS)("hostile layers on %s", (sn) => {
  let root: TestRoot;
  let layers: string;
  let n = 0;
  const run = isRoot();
  beforeAll(() => {
    if (!run) return;
    root = TestRoot.for(sn, "stor-layer-hostile-");
    layers = root.dir("layers");
    committedLayer(root, sn, "base", join(layers, "own.tar"), OWN);
  });
  afterAll(() => root?.close());

  /** Applies `layer` to a fresh active snapshot on `base` after its own changes; returns the result and both listings. */
  const applyFresh = (layer: Uint8Array) => {
    const key = `k${n++}`;
    root.ok(["-s", sn, "snapshot", "prepare", key, "base"]);
    writeFileSync(join(layers, "own2.tar"), tar([{ name: "mine/", type: "5", mode: 0o700 }, { name: "mine/f", data: "mine" }, { name: "etc/.wh.group" }, { name: "b/.wh..wh..opq" }]));
    root.ok(["-s", sn, "snapshot", "apply", key, join(layers, "own2.tar")]);
    const before = activeTree(key);
    const path = join(layers, `${key}.tar`);
    writeFileSync(path, layer);
    const t0 = performance.now();
    const r = root.stor(["-s", sn, "snapshot", "apply", key, path]);
    return { key, r, ms: performance.now() - t0, before, after: activeTree(key) };
  };

  /** Everything of active `key`'s own tree, exactly (mtimes in ns, all xattrs), and no stray trash. */
  const activeTree = (key: string) => {
    const dirs = join(root.path, "snapshots", sn, "snapshots");
    const stray = readdirSync(dirs).filter((d) => !/^\d+$/.test(d));
    expect(stray).toEqual([]);
    // With no parent of its own changes yet, or on native, the mount is a bind of the tree itself.
    const line = root.ok(["-s", sn, "snapshot", "mounts", "/x", key]);
    const m = /upperdir=([^,\s]+)/.exec(line) ?? /-t bind (\S+) /.exec(line);
    return treeListing(m![1]!, true);
  };

  for (const [name, victim] of BAD_NUMBERS) {
    test.skipIf(!need(run, "needs root"))(`${name}: refused at once, naming the entry, the snapshot as it was`, () => {
      const { r, ms, before, after } = applyFresh(encode([file("first", { data: field("would apply") }), victim, file("last")]));
      expect(ms).toBeLessThan(5000);
      expect(r.code).toBe(2);
      expect(oneLineError(r.stderr)).toBe(true);
      expect(r.stderr).toContain('entry "victim"');
      expect(after).toEqual(before);
    });
  }

  test.skipIf(!need(run, "needs root"))("a layer that deletes and replaces, then ends short, leaves the snapshot exactly as it was", () => {
    const layer = encode([
      { name: "etc/.wh.passwd", type: "0" },
      { name: "p/.wh..wh..opq", type: "0" },
      { name: "mine", type: "0", data: field("a file where a directory was") },
      { name: "b/", type: "5", mode: 0o700, pax: [["SCHILY.xattr.user.new", "1"]] },
      file("etc/new"),
      file("cut", { data: new Uint8Array(5000) }),
    ]);
    const { r, before, after } = applyFresh(layer.subarray(0, layer.length - 1024 - 3000));
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('truncated data of "cut"');
    expect(after).toEqual(before);
  });

  test.skipIf(!need(run, "needs root"))("a directory named .wh.etc is refused, and /etc survives", () => {
    const { r, before, after } = applyFresh(tar([{ name: ".wh.etc/", type: "5" }, { name: ".wh.etc/somefile", data: "x" }]));
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('entry ".wh.etc/somefile"');
    expect(after).toEqual(before);
  });

  test.skipIf(!need(run, "needs root"))("a .wh. name made through the mount is no change of the layer: changes and diff leave it out", () => {
    const key = `wh${n++}`;
    root.ok(["-s", sn, "snapshot", "prepare", key, "base"]);
    const mnt = root.dir(`mnt-${key}`);
    root.ok(["-s", sn, "mount", key, mnt]);
    try {
      mkdirSync(join(mnt, ".wh.etc"));
      writeFileSync(join(mnt, ".wh.etc", "somefile"), "x");
      writeFileSync(join(mnt, "real"), "kept");
    } finally {
      must(`umount ${mnt}`);
    }
    expect(root.ok(["-s", sn, "snapshot", "changes", key]).trim().split("\n")).toEqual(["A /real"]);
    const diff = join(layers, `${key}-diff.tar`);
    root.ok(["-s", sn, "snapshot", "diff", key, "-o", diff]);
    expect(must(`tar tf ${diff}`).trim().split("\n")).toEqual(["real"]);
    root.ok(["-s", sn, "snapshot", "prepare", `${key}-b`, "base"]);
    root.ok(["-s", sn, "snapshot", "apply", `${key}-b`, diff]);
    root.ok(["-s", sn, "snapshot", "commit", `${key}-b-c`, `${key}-b`]);
    const shape = viewListing(root, sn, `${key}-b-c`).map((l) => l.split(" ")[0]);
    expect(shape).toContain("etc/passwd");
    expect(shape).toContain("real");
  });

  for (const [order, entries] of [
    ["after", [{ name: "p/", type: "5", mode: 0o750 }, { name: "p/q/", type: "5", mode: 0o755 }, { name: "p/q/upper", data: "u" }, { name: "p/.wh.q" }]],
    ["before", [{ name: "p/.wh.q" }, { name: "p/", type: "5", mode: 0o750 }, { name: "p/q/", type: "5", mode: 0o755 }, { name: "p/q/upper", data: "u" }]],
    ["between", [{ name: "p/q/", type: "5", mode: 0o755 }, { name: "p/.wh.q" }, { name: "p/q/upper", data: "u" }]],
    ["opaque, after", [{ name: "p/q/upper", data: "u" }, { name: "p/q/.wh..wh..opq" }]],
    ["opaque of the parent, after", [{ name: "p/q/upper", data: "u" }, { name: "p/.wh..wh..opq" }]],
  ] as const) {
    test.skipIf(!need(run, "needs root"))(`a whiteout ${order} its own layer's entries removes only the lower layer's`, () => {
      const key = `w${n++}`;
      root.ok(["-s", sn, "snapshot", "prepare", key, "base"]);
      writeFileSync(join(layers, `${key}.tar`), tar(entries as never));
      root.ok(["-s", sn, "snapshot", "apply", key, join(layers, `${key}.tar`)]);
      root.ok(["-s", sn, "snapshot", "commit", `${key}-c`, key]);
      const shape = viewListing(root, sn, `${key}-c`).map((l) => l.split(" ")[0]!).filter((p) => p.startsWith("p/"));
      expect(shape).toEqual(["p/q", "p/q/upper"]);
      // And the diff says the same.
      const diff = join(layers, `${key}-diff.tar`);
      root.ok(["-s", sn, "snapshot", "diff", `${key}-c`, "-o", diff]);
      root.ok(["-s", sn, "snapshot", "prepare", `${key}-b`, "base"]);
      root.ok(["-s", sn, "snapshot", "apply", `${key}-b`, diff]);
      root.ok(["-s", sn, "snapshot", "commit", `${key}-b-c`, `${key}-b`]);
      expect(viewListing(root, sn, `${key}-b-c`)).toEqual(viewListing(root, sn, `${key}-c`));
    });
  }

  test.skipIf(!need(run, "needs root"))("overlayfs's xattrs, user.overlay.* as trusted.overlay.*, are dropped on apply and on diff", () => {
    const key = `x${n++}`;
    root.ok(["-s", sn, "snapshot", "prepare", key, "base"]);
    const layer = encode([
      { name: "o/", type: "5", mode: 0o755, pax: [["SCHILY.xattr.user.overlay.opaque", "y"], ["SCHILY.xattr.user.overlay.redirect", "/etc"], ["SCHILY.xattr.trusted.overlay.opaque", "y"], ["SCHILY.xattr.user.kept", "1"]] },
    ]);
    writeFileSync(join(layers, `${key}.tar`), layer);
    root.ok(["-s", sn, "snapshot", "apply", key, join(layers, `${key}.tar`)]);
    const mnt = root.dir(`mnt-${key}`);
    root.ok(["-s", sn, "mount", key, mnt]);
    try {
      expect(getXattr(join(mnt, "o"), "user.kept")?.toString()).toBe("1");
      expect(getXattr(join(mnt, "o"), "user.overlay.opaque")).toBeUndefined();
      expect(getXattr(join(mnt, "o"), "user.overlay.redirect")).toBeUndefined();
      // Set through the mount, as a process in the container could.
      setXattr(join(mnt, "o"), "user.overlay.origin", Buffer.from("x"));
    } finally {
      must(`umount ${mnt}`);
    }
    const diff = join(layers, `${key}-diff.tar`);
    root.ok(["-s", sn, "snapshot", "diff", key, "-o", diff]);
    const records = must(`tar --xattrs --xattrs-include='*' -tvvf ${diff} 2>&1; strings ${diff} | grep -c 'overlay' || true`);
    expect(records).not.toContain("user.overlay");
    expect(records).toContain("user.kept");
  });
});

test.skipIf(!isRoot())("apply reports progress: entries and bytes, the last report the whole layer", async () => {
  const dir = mkdtempSync("/tmp/stor-progress-");
  try {
    const entries = Array.from({ length: 200 }, (_, i) => ({ name: `f${i}`, data: "x".repeat(i) }));
    const layer = tar(entries);
    const reports: { bytes: number; entries: number }[] = [];
    async function* slow() {
      for (let off = 0; off < layer.length; off += 4096) {
        await Bun.sleep(2);
        yield layer.subarray(off, off + 4096);
      }
    }
    await applyLayer(dir, undefined, slow(), (p) => reports.push({ ...p }));
    expect(reports.length).toBeGreaterThan(1);
    expect(reports.at(-1)).toEqual({ bytes: layer.length, entries: 200 });
    for (let i = 1; i < reports.length; i++) expect(reports[i]!.entries).toBeGreaterThanOrEqual(reports[i - 1]!.entries);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
