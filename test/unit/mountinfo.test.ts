/**
 * The mountinfo parser's escapes (src/sys/mountinfo.ts), with their fast paths for text that has
 * no backslash, held to the plain RegExp definitions on every short string over an alphabet of
 * the characters that matter.
 */
import { expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { mayMention, mountsUsing, overlayLayers, parseMountInfo, unescapeOctal } from "../../src/sys/mountinfo.ts";
import { Rng } from "../fuzz/tarModel.ts";

/**
 * The definitions as RegExps alone, the reference. With the `s` flag: a layer's path may hold any
 * character, a carriage return or U+2028 too (overlayfs does not escape them), and `\x` is `x`
 * whatever x is. Without it, as first written, such a layer went unseen, and a tree under a
 * mounted overlay could be taken for unused. As overlayfs reads its options: the kernel's octal
 * escapes are undone first (a backslash the user gave is written `\134`), a lowerdir list is cut
 * at colons after an even number of backslashes, and only lowerdir=, upperdir= and workdir= read
 * backslash escapes (a lone one at the end is dropped); lowerdir+= and datadir+= are as given.
 */
const reference = {
  unescapeOctal: (s: string) => s.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8))),
  overlayLayers(superOptions: string): string[] {
    const out: string[] = [];
    for (const option of superOptions.split(",")) {
      const m = /^(lowerdir\+?|upperdir|workdir|datadir\+)=(.*)$/s.exec(option);
      if (!m) continue;
      const value = reference.unescapeOctal(m[2]!);
      if (m[1] === "lowerdir+" || m[1] === "datadir+") out.push(value);
      else {
        const values = m[1] === "lowerdir" ? value.split(/(?<=(?:^|[^\\])(?:\\\\)*):/) : [value];
        out.push(...values.map((v) => v.replace(/\\([\s\S]?)/g, "$1")));
      }
    }
    // An empty entry is no layer: `lowerdir=A::B` marks B as data-only.
    return out.filter((layer) => layer !== "");
  },
};

/** Every string of up to `n` characters from `alphabet`. */
function strings(alphabet: readonly string[], n: number): string[] {
  let level = [""];
  const all = [""];
  for (let i = 0; i < n; i++) {
    level = level.flatMap((s) => alphabet.map((c) => s + c));
    all.push(...level);
  }
  return all;
}

test("unescapeOctal undoes \\ooo as the RegExp did, on 100,000+ strings", () => {
  const all = strings(["\\", "0", "1", "4", "7", "8", "a"], 6);
  expect(all.length).toBeGreaterThan(100_000);
  for (const s of all) if (unescapeOctal(s) !== reference.unescapeOctal(s)) expect([s, unescapeOctal(s)]).toEqual([s, reference.unescapeOctal(s)]);
  expect(unescapeOctal("/mnt/a\\040b\\134c")).toBe("/mnt/a b\\c");
});

test("overlayLayers reads the layers as the RegExps did", () => {
  const values = strings(["\\", ":", "a", "1", "3", "4", "\n", "\u2028"], 4);
  const keys = ["lowerdir", "lowerdir+", "upperdir", "workdir", "datadir+", "lowerdirx", "index", "=", ""];
  let checked = 0;
  for (const k of keys) {
    for (const v of values) {
      const options = `rw,${k}=${v},xino=off`;
      expect([options, overlayLayers(options)]).toEqual([options, reference.overlayLayers(options)]);
      checked++;
    }
  }
  expect(checked).toBeGreaterThan(10_000);
  expect(overlayLayers("rw,lowerdir=/l/2:/l/1\\:x,upperdir=/u\\040d,workdir=/w")).toEqual(["/l/2", "/l/1:x", "/u d", "/w"]);
  // As the kernel writes them: the user's backslash as \134, before the colon it escapes; and a
  // backslash in lowerdir+= is part of the path.
  expect(overlayLayers("rw,lowerdir=/t/lo\\134:1:/l/2,upperdir=/u/a\\134\\134b,workdir=/w")).toEqual(["/t/lo:1", "/l/2", "/u/a\\b", "/w"]);
  expect(overlayLayers("rw,lowerdir+=/t/ovb\\134x/snapshots/0/fs,datadir+=/d\\134y")).toEqual(["/t/ovb\\x/snapshots/0/fs", "/d\\y"]);
});

