/**
 * Trees that others write in (a container's snapshot or volume, as whatever user it runs as) are
 * removed and measured by descriptor, one name at a time: a directory swapped for a symlink while
 * stor works takes nothing outside the tree with it, and no depth is too deep to remove or measure.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, readdirSync, renameSync, symlinkSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { TestRoot, isRoot, must } from "./helpers.ts";

const CI = process.env.CI === "true";
const root = isRoot();
if (CI && !root) throw new Error("required under CI: root, for real mounts and other users' files");

let r: TestRoot | undefined;
afterEach(() => {
  r?.close();
  r = undefined;
});

const FILES = 50;

/** `swapme/b/f0…` below `dir`, and a victim outside the root with the same names; returns the victim. */
function treeAndVictim(dir: string): string {
  const victim = r!.dir("victim");
  for (const base of [join(dir, "swapme"), victim]) {
    mkdirSync(join(base, "b"), { recursive: true });
    for (let i = 0; i < FILES; i++) writeFileSync(join(base, "b", `f${i}`), "x");
  }
  return victim;
}

/** The directory named `swapme` below `path`, wherever a removal has moved it. */
function findSwapme(path: string): string {
  const found = must(`find ${path} -name swapme -type d`).trim().split("\n").filter(Boolean);
  expect(found.length).toBe(1);
  return found[0]!;
}

/**
 * Runs `args`, stopped once the removal has opened `swapme/b` (the `nth` directory it opens),
 * swaps `swapme` for a symlink to `victim` as a container writing in the tree can, and lets it go on.
 */
async function removeWhileSwapped(args: string[], nth: number, victim: string): Promise<number> {
  const res = await r!.stoppedAt(args, `remove-tree:opened@${nth}`, () => {
    const swapme = findSwapme(r!.path);
    renameSync(swapme, join(dirname(swapme), "moved"));
    symlinkSync(victim, swapme);
  });
  expect(res.stderr).toBe("");
  return res.code;
}

describe("a directory swapped for a symlink while its tree is removed", () => {
  test.skipIf(!root)("volume rm removes the link, not what it leads to", async () => {
    r = new TestRoot();
    r.ok(["volume", "create", "vv"]);
    const victim = treeAndVictim(join(r.path, "volumes/vv/_data"));
    // Opened: _data, swapme, b.
    expect(await removeWhileSwapped(["volume", "rm", "vv"], 3, victim)).toBe(0);
    expect(readdirSync(join(victim, "b")).length).toBe(FILES);
    expect(readdirSync(join(r.path, "volumes"))).toEqual([".meta"]);
  });

  for (const [sn, tree, nth] of [["native", "", 2], ["overlay", "fs", 3]] as const) {
    test.skipIf(!root)(`${sn}: snapshot rm removes the link, not what it leads to`, async () => {
      r = new TestRoot();
      r.ok(["snapshot", "-s", sn, "prepare", "k"]);
      const victim = treeAndVictim(join(r.path, `snapshots/${sn}/snapshots/1`, tree));
      expect(await removeWhileSwapped(["snapshot", "-s", sn, "rm", "k"], nth, victim)).toBe(0);
      expect(readdirSync(join(victim, "b")).length).toBe(FILES);
      expect(readdirSync(join(r.path, `snapshots/${sn}/snapshots`))).toEqual([]);
    });
  }
});

/** A chain of `depth` directories named `name` below `dir` with a file at its end: a path far longer than PATH_MAX. */
function deepTree(dir: string, depth = 1500, name = "dddddddddd"): void {
  // A shell's cd keeps the whole path and fails past PATH_MAX; a process's working directory does not.
  const made = Bun.spawnSync(["python3", "-c", `import os\nos.chdir(${JSON.stringify(dir)})\nfor i in range(${depth}):\n  os.mkdir("${name}"); os.chdir("${name}")\nopen("f", "w").write("data\\n")`]);
  expect([made.exitCode, made.stderr.toString()]).toEqual([0, ""]);
}

