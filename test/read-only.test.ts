/**
 * Read-only commands open the metadata read-only and create nothing: a missing root is not
 * found, an unused root lists as empty without a database appearing, and a root on a read-only
 * filesystem can be listed.
 */
import { Database } from "bun:sqlite";
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, readdirSync, renameSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { LoopFs, STOR, TestRoot, isRoot, must, need, sh, type Result } from "./helpers.ts";

/** Every read-only command, as argv after the global options. */
const READ_ONLY = [
  ["snapshot", "ls"],
  ["snapshot", "info", "k"],
  ["snapshot", "mounts", "/t", "k"],
  ["snapshot", "usage"],
  ["snapshot", "tree"],
  ["snapshot", "changes", "k"],
  ["snapshot", "diff", "-o", "/dev/null", "k"],
  ["volume", "ls"],
  ["volume", "inspect", "vol"],
  ["df"],
];

/**
 * Makes the database at `path` self-contained, as an older stor (which checkpointed at every
 * close, and did not keep its WAL) left it: its WAL copied in, and the -wal and -shm files gone.
 */
function settle(path: string): void {
  const db = new Database(path);
  db.run("PRAGMA wal_checkpoint(TRUNCATE)");
  db.close();
  expect(existsSync(`${path}-wal`)).toBe(false);
}

/** Every path below `dir`, with its size: what a command must leave as it found it. */
function tree(dir: string): string[] {
  return must(`find ${dir} -printf '%P %s\\n' | sort`).split("\n");
}

test.each(READ_ONLY)("on a missing root, %s %s is not found and makes nothing", (...argv) => {
  const missing = `/tmp/stor-no-such-root-${process.pid}/deeper`;
  const r = sh([STOR, "--root", missing, "--config", "/dev/null", ...argv]);
  // inspect prints what it found, as docker does for names it cannot find: nothing.
  expect([r.code, r.stderr, r.stdout]).toEqual([3, `stor: root ${missing}: not found\n`, argv[1] === "inspect" ? "[]\n" : ""]);
  expect(existsSync(`/tmp/stor-no-such-root-${process.pid}`)).toBe(false);
});

/**
 * Every command that changes only what is there, as argv after the global options, and what it
 * exits with on a root that has no store: not found where it names something, else nothing done.
 */
const CHANGE_ONLY: [argv: string[], code: number][] = [
  [["snapshot", "-s", "native", "rm", "k"], 3],
  [["snapshot", "-s", "overlay", "commit", "c", "k"], 3],
  [["snapshot", "-s", "native", "label", "k", "a=b"], 3],
  [["snapshot", "-s", "native", "apply", "k", "/dev/null"], 3],
  [["snapshot", "-s", "overlay", "cleanup"], 0],
  [["volume", "rm", "vol"], 3],
  [["volume", "rm", "-f", "vol"], 0],
  [["volume", "prune", "-a", "-f"], 0],
  [["volume", "mount", "vol", "ref"], 3],
  [["volume", "unmount", "vol", "ref"], 3],
];

/**
 * Runs `fn` with `stor` on the root at `name` below a scratch directory, which is made and removed
 * here; `fn` is given the root's path and the scratch's too.
 */
function withRootAt(name: string, fn: (stor: (...argv: string[]) => Result, root: string, scratch: string) => void): void {
  const r = new TestRoot();
  try {
    const root = join(r.path, name);
    fn((...argv) => sh([STOR, "--root", root, "--config", "/dev/null", ...argv]), root, r.path);
  } finally {
    r.close();
  }
}

test.each(CHANGE_ONLY)("on a root with no store, %p makes none and exits %p", (argv, code) =>
  withRootAt("root", (stor, root, scratch) => {
    mkdirSync(root);
    expect(stor(...argv).code).toBe(code);
    expect(readdirSync(root)).toEqual([]);
    // On a root never made, each is not found, as a read is: a mistyped --root makes no root.
    const missing = join(scratch, "not/made");
    expect(sh([STOR, "--root", missing, "--config", "/dev/null", ...argv])).toMatchObject({ code: 3, stderr: `stor: root ${missing}: not found\n` });
    expect(existsSync(join(scratch, "not"))).toBe(false);
  }),
);

