/**
 * Hostile metadata entries through the binary, on every snapshotter: a layer whose `x` entries
 * would, merged, name another file unpacks as containerd (Go's archive/tar) unpacks it.
 * test/unit/tarMeta.test.ts holds the reader's own cases.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { paxRecord } from "../src/layer/tarFormat.ts";
import { TestRoot, isRoot, need } from "./helpers.ts";
import { SNAPSHOTTERS, committedLayer, tar, viewListing } from "./layer-helpers.ts";

/** `x{path=evil}`, `x{mtime=1234}`, then file `good`: Go keeps only the last `x` entry. */
const TWO_X = tar([
  { name: "PaxHeaders/1", type: "x", data: paxRecord("path", "evil") },
  { name: "PaxHeaders/2", type: "x", data: paxRecord("mtime", "1234") },
  { name: "good", data: "hello" },
]);

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

});
