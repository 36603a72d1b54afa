/**
 * Breakouts: layers crafted as attacks on container runtimes have been, applied on both
 * snapshotters. Whether stor refuses such a layer or confines it, nothing outside the snapshot
 * may be created, changed or deleted: canary files beside the stor root and in /tmp stay as
 * they were, nothing lands outside the snapshot's tree, and the committed parent is untouched.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { lstatSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { TestRoot, isRoot, must, need } from "./helpers.ts";
import { SNAPSHOTTERS, committedLayer, oneLineError, tar, viewListing, writableTree, type TarEntry } from "./layer-helpers.ts";

const TOKEN = `evil-${process.pid}`;
const UP = "../".repeat(24);

/**
 * The attacks, each a layer built from `canary` (an absolute directory outside the root). A
 * refused one fails as invalid (exit 2); a confined one succeeds with its files inside the
 * snapshot, where the names resolve when the snapshot is the root; the rest succeed harmlessly.
 * Every escape aims at the canary and nowhere else, so that a broken build under test can only
 * damage the canary, never the machine (an opaque marker through a link to `/` would empty `/`).
 */
const ATTACKS: { name: string; outcome?: "refused" | "confined"; entries: (canary: string) => TarEntry[] }[] = [
  { name: "`..` out of the snapshot", outcome: "refused", entries: (c) => [{ name: `${UP}${c.slice(1)}/${TOKEN}`, data: "x" }] },
  { name: "`..` one level up, into the snapshot's own directory", outcome: "refused", entries: () => [{ name: `../${TOKEN}`, data: "x" }] },
  { name: "absolute path", outcome: "confined", entries: (c) => [{ name: `${c}/${TOKEN}`, data: "x" }] },
  {
    name: "absolute symlink out, then a file through it", outcome: "confined",
    entries: (c) => [{ name: "link", type: "2", linkname: c }, { name: `link/${TOKEN}`, data: "x" }],
  },
  {
    name: "relative symlink out, then a file through it", outcome: "confined",
    entries: (c) => [{ name: "rel", type: "2", linkname: `${UP}${c.slice(1)}` }, { name: `rel/${TOKEN}`, data: "x" }],
  },
  {
    name: "symlink out, then a directory and a file through it", outcome: "confined",
    entries: (c) => [{ name: "dlink", type: "2", linkname: c }, { name: `dlink/${TOKEN}-dir/`, type: "5" }, { name: `dlink/${TOKEN}-dir/f`, data: "x" }],
  },
  {
    name: "symlink chain out", outcome: "confined",
    entries: (c) => [
      { name: "d1/", type: "5" },
      { name: "d2/", type: "5" },
      { name: "d1/l1", type: "2", linkname: "../d2/l2" },
      { name: "d2/l2", type: "2", linkname: `..${UP}${c.slice(1)}` },
      { name: `d1/l1/${TOKEN}`, data: "x" },
      { name: "a", type: "2", linkname: "b" },
      { name: "b", type: "2", linkname: "c" },
      { name: "c", type: "2", linkname: c },
      { name: `a/${TOKEN}-2`, data: "x" },
    ],
  },
  {
    name: "symlink onto a file outside, then the file written",
    entries: (c) => [{ name: "sym", type: "2", linkname: `${c}/secret` }, { name: "sym", data: "pwned" }],
  },
  { name: "hardlink to a file outside (absolute)", outcome: "refused", entries: (c) => [{ name: "hl", type: "1", linkname: `${c}/secret` }, { name: "hl", data: "pwned" }] },
  { name: "hardlink to a file outside (`..`)", outcome: "refused", entries: (c) => [{ name: "hl", type: "1", linkname: `${UP}${c.slice(1)}/secret` }] },
  {
    name: "hardlink through an escaping symlink",
    outcome: "refused",
    entries: (c) => [{ name: "esc", type: "2", linkname: "/" }, { name: "hl", type: "1", linkname: `esc${c}/secret` }, { name: "hl", data: "pwned" }],
  },
  {
    name: "hardlink through a relative escaping symlink",
    outcome: "refused",
    entries: (c) => [{ name: "esc", type: "2", linkname: UP }, { name: "hl", type: "1", linkname: `esc${c}/secret` }],
  },
  { name: "whiteout with `..`", outcome: "refused", entries: (c) => [{ name: `${UP}${c.slice(1)}/.wh.secret` }] },
  { name: "whiteout of `..`", outcome: "refused", entries: () => [{ name: "etc/.wh..." }] },
  {
    name: "whiteout through a symlink out",
    entries: (c) => [{ name: "wl", type: "2", linkname: c }, { name: "wl/.wh.secret" }],
  },
  {
    name: "opaque marker through a symlink out",
    entries: (c) => [{ name: "ol", type: "2", linkname: c }, { name: "ol/.wh..wh..opq" }],
  },
  {
    name: "opaque marker through a relative symlink out",
    entries: (c) => [{ name: "ul", type: "2", linkname: `${UP}${c.slice(1)}` }, { name: "ul/.wh..wh..opq" }],
  },
];

