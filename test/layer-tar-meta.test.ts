/**
 * Hostile metadata entries through the binary, on every snapshotter: a layer whose `x` entries
 * would, merged, name another file unpacks as containerd (Go's archive/tar) unpacks it, and a
 * PAX sparse 1.0 map that never ends is refused at the end of its entry (it once took a minute of
 * CPU for 16 KB of gzip). test/unit/tarMeta.test.ts holds the reader's own cases.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { paxRecord } from "../src/layer/tarFormat.ts";
import { TestRoot, isRoot, need } from "./helpers.ts";
import { SNAPSHOTTERS, committedLayer, oneLineError, tar, viewListing } from "./layer-helpers.ts";

/** `x{path=evil}`, `x{mtime=1234}`, then file `good`: Go keeps only the last `x` entry. */
const TWO_X = tar([
  { name: "PaxHeaders/1", type: "x", data: paxRecord("path", "evil") },
  { name: "PaxHeaders/2", type: "x", data: paxRecord("mtime", "1234") },
  { name: "good", data: "hello" },
]);

/** A sparse 1.0 entry of one block whose map line runs on for 16 MB. */
const RUNAWAY_MAP = gzipSync(
  Buffer.concat([
    tar([{ name: "PaxHeaders/x", type: "x", data: Buffer.concat([paxRecord("GNU.sparse.major", "1"), paxRecord("GNU.sparse.minor", "0"), paxRecord("GNU.sparse.name", "victim"), paxRecord("GNU.sparse.realsize", "10")]) }]).subarray(0, 1024),
    tar([{ name: "GNUSparseFile.0/victim", data: "1".repeat(512) }]).subarray(0, 1024),
    Buffer.alloc(32000 * 512, "1"),
    Buffer.alloc(1024),
  ]),
);

describe.each(SNAPSHOTTERS)("metadata entries on %s", (sn) => {
  let root: TestRoot;
  let dir: string;
  const run = isRoot();
  beforeAll(() => {
    if (!run) return;
    root = TestRoot.for(sn, "stor-layer-meta-");
    dir = root.dir("layers");
  });
  afterAll(() => root?.close());

  test.skipIf(!need(run, "needs root"))("consecutive x entries: only the last applies, so the file is the entry's own", () => {
    committedLayer(root, sn, "two-x", join(dir, "two-x.tar"), TWO_X);
    expect(viewListing(root, sn, "two-x").map((line) => line.split(" ")[0])).toEqual(["good"]);
  });

  test.skipIf(!need(run, "needs root"))("a sparse 1.0 map running past its entry: exit 2, one line", () => {
    writeFileSync(join(dir, "runaway.tar.gz"), RUNAWAY_MAP);
    root.ok(["-s", sn, "snapshot", "prepare", "runaway"]);
    const r = root.stor(["-s", sn, "snapshot", "apply", "runaway", join(dir, "runaway.tar.gz")]);
    expect(r.code).toBe(2);
    expect(oneLineError(r.stderr)).toBe(true);
    expect(r.stderr).toContain('entry "victim": sparse map number out of range');
  });
});
