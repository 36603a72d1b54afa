/**
 * Whiteouts and opaque directories of OCI layers, applied on both snapshotters: the mounted
 * result hides what they delete, spares what the same layer brought, and on overlay the upper
 * directory holds them as overlayfs expects (0/0 character devices, the opaque xattr).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { TestRoot, isRoot, must, need } from "./helpers.ts";
import { DIFF_STYLE, SNAPSHOTTERS, committedLayer, tar, viewListing } from "./layer-helpers.ts";

const LOWER = tar([
  { name: "a/", type: "5", mode: 0o750, uid: 12, gid: 34 },
  { name: "a/keep", data: "k" },
  { name: "a/gone", data: "g" },
  { name: "a/sub/", type: "5", mode: 0o755 },
  { name: "a/sub/x", data: "x" },
  { name: "b/", type: "5", mode: 0o755 },
  { name: "b/old1", data: "1" },
  { name: "b/old2", data: "2" },
  { name: "b2/", type: "5", mode: 0o755 },
  { name: "b2/old", data: "o" },
  { name: "c/", type: "5", mode: 0o755 },
  { name: "c/file", data: "c" },
  { name: "e/", type: "5", mode: 0o755 },
]);

/** Whiteouts in every position; entries in tar order, which matters. */
const UPPER = tar([
  { name: "a/.wh.gone" },
  { name: "a/.wh.sub" },
  { name: "b/", type: "5", mode: 0o755 },
  { name: "b/.wh..wh..opq" },
  { name: "b/new", data: "n" },
  // A marker after an entry of its own layer must spare it.
  { name: "b2/new2", data: "n2" },
  { name: "b2/.wh..wh..opq" },
  // So must a whiteout of a name the same layer added.
  { name: "e/made", data: "m" },
  { name: "e/.wh.made" },
  // A whiteout where nothing is: no trace.
  { name: "x/y/.wh.z" },
]);

const EXPECTED = [
  "a 40750 12:34",
  "a/keep 100644 0:0",
  "b 40755 0:0",
  "b/new 100644 0:0",
  "b2 40755 0:0",
  "b2/new2 100644 0:0",
  "c 40755 0:0",
  "c/file 100644 0:0",
  "e 40755 0:0",
  "e/made 100644 0:0",
];

describe.each(SNAPSHOTTERS)("whiteouts on %s", (sn) => {
  let root: TestRoot;
  const run = isRoot();
  beforeAll(() => {
    if (!run) return;
    root = TestRoot.for(sn, "stor-layer-wh-");
    const dir = root.dir("layers");
    writeFileSync(join(dir, "lower.tar"), LOWER);
    writeFileSync(join(dir, "upper.tar"), UPPER);
    root.ok(["-s", sn, "snapshot", "prepare", "l1"]);
    root.ok(["-s", sn, "snapshot", "apply", "l1", join(dir, "lower.tar")]);
    root.ok(["-s", sn, "snapshot", "commit", "l1-c", "l1"]);
    root.ok(["-s", sn, "snapshot", "prepare", "l2", "l1-c"]);
    root.ok(["-s", sn, "snapshot", "apply", "l2", join(dir, "upper.tar")]);
    root.ok(["-s", sn, "snapshot", "commit", "l2-c", "l2"]);
  });
  afterAll(() => root?.close());

  test.skipIf(!need(run, "needs root"))("the mounted tree hides deleted names and emptied directories", () => {
    const shape = viewListing(root, sn, "l2-c").map((l) => l.split(" ").slice(0, 3).join(" "));
    expect(shape).toEqual(EXPECTED);
  });

  test.skipIf(!need(run, "needs root"))("the snapshot's own diff carries the deletions on", () => {
    const changes = root.ok(["-s", sn, "snapshot", "changes", "l2-c"]).trim().split("\n");
    expect(changes).toContain("D /a/gone");
    expect(changes).toContain("D /a/sub");
    expect(changes).not.toContain("D /e/made");
    if (DIFF_STYLE[sn] === "tree") expect(changes).toEqual(expect.arrayContaining(["D /b/old1", "D /b/old2", "D /b2/old"]));
  });

  if (DIFF_STYLE[sn] === "upper") {
    test.skipIf(!need(run, "needs root"))("the upper directory holds overlayfs whiteouts and opaque markers", () => {
      const upper = must(`find ${root.path}/snapshots/overlay/snapshots -path '*/fs/e/made'`).trim().replace(/\/e\/made$/, "");
      expect(upper).toMatch(/\/fs$/);
      expect(must(`stat -c '%F %t:%T' ${upper}/a/gone ${upper}/a/sub`).trim().split("\n")).toEqual(["character special file 0:0", "character special file 0:0"]);
      for (const d of ["b", "b2"]) expect(must(`getfattr --only-values -n trusted.overlay.opaque ${upper}/${d}`)).toBe("y");
      // The parent made for the whiteouts took its metadata from the lower layer.
      expect(must(`stat -c '%a %u:%g' ${upper}/a`).trim()).toBe("750 12:34");
      expect(must(`ls -A ${upper}`).trim().split("\n")).toEqual(["a", "b", "b2", "e"]);
    });
  }
});

// What an opaque directory hides in a parent is hidden all the way down: a later layer that goes
// through it finds neither a symlink, a file nor a whiteout the older layers had there.
describe.each(SNAPSHOTTERS)("below an opaque directory of a parent on %s", (sn) => {
  const run = isRoot();
  test.skipIf(!need(run, "needs root"))("a later layer's entries land where the mount shows them", () => {
    const root = TestRoot.for(sn, "stor-layer-opq-");
    try {
      const dir = root.dir("layers");
      committedLayer(root, sn, "l1", join(dir, "l1.tar"), tar([
        { name: "a/", type: "5", mode: 0o755 },
        { name: "a/b", type: "2", linkname: "/x" },
        { name: "a/d", data: "old d" },
        { name: "a/e/", type: "5", mode: 0o755 },
        { name: "a/e/.wh.g" },
        { name: "x/", type: "5", mode: 0o755 },
      ]));
      root.ok(["-s", sn, "snapshot", "prepare", "l2-a", "l1"]);
      root.ok(["-s", sn, "snapshot", "apply", "l2-a", writeLayer(join(dir, "l2.tar"), tar([
        { name: "a/", type: "5", mode: 0o755 },
        { name: "a/.wh..wh..opq" },
        { name: "a/c", data: "c" },
      ]))]);
      root.ok(["-s", sn, "snapshot", "commit", "l2", "l2-a"]);
      root.ok(["-s", sn, "snapshot", "prepare", "l3-a", "l2"]);
      root.ok(["-s", sn, "snapshot", "apply", "l3-a", writeLayer(join(dir, "l3.tar"), tar([
        { name: "a/b/f", data: "f" },
        { name: "a/d/", type: "5", mode: 0o755 },
        { name: "a/e/g", data: "g" },
      ]))]);
      root.ok(["-s", sn, "snapshot", "commit", "l3", "l3-a"]);
      const shape = viewListing(root, sn, "l3").map((l) => l.split(" ").slice(0, 2).join(" "));
      expect(shape).toEqual(["a 40755", "a/b 40755", "a/b/f 100644", "a/c 100644", "a/d 40755", "a/e 40755", "a/e/g 100644", "x 40755"]);
    } finally {
      root.close();
    }
  });
});

/** Writes `layer` to `file` and returns `file`. */
function writeLayer(file: string, layer: Uint8Array): string {
  writeFileSync(file, layer);
  return file;
}