test("an overlay layer with a carriage return or U+2028 in its path is a layer, and its tree is in use", () => {
  for (const c of ["\r", "\u2028", "\u2029"]) {
    const line = `40 1 0:9 / /mnt rw - overlay overlay rw,lowerdir=/x/tree/a${c}b,upperdir=/u/up,workdir=/u/work\n`;
    expect(overlayLayers(parseMountInfo(line)[0]!.superOptions)).toEqual([`/x/tree/a${c}b`, "/u/up", "/u/work"]);
    expect(mountsUsing("/x/tree", parseMountInfo(line)).length).toBe(1);
    expect(mayMention(line, "/x/tree")).toBe(true);
  }
});

test("a mountinfo line with escaped spaces parses to its paths", () => {
  const [m] = parseMountInfo("36 35 98:0 /mnt\\040one /a\\040b rw,noatime master:1 - ext3 /dev/root rw,errors=continue\n");
  expect(m).toMatchObject({ id: 36, parent: 35, device: "98:0", root: "/mnt one", mountPoint: "/a b", fsType: "ext3", source: "/dev/root" });
});

test("mayMention never says no of a tree that a mount uses (200,000 random namespaces)", () => {
  const rng = new Rng(11);
  const rnd = (n: number) => rng.int(n);
  const pick = <T>(xs: readonly T[]) => rng.pick(xs);
  const seen = new Set<string>();
  const COMPONENTS = ["a", "b", "5", "50", "fs", "x.y", "s p"];
  const path = () => `/${Array.from({ length: 1 + rnd(4) }, () => pick(COMPONENTS)).join("/")}`;
  // As the kernel writes them: space, tab, newline and backslash as \ooo.
  const esc = (p: string) => p.replaceAll("\\", "\\134").replaceAll(" ", "\\040");
  let used = 0;
  let skipped = 0;
  for (let n = 0; n < 200_000; n++) {
    const lines = ["1 0 8:1 / / rw - ext4 /dev/vda rw"];
    for (let id = 2; id < 3 + rnd(5); id++) {
      const [device, root, point] = [pick(["8:1", "0:5"]), rnd(2) ? "/" : path(), path()];
      lines.push(
        rnd(8) === 0
          ? `${id} 1 0:9 / ${esc(point)} rw - overlay overlay rw,lowerdir=${esc(path())}:${esc(path())},upperdir=${esc(path())},workdir=${esc(path())}`
          : `${id} 1 ${device} ${esc(root)} ${esc(point)} rw - ext4 /dev/vdb rw`,
      );
    }
    const text = `${lines.join("\n")}\n`;
    const tree = path();
    seen.add(`${tree}\0${text}`);
    const isUsed = mountsUsing(tree, parseMountInfo(text)).length > 0;
    if (isUsed) used++;
    if (!mayMention(text, tree)) {
      skipped++;
      if (isUsed) expect([text, tree]).toEqual(["a namespace in which mayMention says no of a used tree", ""]);
    }
  }
  // Both answers came up often: the property was tried, and the fast path skips parses.
  expect(seen.size).toBeGreaterThan(150_000);
  expect(used).toBeGreaterThan(20_000);
  expect(skipped).toBeGreaterThan(20_000);
});

test("an overlay with data-only layers (lowerdir=A::B) uses A and B, and no other tree", () => {
  const line = "50 1 0:60 / /mnt/t rw - overlay overlay rw,lowerdir=/o/l::/o/d,upperdir=/o/u,workdir=/o/w\n";
  expect(overlayLayers(parseMountInfo(line)[0]!.superOptions)).toEqual(["/o/l", "/o/d", "/o/u", "/o/w"]);
  expect(mountsUsing("/o/d", parseMountInfo(line)).length).toBe(1);
  for (const tree of ["/r/snapshots/7", "/r/volumes/v1"]) expect([tree, mountsUsing(tree, parseMountInfo(line))]).toEqual([tree, []]);
  expect(mayMention(line, "/r/volumes/v1")).toBe(true); // parsed, then found unused
});