test("a change without -s, on a root where another snapshotter has the only store, makes none for the one chosen", () =>
  withRootAt("root", (stor, root) => {
    expect(stor("snapshot", "-s", "native", "prepare", "a").code).toBe(0);
    expect(stor("snapshot", "rm", "nope")).toMatchObject({ code: 3, stderr: 'stor: snapshot "nope": not found\n' });
    expect(stor("snapshot", "cleanup")).toMatchObject({ code: 0, stdout: "" });
    expect(readdirSync(join(root, "snapshots"))).toEqual(["native"]);
  }));

test("a command that writes still makes a missing root", () =>
  withRootAt("new/root", (stor, root) => {
    expect(stor("snapshot", "-s", "native", "prepare", "a").code).toBe(0);
    expect(stor("volume", "create", "vol").code).toBe(0);
    expect(readdirSync(root).sort()).toEqual(["restore.lock", "serve.lock", "snapshots", "volumes"]);
  }));

test("a database a writer has made but not set up yet (or was killed before it did) reads as never made", () => {
  const r = new TestRoot();
  try {
    // The state between a writer's open, which makes the file, and its schema's transaction.
    for (const db of ["snapshots/native/metadata.db", "volumes/.meta/metadata.db"]) {
      mkdirSync(dirname(join(r.path, db)), { recursive: true });
      writeFileSync(join(r.path, db), "");
    }
    expect(r.ok(["snapshot", "-s", "native", "ls"])).toBe("KEY PARENT KIND \n");
    expect(r.stor(["snapshot", "-s", "native", "info", "k"])).toMatchObject({ code: 3, stderr: 'stor: snapshot "k": not found\n' });
    expect(r.ok(["volume", "ls", "-q"])).toBe("");
    // A writer then sets it up.
    r.ok(["snapshot", "-s", "native", "prepare", "k"]);
    r.ok(["volume", "create", "vol"]);
    expect(r.ok(["snapshot", "-s", "native", "ls"])).toBe("KEY PARENT KIND   \nk          Active \n");
    expect(r.ok(["volume", "ls", "-q"])).toBe("vol\n");
  } finally {
    r.close();
  }
});

describe("an existing root", () => {
  let r: TestRoot;
  beforeAll(() => {
    r = new TestRoot();
  });
  afterAll(() => r.close());

  test("with nothing in it lists as empty and stays empty", () => {
    const before = tree(r.path);
    expect(r.ok(["snapshot", "-s", "native", "ls"])).toBe("KEY PARENT KIND \n");
    expect(r.ok(["snapshot", "tree"])).toBe("");
    expect(r.ok(["volume", "ls", "-q"])).toBe("");
    expect(r.ok(["df", "--format", "json"]).trim().split("\n").map((l) => JSON.parse(l).TotalCount)).toEqual(["0", "0", "0", "0"]);
    expect(r.stor(["snapshot", "-s", "native", "info", "k"]).stderr).toBe('stor: snapshot "k": not found\n');
    expect(tree(r.path)).toEqual(before);
  });

  const readAll = () => {
    for (const argv of READ_ONLY) r.ok(argv[0] === "volume" || argv[0] === "df" ? argv : [argv[0]!, "-s", "native", ...argv.slice(1)]);
  };

  test("in use, a read changes no file, the WAL the writers keep included", () => {
    r.ok(["snapshot", "-s", "native", "prepare", "k"]);
    r.ok(["volume", "create", "vol"]);
    const before = tree(r.path);
    expect(before.filter((p) => /metadata\.db-wal [1-9]/.test(p))).toHaveLength(2);
    readAll();
    expect(tree(r.path)).toEqual(before);
  });

  test("with self-contained databases, a read leaves no database side file behind", () => {
    settle(join(r.path, "snapshots/native/metadata.db"));
    settle(join(r.path, "volumes/.meta/metadata.db"));
    const before = tree(r.path);
    readAll();
    expect(tree(r.path)).toEqual(before);
    expect(before.filter((p) => /-(wal|shm)\b/.test(p))).toEqual([]);
  });
});