describe("a tree deeper than PATH_MAX", () => {
  test.skipIf(!root)("a volume holding one is measured by df, pruned, and leaves nothing", () => {
    r = new TestRoot();
    r.ok(["volume", "create", "deep"]);
    r.ok(["volume", "create", "plain"]);
    deepTree(join(r.path, "volumes/deep/_data"));
    const df = r.stor(["df", "--format", "json"]);
    expect([df.code, df.stderr]).toEqual([0, ""]);
    expect(df.stdout).toContain('"Size":"5B","TotalCount":"2","Type":"Local Volumes"');
    const prune = r.stor(["volume", "prune", "-a", "-f"]);
    expect([prune.code, prune.stderr]).toEqual([0, ""]);
    expect(prune.stdout).toBe("Deleted Volumes:\ndeep\nplain\n\nTotal reclaimed space: 5B\n");
    expect(readdirSync(join(r.path, "volumes"))).toEqual([".meta"]);
  });

  test.skipIf(!root)("volume rm removes one whole", () => {
    r = new TestRoot();
    r.ok(["volume", "create", "deep"]);
    deepTree(join(r.path, "volumes/deep/_data"));
    expect(r.stor(["volume", "rm", "deep"])).toEqual({ code: 0, stdout: "deep\n", stderr: "" });
    expect(readdirSync(join(r.path, "volumes"))).toEqual([".meta"]);
  });

  for (const [sn, tree] of [["native", ""], ["overlay", "fs"]] as const) {
    test.skipIf(!root)(`${sn}: a snapshot holding one has its usage, and snapshot rm removes it whole`, () => {
      r = new TestRoot();
      r.ok(["snapshot", "-s", sn, "prepare", "k"]);
      deepTree(join(r.path, `snapshots/${sn}/snapshots/1`, tree));
      const usage = r.stor(["snapshot", "-s", sn, "usage", "k"]);
      expect([usage.code, usage.stderr]).toEqual([0, ""]);
      expect(usage.stdout).toMatch(/^KEY +SIZE +INODES *\nk +[\d.]+ \w+ +1502 *\n$/); // the tree's top, 1,500 directories, the file
      expect(r.stor(["snapshot", "-s", sn, "rm", "k"])).toEqual({ code: 0, stdout: "", stderr: "" });
      expect(readdirSync(join(r.path, `snapshots/${sn}/snapshots`))).toEqual([]);
      expect(existsSync(join(r.path, `snapshots/${sn}/snapshots/1`))).toBe(false);
    });

    // Deeper than any path can name, and than stor walks (2,048): refused by name, not by the stack.
    test.skipIf(!root)(`${sn}: a snapshot deeper than stor walks is refused by usage, changes and diff (exit 5), a warning in df, and rm removes it`, () => {
      r = new TestRoot();
      r.ok(["snapshot", "-s", sn, "prepare", "k"]);
      r.ok(["snapshot", "-s", sn, "prepare", "other"]);
      deepTree(join(r.path, `snapshots/${sn}/snapshots/1`, tree), 2100, "d");
      for (const args of [["usage", "k"], ["changes", "k"], ["diff", "k", "-o", join(r.dir("out"), "k.tar")]]) {
        const res = r.stor(["snapshot", "-s", sn, ...args]);
        expect([args[0], res.code, res.stdout]).toEqual([args[0], 5, ""]);
        expect(res.stderr).toMatch(/^stor: \S+: is more than 2048 directories deep, more than stor walks\n$/);
      }
      const df = r.stor(["df", "-v"]);
      expect(df.code).toBe(0);
      expect(df.stderr).toMatch(/^stor: warn: usage of snapshot "k": \S+: is more than 2048 directories deep, more than stor walks\n$/);
      expect(df.stdout).toMatch(/^k +Active +N\/A *$/m);
      expect(df.stdout).toMatch(/^other +Active +\S+ *$/m);
      expect(r.stor(["snapshot", "-s", sn, "rm", "k"])).toEqual({ code: 0, stdout: "", stderr: "" });
    });
  }
});