/** Everything about a directory a breakout could change: names, contents, link counts. */
function state(dir: string): string[] {
  return readdirSync(dir)
    .sort()
    .map((n) => {
      const st = lstatSync(join(dir, n));
      return `${n} ${st.mode} ${st.nlink} ${st.isFile() ? readFileSync(join(dir, n), "utf8") : ""}`;
    });
}

describe.each(SNAPSHOTTERS)("breakouts on %s", (sn) => {
  let root: TestRoot;
  let canary: string;
  let layers: string;
  let canaryBefore: string[];
  let parentBefore: string[];
  const run = isRoot();
  beforeAll(() => {
    if (!run) return;
    root = TestRoot.for(sn, "stor-layer-sec-");
    canary = root.dir("canary");
    layers = root.dir("layers");
    writeFileSync(join(canary, "secret"), "canary");
    writeFileSync(join(canary, "other"), "canary 2");
    canaryBefore = state(canary);
    committedLayer(root, sn, "base-c", join(layers, "base.tar"), tar([{ name: "etc/", type: "5", mode: 0o755 }, { name: "etc/passwd", data: "root:x:0:0" }]));
    parentBefore = viewListing(root, sn, "base-c");
  });
  afterAll(() => root?.close());

  // A bind someone made inside the snapshot (an operator, a runtime's leftover) is not its
  // content: containerd diffs through a mount of its own, where it is not; the directory under it is.
  test.skipIf(!need(run, "needs root"))("a mount inside the snapshot is no part of its changes or its layer", () => {
    root.ok(["-s", sn, "snapshot", "prepare", "mounted", "base-c"]);
    const tree = writableTree(root, sn, "mounted");
    writeFileSync(join(tree, "own"), "own");
    mkdirSync(join(tree, "mnt"));
    writeFileSync(join(tree, "mnt", "beneath"), "under the mount");
    must(`mount --bind ${canary} ${join(tree, "mnt")}`);
    try {
      expect(root.ok(["-s", sn, "snapshot", "changes", "mounted"])).toBe("A /mnt\nA /mnt/beneath\nA /own\n");
      const file = join(layers, "mounted.tar");
      root.ok(["-s", sn, "snapshot", "diff", "-o", file, "mounted"]);
      expect(must(`tar -xOf ${file} mnt/beneath`)).toBe("under the mount");
      expect(must(`tar -tf ${file}`).split("\n").filter(Boolean).sort()).toEqual(["mnt/", "mnt/beneath", "own"]);
    } finally {
      must(`umount ${join(tree, "mnt")}`);
    }
  });

  test.skipIf(!need(run, "needs root"))("no layer is applied through a mount inside the snapshot (exit 5): nothing is written there", () => {
    root.ok(["-s", sn, "snapshot", "prepare", "mounted-apply", "base-c"]);
    const tree = writableTree(root, sn, "mounted-apply");
    mkdirSync(join(tree, "mnt"));
    must(`mount --bind ${canary} ${join(tree, "mnt")}`);
    try {
      const layer = join(layers, "through-mount.tar");
      writeFileSync(layer, tar([{ name: "mnt/", type: "5", mode: 0o777, uid: 1234, gid: 1234 }, { name: "mnt/planted", data: "planted", mode: 0o4755 }]));
      const r = root.stor(["-s", sn, "snapshot", "apply", "mounted-apply", layer]);
      expect(r.code).toBe(5);
      expect(oneLineError(r.stderr)).toBe(true);
      expect(r.stderr).toContain(`has ${join(tree, "mnt")} mounted inside it: no layer is applied through a mount`);
      expect(state(canary)).toEqual(canaryBefore);
    } finally {
      must(`umount ${join(tree, "mnt")}`);
    }
    expect(readdirSync(join(tree, "mnt"))).toEqual([]);
  });

  for (const [i, attack] of ATTACKS.entries()) {
    test.skipIf(!need(run, "needs root"))(attack.name, () => {
      const layer = join(layers, `attack-${i}.tar`);
      writeFileSync(layer, tar(attack.entries(canary)));
      const key = `victim-${i}`;
      root.ok(["-s", sn, "snapshot", "prepare", key, "base-c"]);
      const r = root.stor(["-s", sn, "snapshot", "apply", key, layer]);
      if (attack.outcome === "refused") {
        expect(r.code).toBe(2);
        expect(oneLineError(r.stderr)).toBe(true);
      } else {
        expect(r.stderr).toBe("");
        expect(r.code).toBe(0);
      }
      expect(state(canary)).toEqual(canaryBefore);
      // Whatever was created may only be inside a snapshot's tree (overlay: its fs directory; btrfs: its subvolume's).
      const inside = new RegExp(`/snapshots/${sn}/snapshots/\\d+/${{ native: "", overlay: "fs/", btrfs: "sv/fs/" }[sn]}tmp/`);
      const found = must(`find ${root.path} ${canary} -name '${TOKEN}*'`).trim().split("\n").filter(Boolean);
      for (const f of found) expect(f).toMatch(inside);
      if (attack.outcome === "confined") expect(found.length).toBeGreaterThan(0);
      expect(viewListing(root, sn, "base-c")).toEqual(parentBefore);
      root.ok(["-s", sn, "snapshot", "rm", key]);
    });
  }
});