describe("a root on a read-only filesystem", () => {
  let fs: LoopFs | undefined;
  let r: TestRoot;
  beforeAll(() => {
    if (!isRoot()) return;
    fs = new LoopFs("ext4", 64);
    r = new TestRoot("stor-ro-", fs.mountPoint);
    r.ok(["snapshot", "-s", "native", "prepare", "a"]);
    writeFileSync(join(r.path, "snapshots/native/snapshots/1/f"), "f");
    r.ok(["snapshot", "-s", "native", "commit", "base", "a"]);
    r.ok(["snapshot", "-s", "native", "prepare", "k", "base"]);
    writeFileSync(join(r.path, "snapshots/native/snapshots/2/g"), "g");
    r.ok(["volume", "create", "vol"]);
    must(`mount -o remount,ro ${fs.mountPoint}`);
  });
  afterAll(() => {
    if (!fs) return;
    must(`mount -o remount,rw ${fs.mountPoint}`);
    r.close();
    fs.close();
  });

  test.skipIf(!need(isRoot(), "a loop filesystem needs root"))("lists, inspects and diffs", () => {
    const s = (...a: string[]) => r.ok(["snapshot", "-s", "native", ...a]);
    expect(s("ls")).toBe("KEY  PARENT KIND      \nbase        Committed \nk    base   Active    \n");
    expect(JSON.parse(s("info", "k"))).toMatchObject({ Kind: "Active", Name: "k", Parent: "base" });
    expect(s("tree")).toBe(" base\n  \\_ k\n");
    expect(s("changes", "k")).toBe("A /g\n");
    expect(s("usage", "-b", "base")).toMatch(/^KEY +SIZE +INODES \nbase +\d+ +2 +\n$/);
    expect(s("mounts", "/t", "k")).toMatch(/^mount -t bind \S+\/snapshots\/native\/snapshots\/2 \/t -o rbind,rw\n$/);
    expect(r.ok(["volume", "ls", "-q"])).toBe("vol\n");
    expect(JSON.parse(r.ok(["volume", "inspect", "vol"]))[0].Name).toBe("vol");
    expect(r.ok(["df", "--format", "json"]).trim().split("\n").map((l) => JSON.parse(l).TotalCount)).toEqual(["0", "0", "2", "1"]);
    // A command that writes says why it cannot.
    const res = r.stor(["snapshot", "-s", "native", "prepare", "x"]);
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/read-only file system/);
  });
});

test.skipIf(!need(isRoot(), "bind mounts need root"))("a read-only bind of a root in use sees what its writers wrote, through SQLite's shared memory", () => {
  const r = new TestRoot();
  const ro = r.dir("ro");
  // A connection held open, as a running stor serve holds one: the -wal and -shm files stay, and
  // nothing is checkpointed into the database file.
  r.ok(["snapshot", "-s", "native", "prepare", "a"]);
  const held = new Database(join(r.path, "snapshots/native/metadata.db"));
  try {
    held.query("SELECT count(*) FROM snapshots").get();
    r.ok(["snapshot", "-s", "native", "prepare", "b"]); // in the WAL only
    must(`mount --bind ${r.path} ${ro} && mount -o remount,bind,ro ${ro}`);
    const res = sh([STOR, "--root", ro, "--config", "/dev/null", "snapshot", "-s", "native", "ls"]);
    expect([res.code, res.stderr, res.stdout]).toEqual([0, "", "KEY PARENT KIND   \na          Active \nb          Active \n"]);
  } finally {
    held.close();
    r.close();
  }
});

test("volume ls of a root of the older layout reads its database where it is, and moves nothing", () => {
  const r = new TestRoot();
  try {
    r.ok(["volume", "create", "kept"]);
    const vols = join(r.path, "volumes");
    settle(join(vols, ".meta/metadata.db"));
    renameSync(join(vols, ".meta/metadata.db"), join(vols, "metadata.db"));
    const before = tree(r.path);
    expect(r.ok(["volume", "ls", "-q"])).toBe("kept\n");
    expect(JSON.parse(r.ok(["volume", "inspect", "kept"]))[0].Name).toBe("kept");
    expect(tree(r.path)).toEqual(before);
    r.ok(["volume", "create", "other"]); // a command that writes migrates it
    expect(existsSync(join(vols, "metadata.db"))).toBe(false);
    expect(r.ok(["volume", "ls", "-q"])).toBe("kept\nother\n");
  } finally {
    r.close();
  }
});
