/**
 * containerd's snapshotter test suite (core/snapshots/testsuite), ported to stor's command line
 * so the same behaviours run against every snapshotter: each test drives the real binary and
 * looks at the trees through real mounts.
 *
 * A {@link Route} says how the commands get there: stor's own CLI (the default), or ctr against a
 * containerd that uses `stor serve` as its proxy snapshotter (snapshot-ctr.test.ts). Where ctr has
 * no form of a stor feature, the assertion runs through {@link Fixture.storOnly}, which names why.
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, test as bunTest } from "bun:test";
import { chmodSync, chownSync, existsSync, lstatSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { type Result, TestRoot, isRoot, must, need } from "./helpers.ts";

/** One test's way to a snapshotter: how snapshot commands are sent and snapshots mounted. */
export interface Session {
  /** The stor root holding the snapshotter's files, which some tests look at directly. */
  readonly root: TestRoot;
  /** Runs `stor snapshot -s NAME ARGS`, or the same command through another client. */
  run(args: string[]): Result;
  mount(key: string, target: string): void;
  unmount(target: string): void;
  /** Ends the test: unmounts and removes what it made; throws to fail the test (a leak, say). */
  close(): void;
}

/** What carries the suite's commands to a snapshotter. */
export interface Route {
  /** `stor`: stor's CLI on a fresh root per test; `ctr`: ctr against containerd using stor serve. */
  readonly via: "stor" | "ctr";
  /** Whether it can run here (need() says why not, and fails the suite under CI). */
  readonly available: boolean;
  setup?(): Promise<void>;
  teardown?(): Promise<void>;
  /** A session for one test. */
  open(): Session;
}

/** stor's own CLI, a fresh root per test. */
function storRoute(snapshotter: string): Route {
  return {
    via: "stor",
    available: need(isRoot(), "the snapshotter suite mounts, which needs root"),
    open() {
      const root = TestRoot.for(snapshotter);
      return {
        root,
        run: (args) => root.stor(["snapshot", "-s", snapshotter, ...args]),
        mount: (key, target) => void root.ok(["-s", snapshotter, "mount", key, target]),
        unmount: (target) => void root.ok(["unmount", target]),
        close: () => root.close(),
      };
    },
  };
}

/** The label containerd's clients set to keep a snapshot from its garbage collector. */
const GC_ROOT = "containerd.io/gc.root";
/** The error class ctr prints for each of stor's exit codes. */
const CTR_ERRORS: Record<number, RegExp> = { 2: /invalid argument/, 3: /not found/, 4: /already exists/, 5: /failed precondition/ };

