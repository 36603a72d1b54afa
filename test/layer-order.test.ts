/**
 * An entry lands where the layer's earlier entries have left its path leading, whatever came just
 * before it: an apply that keeps directories open for the entries to come must let go of one a
 * later entry moves, hides or changes. Each layer below goes through a directory, changes what
 * that path is (or what the directory passes on to new files), then goes through it again.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { TestRoot, isRoot, need } from "./helpers.ts";
import { SNAPSHOTTERS, committedLayer, oneLineError, tar, viewListing } from "./layer-helpers.ts";

/** The parent: a directory and a symlink to it. */
const BASE = tar([
  { name: "b/", type: "5", mode: 0o755 },
  { name: "a", type: "2", linkname: "b" },
]);

describe.each(SNAPSHOTTERS)("on %s, a path an earlier entry went through", (sn) => {
  let root: TestRoot;
  const run = isRoot();
  beforeAll(() => {
    if (!run) return;
    root = TestRoot.for(sn, "stor-layer-order-");
    committedLayer(root, sn, "base", join(root.dir("layers"), "base.tar"), BASE);
  });
  afterAll(() => root?.close());

  /** Applies `layer` to a fresh child of the parent (or of nothing); returns the apply's result. */
  const apply = (key: string, layer: Buffer, parent: string | undefined = "base") => {
    root.ok(["-s", sn, "snapshot", "prepare", key, ...(parent ? [parent] : [])]);
    const file = join(root.dir("layers"), `${key}.tar`);
    writeFileSync(file, layer);
    return root.stor(["-s", sn, "snapshot", "apply", key, file]);
  };
  /** Path, type and mode, owner of each entry of active `key` as mounted, once committed. */
  const shape = (key: string) => {
    root.ok(["-s", sn, "snapshot", "commit", `${key}-c`, key]);
    return viewListing(root, sn, `${key}-c`).map((l) => l.split(" ").slice(0, 3).join(" "));
  };

  test.skipIf(!need(run, "needs root"))("leads where a symlink the layer put there since points", () => {
    const r = apply("sym", tar([
      { name: "a/f1", data: "1" },
      { name: "a", type: "2", linkname: "c" },
      { name: "a/f2", data: "2" },
    ]));
    expect(r.code).toBe(0);
    expect(shape("sym")).toEqual(["a 120777 0:0", "b 40755 0:0", "b/f1 100644 0:0", "c 40755 0:0", "c/f2 100644 0:0"]);
  });

  test.skipIf(!need(run, "needs root"))("leads nowhere once a file has the name: the layer is refused", () => {
    const r = apply("file", tar([
      { name: "a/f1", data: "1" },
      { name: "a", data: "a file" },
      { name: "a/f2", data: "2" },
    ]));
    expect(r.code).toBe(2);
    expect(oneLineError(r.stderr)).toBe(true);
    expect(r.stderr).toContain('entry "a/f2"');
    expect(r.stderr).toContain("not a directory");
  });

  test.skipIf(!need(run, "needs root"))("leads into the directory the layer made there, at any depth below it", () => {
    const r = apply("deep", tar([
      { name: "a/x/f1", data: "1" },
      { name: "a/", type: "5", mode: 0o755 },
      { name: "a/x/f2", data: "2" },
    ]));
    expect(r.code).toBe(0);
    expect(shape("deep")).toEqual(["a 40755 0:0", "a/x 40755 0:0", "a/x/f2 100644 0:0", "b 40755 0:0", "b/x 40755 0:0", "b/x/f1 100644 0:0"]);
  });

  test.skipIf(!need(run, "needs root"))("gives a new file what its directory passes on now, under any of its names", () => {
    // b becomes setgid with group 1000 after a/f1: a/f2 is made in it through the symlink, and must
    // still get the group its entry names, not the one b passes on.
    const r = apply("setgid", tar([
      { name: "b/", type: "5", mode: 0o755 },
      { name: "a", type: "2", linkname: "b" },
      { name: "a/f1", data: "1" },
      { name: "b/", type: "5", mode: 0o2775, gid: 1000 },
      { name: "a/f2", data: "2" },
    ]), undefined);
    expect(r.code).toBe(0);
    expect(shape("setgid")).toEqual(["a 120777 0:0", "b 42775 0:1000", "b/f1 100644 0:0", "b/f2 100644 0:0"]);
  });
});