test("an overlay's relative layers (the fallback for long options) make the trees they may name in use", () => {
  // Mounted from /r/snapshots: overlayfs shows the layers as given, relative to that directory.
  const line = "50 1 0:60 / /mnt/t rw - overlay overlay rw,lowerdir=1/fs:3/fs,upperdir=2/fs,workdir=2/work\n";
  const mounts = parseMountInfo(line);
  for (const id of [1, 2, 3]) expect([id, mountsUsing(`/r/snapshots/${id}`, mounts).length]).toEqual([id, 1]);
  expect(mountsUsing("/r/snapshots/4", mounts)).toEqual([]);
  expect(mountsUsing("/r/snapshots/12", mounts)).toEqual([]);
  // Given from further up (the root's parent), the first components are the tree's last ones.
  const deeper = parseMountInfo("50 1 0:60 / /mnt/t rw - overlay overlay rw,lowerdir=snapshots/1/fs,upperdir=snapshots/2/fs,workdir=snapshots/2/work\n");
  expect(mountsUsing("/r/snapshots/2", deeper).length).toBe(1);
  expect(mountsUsing("/r/other/2", deeper)).toEqual([]);
  // One that climbs, or names its base, may be anywhere.
  for (const layer of ["../x/fs", ".", "./fs"]) {
    const m = parseMountInfo(`50 1 0:60 / /mnt/t rw - overlay overlay rw,lowerdir=${layer},upperdir=/u/up,workdir=/u/work\n`);
    expect([layer, mountsUsing("/anywhere/9", m).length]).toEqual([layer, 1]);
  }
});

test("an overlay layer through a symlink anywhere on its way, or not plain, is found in the tree it resolves into", () => {
  const dir = mkdtempSync(join(tmpdir(), "stor-mountinfo-"));
  try {
    const tree = join(dir, "real/snapshots/7");
    mkdirSync(join(tree, "fs/sub"), { recursive: true });
    mkdirSync(join(dir, "real/x"));
    mkdirSync(join(dir, "other/8/fs"), { recursive: true });
    symlinkSync(join(dir, "real"), join(dir, "alias")); // an ancestor given as a link
    symlinkSync(join(tree, "fs"), join(dir, "direct")); // a link to a directory in the tree
    symlinkSync("snapshots/7", join(dir, "real/rel")); // a relative link
    const layers = [`${dir}/alias/snapshots/7/fs`, `${dir}/direct/sub`, `${dir}/real/rel/fs`, `${dir}/real/x/../snapshots/7/fs`, `${dir}/alias/snapshots/7`, `${dir}/alias/snapshots/7/`];
    for (const layer of layers) {
      const mounts = parseMountInfo(`50 1 0:60 / /mnt/t rw - overlay overlay rw,lowerdir=${dir}/other/8/fs:${layer},upperdir=/u/up,workdir=/u/work\n`);
      expect([layer, mountsUsing(tree, mounts).length]).toEqual([layer, 1]);
      expect([layer, mountsUsing(join(dir, "other/9"), mounts)]).toEqual([layer, []]);
    }
    // Many layers share their directories: one list, each asked of twice, answers the same.
    const all = parseMountInfo(layers.map((l, i) => `5${i} 1 0:6${i} / /mnt/t${i} rw - overlay overlay rw,lowerdir=${l},upperdir=/u/up,workdir=/u/work\n`).join(""));
    expect(mountsUsing(tree, all).length).toBe(layers.length);
    expect(mountsUsing(tree, all).length).toBe(layers.length);
    // A layer gone since is its path as given.
    expect(mountsUsing(join(dir, "gone"), parseMountInfo(`50 1 0:60 / /mnt/t rw - overlay overlay rw,lowerdir=${dir}/gone/fs\n`)).length).toBe(1);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a directory reached through a bind of an ancestor is known by its filesystem and its path there", () => {
  const mounts = parseMountInfo(
    [
      "1 0 8:1 / / rw - ext4 /dev/vda rw",
      "2 1 8:1 /var/lib/stor /alias rw - ext4 /dev/vda rw", // the root bound elsewhere
      "3 1 8:2 /var/lib/stor /other rw - ext4 /dev/vdb rw", // the same path on another filesystem
      "4 1 0:60 / /mnt/t rw - overlay overlay rw,lowerdir=/alias/s/1/fs,upperdir=/alias/s/2/fs,workdir=/alias/s/2/work",
      "5 1 0:61 / /mnt/u rw - overlay overlay rw,lowerdir=/other/s/6/fs,upperdir=/other/s/7/fs,workdir=/other/s/7/work",
      "6 2 0:70 / /alias/s/5/sub rw - tmpfs tmpfs rw", // mounted inside a tree, through the alias
    ].join("\n"),
  );
  const ids = (tree: string) => mountsUsing(tree, mounts).map((m) => m.id);
  expect(ids("/var/lib/stor/s/1")).toEqual([4]);
  expect(ids("/var/lib/stor/s/2")).toEqual([4]);
  expect(ids("/var/lib/stor/s/5")).toEqual([6]);
  for (const tree of ["/var/lib/stor/s/3", "/var/lib/stor/s/6", "/var/lib/stor/s/7"]) expect([tree, ids(tree)]).toEqual([tree, []]);
  expect(ids("/other/s/7")).toEqual([5]);
});