/** A session and the chosen snapshotter, with shortcuts for the commands the suite uses. */
class Fixture {
  readonly target: string;
  readonly via: Route["via"];
  constructor(readonly snapshotter: string, readonly session: Session, route: Route) {
    this.via = route.via;
    this.target = this.root.dir("mnt");
  }
  get root(): TestRoot {
    return this.session.root;
  }
  run(...args: string[]): Result {
    return this.session.run(args);
  }
  ok(...args: string[]): string {
    const r = this.run(...args);
    if (r.code !== 0) throw new Error(`${this.via} snapshot ${args.join(" ")}: exit ${r.code}: ${r.stderr.trim()}`);
    return r.stdout;
  }
  /**
   * `args` must fail with stor's exit `code`; through ctr, which exits 1 for every error, with
   * the error class containerd gives that code.
   */
  refused(code: number, ...args: string[]): Result {
    return this.refusedAs(code, code, ...args);
  }
  /**
   * {@link refused}, where containerd's class is that of exit `ctrCode`: a parent that is not
   * committed is failed precondition to stor's CLI (exit 5), invalid argument to containerd's
   * snapshotters, whose answer serve gives.
   */
  refusedAs(code: number, ctrCode: number, ...args: string[]): Result {
    const r = this.run(...args);
    if (this.via === "stor") expect(r.code).toBe(code);
    else expect([args, r.code, r.stderr]).toEqual([args, 1, expect.stringMatching(CTR_ERRORS[ctrCode]!)]);
    return r;
  }
  /** Assertions on a stor-only feature or output; `why` says what ctr lacks. */
  storOnly(why: string, fn: () => void): void {
    if (this.via === "stor") fn();
  }
  /**
   * The info as JSON. ctr prints containerd's, whose labels include the gc.root label ctr's
   * prepare and commit add (and this suite's views get): dropped, so the labels compared are the
   * ones a test set.
   */
  info(key: string): Record<string, unknown> {
    const info = JSON.parse(this.ok("info", key)) as Record<string, unknown>;
    if (this.via === "ctr" && info.Labels) {
      const labels = Object.fromEntries(Object.entries(info.Labels as Record<string, string>).filter(([k]) => k !== GC_ROOT));
      if (Object.keys(labels).length > 0) info.Labels = labels;
      else delete info.Labels;
    }
    return info;
  }
  /**
   * A label name a test sets. Through containerd only labels named `containerd.io/snapshot/…`
   * reach the snapshotter (the rest stay in containerd's own database), so those are used there.
   */
  labelKey(name: string): string {
    return this.via === "ctr" ? `containerd.io/snapshot/${name}` : name;
  }
  /** `label`'s output; ctr prints the labels in Go's random map order and with gc.root: sorted, without it. */
  labelLine(out: string): string {
    if (this.via === "stor") return out;
    return `${out.trim().split(",").filter((kv) => !kv.startsWith(`${GC_ROOT}=`)).sort().join(",")}\n`;
  }
  /** The keys `ls` lists, in its order. */
  names(): string[] {
    if (this.via === "stor") return JSON.parse(this.ok("ls", "--format", "json")).map((i: { Name: string }) => i.Name);
    return this.ok("ls").trim().split("\n").slice(1).filter(Boolean).map((line) => line.split(/\s+/)[0]!);
  }
  /** Mounts `key` on the target, runs `fn` on the mounted tree, and unmounts. */
  withMount<T>(key: string, fn: (dir: string) => T): T {
    this.session.mount(key, this.target);
    try {
      return fn(this.target);
    } finally {
      this.session.unmount(this.target);
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
    this.session.close();
  }
}

const read = (p: string) => readFileSync(p, "utf8");

/** Registers the suite for snapshotter `name`, its commands carried by `route` (stor's CLI by default). */
export function snapshotterSuite(name: string, route: Route = storRoute(name)): void {
  describe.skipIf(!route.available)(route.via === "stor" ? `snapshotter ${name}` : `snapshotter ${name} through ${route.via}`, () => {
    let f: Fixture | undefined;
    if (route.setup) beforeAll(() => route.setup!(), 90_000);
    if (route.teardown) afterAll(() => route.teardown!(), 90_000);
    beforeEach(() => {
      f = new Fixture(name, route.open(), route);
    });
    afterEach(() => {
      const done = f;
      f = undefined;
      done?.close();
    });
    /** A test of the suite, given the fixture made for it. */
    const test = (title: string, fn: (f: Fixture) => void) => bunTest(title, () => fn(f!));

    test("basic: prepare, write, commit, prepare on it, view", (f) => {
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
      f.refused(3, "info", "next"); // the active key is gone after commit

      const seen = f.inView("nextCommitted", (d) => readdirSync(d).sort());
      expect(seen).toEqual(["a", "bar", "foo"]);
      // The lower layer is unchanged by its child.
      expect(f.inView("committed", (d) => readdirSync(d).sort())).toEqual(["a", "foo"]);
    });

    test("stat of an active snapshot", (f) => {
      f.ok("prepare", "active");
      const i = f.info("active");
      expect(i).toMatchObject({ Kind: "Active", Name: "active" });
      expect(i.Parent).toBeUndefined();
      expect(i.Created).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z$/);
      expect(i.Created).toBe(i.Updated as string);
    });

    test("stat of a committed snapshot keeps the parent", (f) => {
      f.layer("base", undefined, (d) => writeFileSync(join(d, "x"), "x"));
      f.layer("top", "base", (d) => writeFileSync(join(d, "y"), "y"));
      expect(f.info("top")).toMatchObject({ Kind: "Committed", Name: "top", Parent: "base" });
    });

    test("transitivity: a child sees every ancestor's files", (f) => {
      f.layer("l1", undefined, (d) => writeFileSync(join(d, "f1"), "1"));
      f.layer("l2", "l1", (d) => writeFileSync(join(d, "f2"), "2"));
      f.layer("l3", "l2", (d) => writeFileSync(join(d, "f3"), "3"));
      expect(f.inView("l3", (d) => ["f1", "f2", "f3"].map((n) => read(join(d, n))))).toEqual(["1", "2", "3"]);
    });

    test("prepare and view failure cases", (f) => {
      f.layer("base", undefined, () => {});
      f.ok("prepare", "active", "base");
      f.ok("view", "view", "base");
      f.refused(3, "prepare", "x", "nosuch");
      f.refused(3, "view", "x", "nosuch");
      f.refused(4, "prepare", "active", "base");
      f.refused(4, "prepare", "view");
      f.refused(4, "view", "base", "base"); // one namespace across kinds
      f.refusedAs(5, 2, "prepare", "x", "active");
      f.refusedAs(5, 2, "view", "x", "view");
      f.refused(5, "commit", "c", "view");
      f.refused(5, "commit", "c", "base");
      f.refused(4, "commit", "base", "active");
      if (f.via === "stor") f.refused(2, "prepare", "");
      // containerd's database refuses the empty key itself (Unknown), after stor made `NS/ID/`.
      else expect(f.run("prepare", "")).toMatchObject({ code: 1, stderr: expect.stringContaining("bucket name required") });
      f.refused(2, "prepare", "x".repeat(4097));
      // Nothing half-made: only the snapshots that succeeded exist (through ctr, stor's own
      // snapshots are checked when the test ends: none may outlive containerd's).
      f.storOnly("ctr ls has no --format json", () => expect(f.ok("ls", "--format", "json")).toContain('"Name": "view"'));
      expect(f.names()).toEqual(["active", "base", "view"]);
    });

    test("view of nothing is an empty read-only tree", (f) => {
      f.ok("view", "empty");
      expect(f.withMount("empty", (d) => readdirSync(d))).toEqual([]);
    });

    test("labels: set at prepare, updated, removed with K=", (f) => {
      const [a, b, c] = ["a", "b", "c"].map((k) => f.labelKey(k)) as [string, string, string];
      if (f.via === "stor") f.ok("prepare", "-l", `${a}=1`, "-l", `${b}=2`, "k");
      else {
        f.ok("prepare", "k"); // ctr prepare has no -l
        f.ok("label", "k", `${a}=1`, `${b}=2`);
      }
      expect(f.info("k").Labels).toEqual({ [a]: "1", [b]: "2" });
      const before = f.info("k").Updated as string;
      expect(f.labelLine(f.ok("label", "k", `${c}=3`, `${a}=`))).toBe(`${b}=2,${c}=3\n`);
      const after = f.info("k");
      expect(after.Labels).toEqual({ [b]: "2", [c]: "3" });
      expect(after.Updated as string > before).toBe(true);
      expect(after.Created).toBe(f.info("k").Created as string);
      expect(f.labelLine(f.ok("label", "k"))).toBe(`${b}=2,${c}=3\n`);
      // The committed snapshot has the commit's labels only: containerd carries none of the active's over.
      if (f.via === "stor") {
        f.ok("commit", "-l", "d=4", "kc", "k");
        expect(f.info("kc").Labels).toEqual({ d: "4" });
      } else {
        f.ok("commit", "kc", "k"); // ctr commit has no -l
        expect(f.info("kc").Labels).toBeUndefined();
      }
      f.refused(3, "label", "nosuch", `${a}=1`);
      f.ok("label", "kc", a); // a bare KEY is KEY=true, as ctr reads it
      expect((f.info("kc").Labels as Record<string, string>)[a]).toBe("true");
    });

    test("remove: children first, then the parent", (f) => {
      f.layer("p", undefined, () => {});
      f.ok("prepare", "c", "p");
      const r = f.refused(5, "rm", "p");
      f.storOnly("ctr prints containerd's message", () => expect(r.stderr).toBe('stor: snapshot "p": has children\n'));
      f.ok("rm", "c");
      f.ok("rm", "p");
      f.refused(3, "rm", "p");
      expect(f.names()).toEqual([]);
      // No directory outlives its snapshot (through ctr: once containerd's garbage collector,
      // which removes stor's snapshot after ctr rm, has run).
      expect(readdirSync(join(f.root.path, "snapshots", name, "snapshots"))).toEqual([]);
    });

    test("walk lists every snapshot with parent and kind", (f) => {
      f.layer("b", undefined, () => {});
      f.ok("prepare", "a");
      f.ok("prepare", "c", "b");
      f.ok("view", "v", "b");
      expect(f.ok("ls")).toBe(
        "KEY PARENT KIND      \na          Active    \nb          Committed \nc   b      Active    \nv   b      View      \n",
      );
      expect(f.ok("tree")).toBe(" a\n b\n  \\_ c\n  \\_ v\n");
    });

    test("a file updated in each layer shows its latest content", (f) => {
      f.layer("l1", undefined, (d) => writeFileSync(join(d, "foo"), "1"));
      f.layer("l2", "l1", (d) => writeFileSync(join(d, "foo"), "2"));
      f.layer("l3", "l2", (d) => writeFileSync(join(d, "foo"), "3"));
      expect(["l1", "l2", "l3"].map((l) => f.inView(l, (d) => read(join(d, "foo"))))).toEqual(["1", "2", "3"]);
    });

    test("a directory of a lower layer removed in a child", (f) => {
      f.layer("l1", undefined, (d) => {
        mkdirSync(join(d, "lib/sub"), { recursive: true });
        writeFileSync(join(d, "lib/sub/f"), "f");
        writeFileSync(join(d, "keep"), "k");
      });
      f.layer("l2", "l1", (d) => rmSync(join(d, "lib"), { recursive: true }));
      expect(f.inView("l2", (d) => readdirSync(d))).toEqual(["keep"]);
      expect(f.inView("l1", (d) => existsSync(join(d, "lib/sub/f")))).toBe(true);
    });

    test("chown in a child layer", (f) => {
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

    test("directory permission survives commit", (f) => {
      f.layer("l1", undefined, (d) => {
        mkdirSync(join(d, "dir"));
        chmodSync(join(d, "dir"), 0o777);
      });
      f.layer("l2", "l1", (d) => chmodSync(join(d, "dir"), 0o700));
      expect(f.inView("l2", (d) => statSync(join(d, "dir")).mode & 0o7777)).toBe(0o700);
      expect(f.inView("l1", (d) => statSync(join(d, "dir")).mode & 0o7777)).toBe(0o777);
    });

    test("an intermediate snapshot cannot be removed", (f) => {
      f.layer("a", undefined, () => {});
      f.layer("b", "a", () => {});
      f.layer("c", "b", () => {});
      f.refused(5, "rm", "b");
      f.refused(5, "rm", "a");
      f.ok("rm", "c", "b", "a");
      expect(f.ok("ls")).toBe("KEY PARENT KIND \n");
    });

    test("files deleted in a child are gone in the grandchild", (f) => {
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

    test("a file moved from a lower layer", (f) => {
      f.layer("l1", undefined, (d) => {
        mkdirSync(join(d, "a"));
        mkdirSync(join(d, "b"));
        writeFileSync(join(d, "a/f"), "moved");
      });
      f.layer("l2", "l1", (d) => renameSync(join(d, "a/f"), join(d, "b/f")));
      expect(f.inView("l2", (d) => [readdirSync(join(d, "a")), read(join(d, "b/f"))])).toEqual([[], "moved"]);
    });

    test("a directory renamed in a child", (f) => {
      f.layer("l1", undefined, (d) => {
        mkdirSync(join(d, "old/sub"), { recursive: true });
        writeFileSync(join(d, "old/sub/f"), "f");
      });
      // As a user renames: overlay without redirect_dir answers EXDEV and mv copies instead.
      f.layer("l2", "l1", (d) => must(`mv ${d}/old ${d}/new`));
      f.layer("l3", "l2", () => {});
      expect(f.inView("l3", (d) => [readdirSync(d), read(join(d, "new/sub/f"))])).toEqual([["new"], "f"]);
    });

    test("views are read-only", (f) => {
      f.layer("l1", undefined, (d) => writeFileSync(join(d, "f"), "f"));
      f.ok("view", "v", "l1");
      f.withMount("v", (d) => {
        expect(() => writeFileSync(join(d, "new"), "x")).toThrow(/read-only/);
        expect(() => writeFileSync(join(d, "f"), "x")).toThrow(/read-only/);
      });
      expect(f.inView("l1", (d) => readdirSync(d))).toEqual(["f"]);
    });

    test("the root of a new snapshot is 0755", (f) => {
      f.ok("prepare", "k");
      expect(f.withMount("k", (d) => statSync(d).mode & 0o7777)).toBe(0o755);
    });

    test("usage: measured for active, recorded at commit, zero for views", (f) => {
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
      f.refused(3, "usage", "nosuch");
    });

    test("mounts printed as ctr prints them", (f) => {
      f.ok("prepare", "a");
      const out = f.ok("mounts", "/T", "a");
      expect(out).toMatch(/^mount -t bind \/\S+ \/T -o (rw,rbind|rbind,rw)\n$/);
      const json = JSON.parse(f.ok("prepare", "--mounts", "b"));
      expect(json).toHaveLength(1);
      expect(Object.keys(json[0])).toEqual(["Type", "Source", "Options"]);
      expect(f.ok("prepare", "-t", "/T", "c")).toMatch(/^mount -t bind \S+ \/T -o /);
      f.refused(3, "mounts", "/T", "nosuch");
    });

    test("cleanup removes directories no snapshot owns and keeps the rest", (f) => {
      f.layer("l1", undefined, (d) => writeFileSync(join(d, "f"), "f"));
      const dirs = join(f.root.path, "snapshots", name, "snapshots");
      mkdirSync(join(dirs, "new-crashed"));
      mkdirSync(join(dirs, "999"));
      if (f.via === "stor") {
        const removed = f.ok("cleanup").trim().split("\n").sort();
        expect(removed).toEqual(["999", "new-crashed"]);
      } else {
        // ctr has no cleanup: containerd's garbage collector calls Cleanup after it has removed
        // snapshots, so one is removed (the route's rm returns once that collection is over).
        f.ok("prepare", "scratch");
        f.ok("rm", "scratch");
      }
      expect(readdirSync(dirs)).toHaveLength(1);
      expect(f.inView("l1", (d) => read(join(d, "f")))).toBe("f");
      f.storOnly("ctr has no cleanup command", () => expect(f.ok("cleanup")).toBe(""));
    });
  });
}
