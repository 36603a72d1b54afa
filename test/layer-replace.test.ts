/**
 * A name a layer's later entry removes or replaces, over a parent that has it: every snapshotter
 * must show the same tree once mounted. overlay only records the change (a whiteout, the opaque
 * xattr) and lets the mount merge it with the parents, so there each way of replacing a name must
 * hide what the parents had below it; native and btrfs change a copy, which is the reference.
 * What the layer brought itself is spared by its whiteouts whatever path they reach it by, and a
 * whiteout reached through a symlink, the layer's or a parent's, deletes where the symlink leads.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { TestRoot, isRoot, need } from "./helpers.ts";
import { SNAPSHOTTERS, committedLayer, tar, viewListing, type TarEntry } from "./layer-helpers.ts";

/** The parent of every layer below: files at the root, directories with old contents, a symlink to one. */
const BASE = tar([
  { name: "a", data: "a" },
  { name: "b/", type: "5", mode: 0o755 },
  { name: "b/old", data: "old" },
  { name: "real/", type: "5", mode: 0o755 },
  { name: "real/old", data: "old" },
  { name: "f", data: "f" },
  { name: "s", type: "2", linkname: "real" },
]);

const dir = (name: string): TarEntry => ({ name, type: "5", mode: 0o755 });
const file = (name: string, data = "new"): TarEntry => ({ name, data });
const symlink = (name: string, linkname: string): TarEntry => ({ name, type: "2", linkname });
const whiteout = (name: string): TarEntry => ({ name });

/** Each layer, and the mounted tree below the root after it: path and type (or `-> target`). */
const CASES: [string, TarEntry[], string[]][] = [
  ["an opaque marker reached through the layer's symlink spares what the layer wrote by the real name",
    [dir("real/"), file("real/mine"), symlink("l", "real"), whiteout("l/.wh..wh..opq")],
    ["a f", "b d", "b/old f", "f f", "l -> real", "real d", "real/mine f", "s -> real"]],
  ["an opaque marker spares what the layer wrote through its symlink",
    [symlink("l", "real"), file("l/mine"), whiteout("real/.wh..wh..opq")],
    ["a f", "b d", "b/old f", "f f", "l -> real", "real d", "real/mine f", "s -> real"]],
  ["a whiteout reached through the layer's symlink spares what the layer wrote by the real name",
    [file("real/mine"), symlink("l", "real"), whiteout("l/.wh.mine")],
    ["a f", "b d", "b/old f", "f f", "l -> real", "real d", "real/mine f", "real/old f", "s -> real"]],
  ["a whiteout reached through the layer's symlink deletes in the parent's directory",
    [symlink("l", "real"), whiteout("l/.wh.old")],
    ["a f", "b d", "b/old f", "f f", "l -> real", "real d", "s -> real"]],
  ["a whiteout reached through the parent's symlink deletes in its directory",
    [whiteout("s/.wh.old")],
    ["a f", "b d", "b/old f", "f f", "real d", "s -> real"]],
  ["an opaque marker reached through the parent's symlink empties its directory",
    [file("real/mine"), whiteout("s/.wh..wh..opq")],
    ["a f", "b d", "b/old f", "f f", "real d", "real/mine f", "s -> real"]],
  ["an opaque marker spells its directory in any way",
    [file("./real//mine"), whiteout("real/./.wh..wh..opq")],
    ["a f", "b d", "b/old f", "f f", "real d", "real/mine f", "s -> real"]],
  ["an opaque marker at the root hides all the parents have",
    [whiteout(".wh..wh..opq"), file("n")],
    ["n f"]],
  ["an opaque marker at the root hides what the parents have below a directory the layer wrote",
    [dir("b/"), file("b/new"), whiteout(".wh..wh..opq")],
    ["b d", "b/new f"]],
  ["names the layer writes again after an opaque marker at the root are new",
    [whiteout(".wh..wh..opq"), file("a", "again"), dir("real/"), file("b/new")],
    ["a f", "b d", "b/new f", "real d"]],
  ["a directory replacing the layer's file hides the parent's directory", [file("b"), dir("b/"), file("b/new")], ["a f", "b d", "b/new f", "f f", "real d", "real/old f", "s -> real"]],
  ["a directory replacing the layer's symlink hides the parent's directory", [symlink("b", "real"), dir("b/"), file("b/new")], ["a f", "b d", "b/new f", "f f", "real d", "real/old f", "s -> real"]],
  ["a file replacing the layer's directory hides the parent's", [dir("b/"), file("b/new"), file("b")], ["a f", "b f", "f f", "real d", "real/old f", "s -> real"]],
  ["a directory replacing the layer's file that replaced its directory is new", [dir("b/"), file("b/new"), file("b"), dir("b/"), file("b/n2")], ["a f", "b d", "b/n2 f", "f f", "real d", "real/old f", "s -> real"]],
  ["a hardlink replacing a directory hides it", [file("g"), { name: "b", type: "1", linkname: "g" }], ["a f", "b f", "f f", "g f", "real d", "real/old f", "s -> real"]],
  ["a directory made again after its whiteout is new", [whiteout(".wh.b"), dir("b/"), file("b/new")], ["a f", "b d", "b/new f", "f f", "real d", "real/old f", "s -> real"]],
  ["a directory an entry makes again after its whiteout is new", [whiteout(".wh.b"), file("b/new")], ["a f", "b d", "b/new f", "f f", "real d", "real/old f", "s -> real"]],
  ["a name written again after an opaque marker is new", [whiteout("b/.wh..wh..opq"), file("b/old", "again")], ["a f", "b d", "b/old f", "f f", "real d", "real/old f", "s -> real"]],
];

describe.each(SNAPSHOTTERS)("on %s, a later entry of the same layer", (sn) => {
  let root: TestRoot;
  const run = isRoot();
  beforeAll(() => {
    if (!run) return;
    root = TestRoot.for(sn, "stor-layer-replace-");
    committedLayer(root, sn, "base", join(root.dir("layers"), "base.tar"), BASE);
  });
  afterAll(() => root?.close());

  CASES.forEach(([what, entries, tree], i) => {
    test.skipIf(!need(run, "needs root"))(what, () => {
      const key = `l${i}`;
      const layer = join(root.dir("layers"), `${key}.tar`);
      writeFileSync(layer, tar(entries));
      root.ok(["-s", sn, "snapshot", "prepare", key, "base"]);
      root.ok(["-s", sn, "snapshot", "apply", key, layer]);
      root.ok(["-s", sn, "snapshot", "commit", `${key}-c`, key]);
      const shape = viewListing(root, sn, `${key}-c`).map((l) => {
        const [path, mode] = l.split(" ");
        const target = / -> (\S+)/.exec(l)?.[1];
        return `${path} ${target ? `-> ${target}` : mode!.startsWith("40") ? "d" : "f"}`;
      });
      expect(shape).toEqual(tree);
    });
  });
});
