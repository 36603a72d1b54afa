/**
 * containerd's snapshotter test suite (core/snapshots/testsuite), ported to stor's command line
 * so the same behaviours run against every snapshotter: each test drives the real binary and
 * looks at the trees through real mounts.
 */
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { chmodSync, chownSync, existsSync, lstatSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { TestRoot, isRoot, must, need } from "./helpers.ts";

/** A root and the chosen snapshotter, with shortcuts for the commands the suite uses. */
class Fixture {
  readonly root = new TestRoot();
  readonly target: string;
  constructor(readonly snapshotter: string) {
    this.target = this.root.dir("mnt");
  }
  run(...args: string[]) {
    return this.root.stor(["snapshot", "-s", this.snapshotter, ...args]);
  }
  ok(...args: string[]): string {
    return this.root.ok(["snapshot", "-s", this.snapshotter, ...args]);
  }
  info(key: string): Record<string, unknown> {
    return JSON.parse(this.ok("info", key));
  }
  /** Mounts `key` on the target, runs `fn` on the mounted tree, and unmounts. */
  withMount<T>(key: string, fn: (dir: string) => T): T {
    this.root.ok(["-s", this.snapshotter, "mount", key, this.target]);
    try {
      return fn(this.target);
    } finally {
      this.root.ok(["unmount", this.target]);
    }
  }
  /** Prepares `key` on `parent`, lets `fn` change it, commits it as `name`. */
  layer(name: string, parent: string | undefined, fn: (dir: string) => void): void {
    const key = `${name}-active`;
    this.ok("prepare", key, ...(parent ? [parent] : []));
    this.withMount(key, fn);
    this.ok("commit", name, key);
  }
  /** Makes a view of `parent` and reads it through a mount. */
  inView<T>(parent: string, fn: (dir: string) => T): T {
    const key = `view-${parent}-${Math.random().toString(36).slice(2)}`;
    this.ok("view", key, parent);
    try {
      return this.withMount(key, fn);
    } finally {
      this.ok("rm", key);
    }
  }
  close() {
    this.root.close();
  }
}

const read = (p: string) => readFileSync(p, "utf8");

/** Registers the suite for snapshotter `name`. */
export function snapshotterSuite(name: string): void {
  describe(`snapshotter ${name}`, () => {
    let f: Fixture;
    beforeEach(() => {
      need(isRoot(), "the snapshotter suite mounts, which needs root");
      f = new Fixture(name);
    });
    afterEach(() => f?.close());

    test("basic: prepare, write, commit, prepare on it, view", () => {
      f.layer("committed", undefined, (d) => {
        writeFileSync(join(d, "foo"), "foo\n");
        mkdirSync(join(d, "a/b"), { recursive: true });
        writeFileSync(join(d, "a/b/c"), "c\n");
      });
      expect(f.info("committed")).toMatchObject({ Kind: "Committed", Name: "committed" });
      expect(f.info("committed").Parent).toBeUndefined();

      f.ok("prepare", "next", "committed");
      f.withMount("next", (d) => {
        expect(read(join(d, "foo"))).toBe("foo\n");
        expect(read(join(d, "a/b/c"))).toBe("c\n");
        writeFileSync(join(d, "bar"), "bar\n");
      });
      f.ok("commit", "nextCommitted", "next");
      expect(f.info("nextCommitted")).toMatchObject({ Kind: "Committed", Parent: "committed" });
      expect(f.run("info", "next").code).toBe(3); // the active key is gone after commit

      const seen = f.inView("nextCommitted", (d) => readdirSync(d).sort());
      expect(seen).toEqual(["a", "bar", "foo"]);
      // The lower layer is unchanged by its child.
      expect(f.inView("committed", (d) => readdirSync(d).sort())).toEqual(["a", "foo"]);
    });

    test("stat of an active snapshot", () => {
      f.ok("prepare", "active");
      const i = f.info("active");
      expect(i).toMatchObject({ Kind: "Active", Name: "active" });
      expect(i.Parent).toBeUndefined();
      expect(i.Created).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z$/);
      expect(i.Created).toBe(i.Updated as string);
    });

    test("stat of a committed snapshot keeps the parent", () => {
      f.layer("base", undefined, (d) => writeFileSync(join(d, "x"), "x"));
      f.layer("top", "base", (d) => writeFileSync(join(d, "y"), "y"));
      expect(f.info("top")).toMatchObject({ Kind: "Committed", Name: "top", Parent: "base" });
    });

    test("transitivity: a child sees every ancestor's files", () => {
      f.layer("l1", undefined, (d) => writeFileSync(join(d, "f1"), "1"));
      f.layer("l2", "l1", (d) => writeFileSync(join(d, "f2"), "2"));
      f.layer("l3", "l2", (d) => writeFileSync(join(d, "f3"), "3"));
      expect(f.inView("l3", (d) => ["f1", "f2", "f3"].map((n) => read(join(d, n))))).toEqual(["1", "2", "3"]);
    });

    test("prepare and view failure cases", () => {
      f.layer("base", undefined, () => {});
      f.ok("prepare", "active", "base");
      f.ok("view", "view", "base");
      expect(f.run("prepare", "x", "nosuch").code).toBe(3);
      expect(f.run("view", "x", "nosuch").code).toBe(3);
      expect(f.run("prepare", "active", "base").code).toBe(4);
      expect(f.run("prepare", "view").code).toBe(4);
      expect(f.run("view", "base", "base").code).toBe(4); // one namespace across kinds
      expect(f.run("prepare", "x", "active").code).toBe(5);
      expect(f.run("view", "x", "view").code).toBe(5);
      expect(f.run("commit", "c", "view").code).toBe(5);
      expect(f.run("commit", "c", "base").code).toBe(5);
      expect(f.run("commit", "base", "active").code).toBe(4);
      expect(f.run("prepare", "").code).toBe(2);
      expect(f.run("prepare", "x".repeat(4097)).code).toBe(2);
      // Nothing half-made: only the snapshots that succeeded exist.
      expect(f.ok("ls", "--format", "json")).toContain('"Name": "view"');
      expect(JSON.parse(f.ok("ls", "--format", "json")).map((i: { Name: string }) => i.Name)).toEqual(["active", "base", "view"]);
    });

    test("view of nothing is an empty read-only tree", () => {
      f.ok("view", "empty");
      expect(f.withMount("empty", (d) => readdirSync(d))).toEqual([]);
    });

    test("labels: set at prepare, updated, removed with K=", () => {
      f.ok("prepare", "-l", "a=1", "-l", "b=2", "k");
      expect(f.info("k").Labels).toEqual({ a: "1", b: "2" });
      const before = f.info("k").Updated as string;
      expect(f.ok("label", "k", "c=3", "a=")).toBe("b=2,c=3\n");
      const after = f.info("k");
      expect(after.Labels).toEqual({ b: "2", c: "3" });
      expect(after.Updated as string > before).toBe(true);
      expect(after.Created).toBe(f.info("k").Created as string);
      expect(f.ok("label", "k")).toBe("b=2,c=3\n");
      f.ok("commit", "-l", "d=4", "kc", "k");
      expect(f.info("kc").Labels).toEqual({ b: "2", c: "3", d: "4" });
      expect(f.run("label", "nosuch", "a=1").code).toBe(3);
      expect(f.run("label", "kc", "novalue").code).toBe(2);
    });

    test("remove: children first, then the parent", () => {
      f.layer("p", undefined, () => {});
      f.ok("prepare", "c", "p");
      const r = f.run("rm", "p");
      expect(r.code).toBe(5);
      expect(r.stderr).toBe('stor: snapshot "p": has children\n');
      f.ok("rm", "c");
      f.ok("rm", "p");
      expect(f.run("rm", "p").code).toBe(3);
      expect(JSON.parse(f.ok("ls", "--format", "json"))).toEqual([]);
      // No directory outlives its snapshot.
      expect(readdirSync(join(f.root.path, "snapshots", name, "snapshots"))).toEqual([]);
    });

    test("walk lists every snapshot with parent and kind", () => {
      f.layer("b", undefined, () => {});
      f.ok("prepare", "a");
      f.ok("prepare", "c", "b");
      f.ok("view", "v", "b");
      expect(f.ok("ls")).toBe(
        "KEY PARENT KIND      \na          Active    \nb          Committed \nc   b      Active    \nv   b      View      \n",
      );
      expect(f.ok("tree")).toBe(" a\n b\n  \\_ c\n  \\_ v\n");
    });

    test("a file updated in each layer shows its latest content", () => {
      f.layer("l1", undefined, (d) => writeFileSync(join(d, "foo"), "1"));
      f.layer("l2", "l1", (d) => writeFileSync(join(d, "foo"), "2"));
      f.layer("l3", "l2", (d) => writeFileSync(join(d, "foo"), "3"));
      expect(["l1", "l2", "l3"].map((l) => f.inView(l, (d) => read(join(d, "foo"))))).toEqual(["1", "2", "3"]);
    });

    test("a directory of a lower layer removed in a child", () => {
      f.layer("l1", undefined, (d) => {
        mkdirSync(join(d, "lib/sub"), { recursive: true });
        writeFileSync(join(d, "lib/sub/f"), "f");
        writeFileSync(join(d, "keep"), "k");
      });
      f.layer("l2", "l1", (d) => rmSync(join(d, "lib"), { recursive: true }));
      expect(f.inView("l2", (d) => readdirSync(d))).toEqual(["keep"]);
      expect(f.inView("l1", (d) => existsSync(join(d, "lib/sub/f")))).toBe(true);
    });

    test("chown in a child layer", () => {
      f.layer("l1", undefined, (d) => {
        mkdirSync(join(d, "dir"));
        writeFileSync(join(d, "dir/file"), "x");
      });
      f.layer("l2", "l1", (d) => {
        chownSync(join(d, "dir"), 1000, 1001);
        chownSync(join(d, "dir/file"), 1002, 1003);
      });
      const owners = f.inView("l2", (d) => [lstatSync(join(d, "dir")), lstatSync(join(d, "dir/file"))].map((s) => [s.uid, s.gid]));
      expect(owners).toEqual([[1000, 1001], [1002, 1003]]);
    });

    test("directory permission survives commit", () => {
      f.layer("l1", undefined, (d) => {
        mkdirSync(join(d, "dir"));
        chmodSync(join(d, "dir"), 0o777);
      });
      f.layer("l2", "l1", (d) => chmodSync(join(d, "dir"), 0o700));
      expect(f.inView("l2", (d) => statSync(join(d, "dir")).mode & 0o7777)).toBe(0o700);
      expect(f.inView("l1", (d) => statSync(join(d, "dir")).mode & 0o7777)).toBe(0o777);
    });

    test("an intermediate snapshot cannot be removed", () => {
      f.layer("a", undefined, () => {});
      f.layer("b", "a", () => {});
      f.layer("c", "b", () => {});
      expect(f.run("rm", "b").code).toBe(5);
      expect(f.run("rm", "a").code).toBe(5);
      f.ok("rm", "c", "b", "a");
      expect(f.ok("ls")).toBe("KEY PARENT KIND \n");
    });

    test("files deleted in a child are gone in the grandchild", () => {
      f.layer("l1", undefined, (d) => {
        writeFileSync(join(d, "f"), "f");
        mkdirSync(join(d, "d"));
        writeFileSync(join(d, "d/inner"), "i");
        writeFileSync(join(d, "stay"), "s");
      });
      f.layer("l2", "l1", (d) => {
        rmSync(join(d, "f"));
        rmSync(join(d, "d"), { recursive: true });
      });
      f.layer("l3", "l2", (d) => writeFileSync(join(d, "new"), "n"));
      expect(f.inView("l3", (d) => readdirSync(d).sort())).toEqual(["new", "stay"]);
    });

    test("a file moved from a lower layer", () => {
      f.layer("l1", undefined, (d) => {
        mkdirSync(join(d, "a"));
        mkdirSync(join(d, "b"));
        writeFileSync(join(d, "a/f"), "moved");
      });
      f.layer("l2", "l1", (d) => renameSync(join(d, "a/f"), join(d, "b/f")));
      expect(f.inView("l2", (d) => [readdirSync(join(d, "a")), read(join(d, "b/f"))])).toEqual([[], "moved"]);
    });

    test("a directory renamed in a child", () => {
      f.layer("l1", undefined, (d) => {
        mkdirSync(join(d, "old/sub"), { recursive: true });
        writeFileSync(join(d, "old/sub/f"), "f");
      });
      // As a user renames: overlay without redirect_dir answers EXDEV and mv copies instead.
      f.layer("l2", "l1", (d) => must(`mv ${d}/old ${d}/new`));
      f.layer("l3", "l2", () => {});
      expect(f.inView("l3", (d) => [readdirSync(d), read(join(d, "new/sub/f"))])).toEqual([["new"], "f"]);
    });

    test("views are read-only", () => {
      f.layer("l1", undefined, (d) => writeFileSync(join(d, "f"), "f"));
      f.ok("view", "v", "l1");
      f.withMount("v", (d) => {
        expect(() => writeFileSync(join(d, "new"), "x")).toThrow(/read-only/);
        expect(() => writeFileSync(join(d, "f"), "x")).toThrow(/read-only/);
      });
      expect(f.inView("l1", (d) => readdirSync(d))).toEqual(["f"]);
    });

    test("the root of a new snapshot is 0755", () => {
      f.ok("prepare", "k");
      expect(f.withMount("k", (d) => statSync(d).mode & 0o7777)).toBe(0o755);
    });

    test("usage: measured for active, recorded at commit, zero for views", () => {
      f.ok("prepare", "k");
      const empty = f.ok("usage", "-b", "k").split("\n")[1]!.split(/\s+/);
      f.withMount("k", (d) => writeFileSync(join(d, "big"), Buffer.alloc(1 << 20, 1)));
      const full = f.ok("usage", "-b", "k").split("\n")[1]!.split(/\s+/);
      expect(Number(full[1]) - Number(empty[1])).toBeGreaterThanOrEqual(1 << 20);
      expect(Number(full[2])).toBe(Number(empty[2]) + 1);
      f.ok("commit", "c", "k");
      expect(f.ok("usage", "-b", "c").split("\n")[1]!.split(/\s+/).slice(1, 3)).toEqual(full.slice(1, 3));
      f.ok("view", "v", "c");
      expect(f.ok("usage", "v")).toBe("KEY SIZE  INODES \nv   0.0 B 0      \n");
      expect(f.ok("usage", "c")).toMatch(/^KEY SIZE +INODES \nc +1\.\d MiB 2 +\n$/);
      expect(f.run("usage", "nosuch").code).toBe(3);
    });

    test("mounts printed as ctr prints them", () => {
      f.ok("prepare", "a");
      const out = f.ok("mounts", "/T", "a");
      expect(out).toMatch(/^mount -t bind \/\S+ \/T -o (rw,rbind|rbind,rw)\n$/);
      const json = JSON.parse(f.ok("prepare", "--mounts", "b"));
      expect(json).toHaveLength(1);
      expect(Object.keys(json[0])).toEqual(["Type", "Source", "Options"]);
      expect(f.ok("prepare", "-t", "/T", "c")).toMatch(/^mount -t bind \S+ \/T -o /);
      expect(f.run("mounts", "/T", "nosuch").code).toBe(3);
    });

    test("cleanup removes directories no snapshot owns and keeps the rest", () => {
      f.layer("l1", undefined, (d) => writeFileSync(join(d, "f"), "f"));
      const dirs = join(f.root.path, "snapshots", name, "snapshots");
      mkdirSync(join(dirs, "new-crashed"));
      mkdirSync(join(dirs, "999"));
      const removed = f.ok("cleanup").trim().split("\n").sort();
      expect(removed).toEqual(["rm-999", "rm-new-crashed"]);
      expect(readdirSync(dirs)).toHaveLength(1);
      expect(f.inView("l1", (d) => read(join(d, "f")))).toBe("f");
      expect(f.ok("cleanup")).toBe("");
    });
  });
}
