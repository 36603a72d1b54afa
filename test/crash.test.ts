/**
 * Crash consistency: stor killed with SIGKILL at named points and at random instants during
 * prepare, commit and rm; after recovery every listed snapshot has its complete directory and no
 * directory is left without a snapshot.
 */
import { Database } from "bun:sqlite";
import { afterEach, expect, test } from "bun:test";
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { STOR, TestRoot, have, isRoot, must, need, sh, simulateReboot, typicalSpan } from "./helpers.ts";
import { listing, writableTree } from "./layer-helpers.ts";

const TRIALS = Number(process.env.STOR_CRASH_TRIALS ?? (process.env.CI === "true" ? 60 : 150));
const PARENT_FILES = 400;

let r: TestRoot | undefined;
afterEach(() => r?.close(), 120_000);

/** Recovers the root as at boot. */
function recover(root: TestRoot) {
  return root.ok(["restore"]);
}

/** Checks the invariants; returns what is wrong (empty when consistent). */
function violations(root: TestRoot, sn: string): string[] {
  const home = join(root.path, "snapshots", sn);
  if (!existsSync(join(home, "metadata.db"))) return [];
  const db = new Database(join(home, "metadata.db"), { readonly: true });
  const rows = db.query<{ id: number; key: string; kind: string; parent_id: number | null }, []>("SELECT id, key, kind, parent_id FROM snapshots").all();
  const check = db.query<{ quick_check: string }, []>("PRAGMA quick_check").get()!.quick_check;
  db.close();
  const wrong: string[] = check === "ok" ? [] : [`quick_check: ${check}`];
  const dirs = new Set(readdirSync(join(home, "snapshots")));
  for (const row of rows) {
    const dir = join(home, "snapshots", String(row.id));
    if (!dirs.delete(String(row.id))) wrong.push(`snapshot ${row.key} has no directory`);
    else if (sn === "overlay" && !existsSync(join(dir, "fs"))) wrong.push(`snapshot ${row.key} has no fs`);
    else if (sn === "overlay" && row.kind === "active" && !existsSync(join(dir, "work"))) wrong.push(`snapshot ${row.key} has no work`);
    else if (sn === "btrfs" && statSync(join(dir, "sv")).ino !== 256) wrong.push(`snapshot ${row.key} has no subvolume`);
    else if (sn !== "overlay" && row.kind !== "view" && row.parent_id !== null) {
      const n = readdirSync(sn === "btrfs" ? join(dir, "sv/fs") : dir).length;
      if (n !== PARENT_FILES && n !== PARENT_FILES + 1) wrong.push(`snapshot ${row.key} is incomplete: ${n} entries`);
    }
  }
  for (const d of dirs) wrong.push(`directory ${d} has no snapshot`);
  return wrong;
}

function setup(sn: string): TestRoot {
  const root = TestRoot.for(sn);
  root.ok(["snapshot", "-s", sn, "prepare", "base-a"]);
  const dir = writableTree(root, sn, "base-a");
  for (let i = 0; i < PARENT_FILES; i++) writeFileSync(join(dir, `f${i}`), Buffer.alloc(4096 * (1 + (i % 8)), i));
  root.ok(["snapshot", "-s", sn, "commit", "base", "base-a"]);
  return root;
}

for (const sn of ["native", "overlay", "btrfs"]) {
  for (const [point, args] of [
    ["prepare:made", ["prepare", "k", "base"]],
    ["prepare:populated", ["prepare", "k", "base"]],
    ["prepare:renamed", ["prepare", "k", "base"]],
    ["commit:updated", ["commit", "c", "pre"]],
    ["commit:committed", ["commit", "c", "pre"]],
    ["remove:deleted", ["rm", "pre"]],
    ["cleanup:renamed", ["cleanup"]],
  ] as const) {
    test.skipIf(!need(isRoot(), "snapshot directories are owned by root"))(`${sn}: killed at ${point}, then recovered`, () => {
      r = setup(sn);
      r.ok(["snapshot", "-s", sn, "prepare", "pre", "base"]);
      if (point === "cleanup:renamed") writeFileSync(join(r.path, "snapshots", sn, "snapshots", "new-stale"), "");
      const res = r.stor(["snapshot", "-s", sn, ...args], { env: { STOR_FAILPOINT: point } });
      expect(res.code).not.toBe(0); // it died at the point
      recover(r);
      expect(violations(r, sn)).toEqual([]);
      // The operation either happened whole or not at all, and can be done again.
      const names = JSON.parse(r.ok(["snapshot", "-s", sn, "ls", "--format", "json"])).map((i: { Name: string }) => i.Name);
      if (point.startsWith("prepare")) expect(names.includes("k") ? r.stor(["snapshot", "-s", sn, "rm", "k"]).code : 0).toBe(0);
      if (point.startsWith("commit")) expect(names).toContain(names.includes("c") ? "c" : "pre");
      // Committed is sealed, however late the kill came: restore seals what the commit did not.
      if (point === "commit:committed" && sn === "btrfs") expect(must(`btrfs property get ${join(r.path, "snapshots/btrfs/snapshots/2/sv")} ro`)).toBe("ro=true\n");
      if (point === "remove:deleted") expect(names).not.toContain("pre");
      r.ok(["snapshot", "-s", sn, "prepare", "again", "base"]);
      expect(violations(r, sn)).toEqual([]);
    });
  }

  test.skipIf(!need(isRoot(), "snapshot directories are owned by root"))(`${sn}: killed at random instants during prepare, commit and rm (${TRIALS} trials)`, async () => {
    r = setup(sn);
    // Kill instants spread over a whole prepare, start-up included.
    const root = r; // a closure does not see r narrowed
    const span = typicalSpan(
      () => root.ok(["snapshot", "-s", sn, "prepare", "timing", "base"]),
      () => root.ok(["snapshot", "-s", sn, "rm", "timing"]),
    );
    const failures: string[] = [];
    let killed = 0;
    for (let t = 0; t < TRIALS; t++) {
      const names = JSON.parse(r.ok(["snapshot", "-s", sn, "ls", "--format", "json"])) as { Name: string; Kind: string }[];
      const active = names.filter((n) => n.Kind === "Active").map((n) => n.Name);
      const leaves = names.filter((n) => n.Name !== "base" && n.Name !== "base-a").map((n) => n.Name);
      const op = t % 3;
      const args =
        op === 0 || active.length === 0 ? ["prepare", `p${t}`, "base"]
        : op === 1 ? ["commit", `c${t}`, active[0]!]
        : ["rm", leaves[0] ?? active[0]!];
      const p = Bun.spawn([STOR, "--root", r.path, "--config", r.config, "snapshot", "-s", sn, ...args], { stdout: "ignore", stderr: "ignore" });
      await Bun.sleep(Math.random() * span);
      p.kill("SIGKILL");
      if ((await p.exited) !== 0) killed++;
      recover(r);
      const wrong = violations(r, sn);
      if (wrong.length) failures.push(`trial ${t} (${args.join(" ")}): ${wrong.join("; ")}`);
    }
    console.log(`${sn}: ${TRIALS} trials over ${span.toFixed(0)} ms, ${killed} killed before finishing, ${failures.length} inconsistent`);
    expect(failures).toEqual([]);
    expect(killed).toBeGreaterThan(TRIALS / 4); // the kills really landed before the end
  }, 600_000);
}

test.skipIf(!need(isRoot(), "mounts need root"))("stor restore: stray mounts and directories go, a damaged database is reported, twice changes nothing", () => {
  r = setup("overlay");
  r.ok(["snapshot", "-s", "native", "prepare", "n"]);
  const dirs = join(r.path, "snapshots/overlay/snapshots");
  mkdirSync(join(dirs, "new-crashed"));
  mkdirSync(join(dirs, "77"));
  const stray = join(r.path, "snapshots/overlay/stray-mount");
  mkdirSync(stray);
  // A snapshot's mount below the root (stor mount refuses such a target; another tool made it).
  const [view] = JSON.parse(r.ok(["snapshot", "-s", "overlay", "view", "--mounts", "v", "base"]));
  must(`mount --bind -o ro ${view.Source} ${stray}`);
  simulateReboot(r.path);
  const out = r.ok(["restore"]).split("\n").filter(Boolean).sort();
  expect(out).toEqual([
    "removed snapshot directory overlay/77: no snapshot owns it",
    "removed snapshot directory overlay/new-crashed: no snapshot owns it",
    `unmounted ${stray}`,
  ]);
  expect(violations(r, "overlay")).toEqual([]);
  expect(r.ok(["restore"])).toBe("");
  expect(JSON.parse(r.ok(["restore", "--format", "json"])).Snapshots).toEqual([
    { Snapshotter: "overlay", Snapshots: 2, Removed: [] },
    { Snapshotter: "native", Snapshots: 1, Removed: [] },
  ]);

  // A damaged database: restore says so, exits 1, and removes nothing on its word.
  const db = join(r.path, "snapshots/native/metadata.db");
  const bytes = readFileSync(db);
  bytes.fill(0x55, 4096, 8192); // garble the second page
  writeFileSync(db, bytes);
  mkdirSync(join(r.path, "snapshots/native/snapshots/500"));
  const res = r.stor(["restore"]);
  expect(res.code).toBe(1);
  expect(res.stdout).toMatch(/^snapshotter native: metadata damaged, nothing removed: /m);
  expect(res.stderr).toBe("stor: restore: metadata of snapshotter native is damaged; nothing of it was removed\n");
  expect(existsSync(join(r.path, "snapshots/native/snapshots/500"))).toBe(true);
});

for (const sn of ["native", "overlay", "btrfs"]) {
  test.skipIf(!need(isRoot(), "snapshot directories are owned by root"))(`${sn}: killed at random instants during apply: restore is consistent and the parent untouched`, async () => {
    r = setup(sn);
    const layer = join(r.path, "..", `${r.path.split("/").pop()}-layer.tar`);
    // A layer of a few hundred files: the changes of a snapshot that adds them.
    r.ok(["snapshot", "-s", sn, "prepare", "src", "base"]);
    const upper = writableTree(r, sn, "src");
    mkdirSync(join(upper, "added"));
    for (let i = 0; i < 300; i++) writeFileSync(join(upper, "added", `a${i}`), Buffer.alloc(8192, i));
    r.ok(["snapshot", "-s", sn, "diff", "-o", layer, "src"]);
    r.ok(["snapshot", "-s", sn, "rm", "src"]);
    // The committed parent's bytes, names and metadata, to compare after the kills.
    const baseDir = join(r.path, "snapshots", sn, "snapshots", "1", ...({ native: [], overlay: ["fs"], btrfs: ["sv", "fs"] }[sn] ?? []));
    const digest = () => must(`tar -C ${baseDir} --xattrs --pax-option=delete=atime,delete=ctime -cf - . | sha256sum`);
    const before = digest();
    r.ok(["snapshot", "-s", sn, "prepare", "timing", "base"]);
    const root = r; // a closure does not see r narrowed
    const span = typicalSpan(
      () => root.ok(["snapshot", "-s", sn, "apply", "timing", layer]),
      () => {
        root.ok(["snapshot", "-s", sn, "rm", "timing"]);
        root.ok(["snapshot", "-s", sn, "prepare", "timing", "base"]);
      },
      3,
    );
    r.ok(["snapshot", "-s", sn, "rm", "timing"]);
    const failures: string[] = [];
    let killed = 0;
    for (let t = 0; t < TRIALS / 3; t++) {
      r.ok(["snapshot", "-s", sn, "prepare", `ap${t}`, "base"]);
      const p = Bun.spawn([STOR, "--root", r.path, "--config", r.config, "snapshot", "-s", sn, "apply", `ap${t}`, layer], { stdout: "ignore", stderr: "ignore" });
      await Bun.sleep(Math.random() * span);
      p.kill("SIGKILL");
      if ((await p.exited) !== 0) killed++;
      recover(r);
      const wrong = violations(r, sn);
      if (wrong.length) failures.push(`trial ${t}: ${wrong.join("; ")}`);
      // An interrupted apply leaves an active snapshot that can be removed, never a broken parent.
      r.ok(["snapshot", "-s", sn, "rm", `ap${t}`]);
    }
    console.log(`${sn} apply: ${Math.floor(TRIALS / 3)} trials over ${span.toFixed(0)} ms, ${killed} killed before finishing, ${failures.length} inconsistent`);
    expect(failures).toEqual([]);
    expect(digest()).toBe(before);
    expect(killed).toBeGreaterThan(0);
  }, 600_000);
}

/** The directory beside snapshot `key`'s upper directory, where an apply keeps its trash. */
function besideUpper(r: TestRoot, sn: string, key: string): string {
  return dirname(writableTree(r, sn, key));
}

test.skipIf(!need(isRoot(), "btrfs loop devices need root")).each(["overlay", "native", "btrfs"])(
  "on %s, cleanup removes the trash a crashed apply left, and not one an apply holds", async (sn) => {
    const r = TestRoot.for(sn, "stor-apply-trash-");
    const holder = { proc: undefined as ReturnType<typeof Bun.spawn> | undefined };
    try {
      r.ok(["-s", sn, "snapshot", "prepare", "k"]);
      const beside = besideUpper(r, sn, "k");
      const dead = join(beside, "new-apply-dead");
      const live = join(beside, "new-apply-live");
      mkdirSync(join(dead, "1"), { recursive: true });
      writeFileSync(join(dead, "1", "f"), "what the apply deleted");
      mkdirSync(live);
      holder.proc = Bun.spawn(["flock", live, "sleep", "60"]);
      for (let i = 0; i < 200 && sh(["flock", "-n", live, "true"]).code === 0; i++) await Bun.sleep(10);
      expect(sh(["flock", "-n", live, "true"]).code).not.toBe(0);
      r.ok(["-s", sn, "snapshot", "cleanup"]);
      expect([existsSync(dead), existsSync(live)]).toEqual([false, true]);
    } finally {
      holder.proc?.kill();
      await holder.proc?.exited;
      r.close();
    }
  },
);

for (const sn of ["native", "overlay"]) {
  test.skipIf(!need(isRoot(), "snapshot directories are owned by root"))(`${sn}: a leftover whose trash name a crashed cleanup left taken is still removed, by cleanup and by restore`, () => {
    r = setup(sn); // snapshot 1, "base", with files: a copy of it is no empty directory
    const dirs = join(r.path, "snapshots", sn, "snapshots");
    const crash = (point: string, ...args: string[]) => expect(r!.stor(["snapshot", "-s", sn, ...args], { env: { STOR_FAILPOINT: point } }).code).not.toBe(0);
    crash("prepare:renamed", "prepare", "a", "base"); // orphan directory 2
    crash("cleanup:renamed", "cleanup"); // 2 renamed to its trash, not removed
    crash("prepare:renamed", "prepare", "a", "base"); // id 2 handed out again (its row rolled back): orphan 2 again
    expect(readdirSync(dirs).sort()).toEqual(["1", "2", "rm-2"]);
    const removed = r.ok(["snapshot", "-s", sn, "cleanup"]).split("\n").filter(Boolean);
    expect(removed).toHaveLength(2);
    expect(removed).toContain("rm-2");
    expect(readdirSync(dirs)).toEqual(["1"]);

    crash("prepare:renamed", "prepare", "a", "base");
    crash("cleanup:renamed", "cleanup");
    crash("prepare:renamed", "prepare", "a", "base");
    const res = r.stor(["restore"]);
    expect([res.code, res.stderr]).toEqual([0, ""]);
    expect(res.stdout).toContain(`removed snapshot directory ${sn}/rm-2: no snapshot owns it`);
    expect(readdirSync(dirs)).toEqual(["1"]);
  });
}

test.skipIf(!need(isRoot(), "chattr +i needs root"))("cleanup: a leftover that cannot be moved is said and left; the others are removed", () => {
  r = new TestRoot();
  r.ok(["snapshot", "-s", "native", "prepare", "made"]); // makes the snapshotter's directories
  r.ok(["snapshot", "-s", "native", "rm", "made"]);
  const dirs = join(r.path, "snapshots/native/snapshots");
  for (const n of ["7", "8", "9"]) mkdirSync(join(dirs, n));
  must(`chattr +i ${join(dirs, "8")}`); // rename(2) of it fails: EPERM
  try {
    const res = r.stor(["snapshot", "-s", "native", "cleanup"]);
    expect([res.code, res.stdout.split("\n").filter(Boolean).sort()]).toEqual([0, ["7", "9"]]);
    expect(res.stderr).toContain(`cleanup: ${join(dirs, "8")} is left: `);
    expect(readdirSync(dirs)).toEqual(["8"]);
  } finally {
    must(`chattr -i ${join(dirs, "8")}`);
  }
});

for (const sn of ["native", "overlay"]) {
  test.skipIf(!need(isRoot(), "chattr +i needs root"))(`${sn}: rm of a snapshot whose tree cannot all go removes it, says what is left, and goes on; cleanup takes the rest once it can`, () => {
    r = TestRoot.for(sn);
    r.ok(["snapshot", "-s", sn, "prepare", "a"]);
    r.ok(["snapshot", "-s", sn, "prepare", "b"]);
    const stuck = join(writableTree(r, sn, "a"), "f");
    writeFileSync(stuck, "data");
    must(`chattr +i ${stuck}`); // unlink(2) of it fails: EPERM
    const dirs = join(r.path, `snapshots/${sn}/snapshots`);
    try {
      const res = r.stor(["snapshot", "-s", sn, "rm", "a", "b"]);
      expect([res.code, res.stdout]).toEqual([0, ""]);
      expect(res.stderr).toStartWith(`stor: warn: snapshot "a" is removed, but ${join(dirs, "rm-1")} is left for cleanup: `);
      expect(r.ok(["snapshot", "-s", sn, "ls"]).split("\n").filter(Boolean)).toHaveLength(1); // the heading only
      expect(readdirSync(dirs)).toEqual(["rm-1"]);
    } finally {
      must(`chattr -i ${stuck.replace(join(dirs, "1"), join(dirs, "rm-1"))}`);
    }
    expect(r.ok(["snapshot", "-s", sn, "cleanup"])).toBe("rm-1\n");
    expect(readdirSync(dirs)).toEqual([]);
  });

  test.skipIf(!need(isRoot(), "needs root"))(`${sn}: an apply killed part-way is undone by restore and by cleanup, or first by the next apply, commit or mount: the snapshot is as before it`, () => {
    r = TestRoot.for(sn);
    // The user's tree: files the layer replaces, files it whites out, a directory it makes opaque,
    // a file a directory replaces, a directory whose mode the layer changes.
    const userTree = (key: string): string => {
      r!.ok(["snapshot", "-s", sn, "prepare", key]);
      const tree = writableTree(r!, sn, key);
      must(`cd ${tree} && mkdir -p keep gone opq sub && for i in 1 2 3 4 5 6; do echo user $i > keep/f$i; echo user $i > gone/f$i; echo user $i > opq/f$i; done &&
        echo user > sub/file && echo user > becomes-dir && chmod 750 sub && find . -mindepth 1 -exec touch -h -d @1000000000 {} +`);
      return tree;
    };
    const tree = userTree("work");
    const work = r.dir("layer");
    must(`cd ${work} && mkdir -p l/keep l/gone l/opq l/sub l/becomes-dir l/new/deep && for i in 1 2 3 4 5 6; do echo layer $i > l/keep/f$i; echo new $i > l/new/deep/n$i; done &&
      for i in 1 2 3; do touch l/gone/.wh.f$i; done && touch l/opq/.wh..wh..opq && echo layer > l/opq/only && echo layer > l/becomes-dir/inside && chmod 700 l/sub &&
      tar --format=posix -C l -cf layer.tar keep gone opq sub becomes-dir new`);
    const layer = join(work, "layer.tar");
    const before = listing(tree);
    const total = Number(sh(["sh", "-c", `tar -tf ${layer} | wc -l`]).stdout.trim());
    for (const [n, recover] of [[1, "restore"], [4, "cleanup"], [9, "restore"], [17, "cleanup"], [total - 1, "restore"]] as const) {
      const killed = r.stor(["snapshot", "-s", sn, "apply", "work", layer], { env: { STOR_FAILPOINT: `apply:entry@${n}` } });
      expect(killed.code).toBe(-1);
      if (n > 3) expect(listing(tree)).not.toEqual(before); // half applied (a directory's own metadata is set at the end)
      const said = recover === "restore" ? r.ok(["restore"]) : r.ok(["snapshot", "-s", sn, "cleanup"]);
      expect(said).toMatch(recover === "restore" ? /^undid an interrupted apply: put its snapshot back as it was from \S+\/new-apply-\S+\n$/ : /new-apply-\S+\n$/);
      expect(listing(tree)).toEqual(before);
      expect(sh(["sh", "-c", `find ${join(r.path, "snapshots", sn)} -name 'new-apply-*'`]).stdout).toBe("");
    }
    // Whole, it applies as it would have.
    r.ok(["snapshot", "-s", sn, "apply", "work", layer]);
    expect(readFileSync(join(tree, "keep/f1"), "utf8")).toBe("layer 1\n");
    expect(existsSync(join(tree, "gone/f1"))).toBe(false);
    const applied = listing(tree);
    // Killed, then tried again before any restore: the retry first undoes the killed one, and a
    // restore after it takes nothing of the retry's away.
    const again = userTree("again");
    expect(r.stor(["snapshot", "-s", sn, "apply", "again", layer], { env: { STOR_FAILPOINT: "apply:entry@9" } }).code).toBe(-1);
    const retry = r.stor(["snapshot", "-s", sn, "apply", "again", layer]);
    expect(retry.code).toBe(0);
    expect(retry.stderr).toMatch(/^stor: warn: \S+new-apply-\S+: undid the changes of an interrupted apply first\n$/);
    expect(listing(again)).toEqual(applied);
    expect(r.ok(["restore"])).toBe("");
    expect(listing(again)).toEqual(applied);
    // Killed, then committed: the commit undoes it first (committed, it could never be).
    const committed = userTree("to-commit");
    expect(r.stor(["snapshot", "-s", sn, "apply", "to-commit", layer], { env: { STOR_FAILPOINT: "apply:entry@17" } }).code).toBe(-1);
    expect(r.stor(["snapshot", "-s", sn, "commit", "done", "to-commit"]).code).toBe(0);
    expect(listing(committed)).toEqual(before);
    // Killed, then mounted: undone first, so nothing written through the mount is undone later.
    const mounted = userTree("to-mount");
    expect(r.stor(["snapshot", "-s", sn, "apply", "to-mount", layer], { env: { STOR_FAILPOINT: "apply:entry@9" } }).code).toBe(-1);
    const target = r.dir("target");
    expect(r.stor(["-s", sn, "mount", "to-mount", target]).code).toBe(0);
    try {
      expect(listing(mounted)).toEqual(before);
    } finally {
      r.ok(["unmount", target]);
    }
    expect(r.ok(["restore"])).toBe("");
  });
}

for (const sn of ["native", "overlay"]) {
  test.skipIf(!need(isRoot(), "needs root"))(`${sn}: an undo of an apply killed at any of its steps is taken up where it stopped, the undo of a refused layer too: the snapshot is as before it`, () => {
    r = TestRoot.for(sn);
    r.ok(["snapshot", "-s", sn, "prepare", "work"]);
    const tree = writableTree(r, sn, "work");
    must(`cd ${tree} && mkdir -p keep gone && for i in 1 2 3 4; do echo user $i > keep/f$i; echo user $i > gone/f$i; done && echo user > top && find . -mindepth 1 -exec touch -h -d @1000000000 {} +`);
    const work = r.dir("layer");
    // Replaces files (each a removal, then a name made in their place), whites out, adds; then,
    // in the broken layer, a truncated last entry: refused, and undone by the apply itself.
    must(`cd ${work} && mkdir -p l/keep l/gone l/new && for i in 1 2 3 4; do echo layer $i > l/keep/f$i; echo new $i > l/new/n$i; done && echo layer > l/top &&
      touch l/gone/.wh.f1 l/gone/.wh.f2 && tar --format=posix -b 1 -C l -cf layer.tar top keep gone new &&
      head -c $(( $(stat -c %s layer.tar) * 3 / 4 + 100 )) layer.tar > broken.tar`);
    const before = listing(tree);
    const layer = join(work, "layer.tar");
    const undos = (env: Record<string, string>) => r!.stor(["snapshot", "-s", sn, "cleanup"], { env });
    let steps = 0;
    for (let k = 1; ; k++) {
      expect(r.stor(["snapshot", "-s", sn, "apply", "work", layer], { env: { STOR_FAILPOINT: "apply:entry@14" } }).code).toBe(-1);
      const killed = undos({ STOR_FAILPOINT: `apply:undone@${k}` });
      if (killed.code === 0) break; // fewer steps than k: undone whole
      expect(killed.code).toBe(-1);
      if (k === 1) expect(listing(tree)).not.toEqual(before); // part undone
      expect(undos({}).code).toBe(0);
      expect(listing(tree)).toEqual(before);
      steps = k;
    }
    expect(steps).toBeGreaterThan(8);
    expect(listing(tree)).toEqual(before);
    // The refused layer's own undo, killed at its steps, is taken up by cleanup alike.
    for (const k of [1, 3, 6]) {
      expect(r.stor(["snapshot", "-s", sn, "apply", "work", join(work, "broken.tar")], { env: { STOR_FAILPOINT: `apply:undone@${k}` } }).code).toBe(-1);
      expect(undos({}).code).toBe(0);
      expect(listing(tree)).toEqual(before);
    }
    expect(r.stor(["snapshot", "-s", sn, "apply", "work", join(work, "broken.tar")]).code).toBe(2);
    expect(listing(tree)).toEqual(before);
  });

  test.skipIf(!need(isRoot(), "needs root"))(`${sn}: mounts, changes and diff of a snapshot whose apply was killed undo it first: nothing half applied is mounted or exported`, () => {
    r = TestRoot.for(sn);
    r.ok(["snapshot", "-s", sn, "prepare", "work"]);
    const tree = writableTree(r, sn, "work");
    must(`echo user > ${tree}/f`);
    const work = r.dir("layer");
    must(`cd ${work} && mkdir l && for i in 1 2 3 4 5 6; do echo layer $i > l/n$i; done && echo layer > l/f && tar -C l -cf layer.tar f n1 n2 n3 n4 n5 n6`);
    const before = listing(tree);
    for (const command of [["mounts", "/mnt/x", "work"], ["changes", "work"], ["diff", "-o", join(work, "out.tar"), "work"]]) {
      expect(r.stor(["snapshot", "-s", sn, "apply", "work", join(work, "layer.tar")], { env: { STOR_FAILPOINT: "apply:entry@5" } }).code).toBe(-1);
      expect(listing(tree)).not.toEqual(before);
      const res = r.stor(["snapshot", "-s", sn, ...command]);
      expect([res.code, res.stderr]).toEqual([0, expect.stringMatching(/^stor: warn: \S+new-apply-\S+: undid the changes of an interrupted apply first\n$/)]);
      expect(listing(tree)).toEqual(before);
    }
    expect(r.ok(["snapshot", "-s", sn, "changes", "work"])).toBe("A /f\n");
    expect(sh(["tar", "-tf", join(work, "out.tar")]).stdout).toBe("f\n");
  });
}

test.skipIf(!need(isRoot() && have("strace"), "strace fails the journal's emptying; needs root"))("an apply whose journal cannot be emptied at its end is rolled back whole, not left applied and reported failed", () => {
  r = TestRoot.for("native");
  const tree = join(r.path, "snapshots/native/snapshots/1");
  r.ok(["snapshot", "-s", "native", "prepare", "work"]);
  must(`echo old > ${tree}/f && echo keep > ${tree}/keep && touch -d @1000000000 ${tree}/f ${tree}/keep ${tree}`);
  const work = r.dir("layer");
  must(`cd ${work} && mkdir l && echo new > l/f && echo n > l/n && touch l/.wh.keep && tar -C l -cf layer.tar f n .wh.keep`);
  const before = listing(tree);
  // The last ftruncate of an apply that succeeds is the one that empties its journal: counted on a dry run.
  r.ok(["snapshot", "-s", "native", "prepare", "dry"]);
  const log = join(work, "strace.log");
  must(`strace -f -qq -o ${log} -e trace=ftruncate ${STOR} --root ${r.path} --config ${r.config} snapshot -s native apply dry ${join(work, "layer.tar")}`);
  const last = readFileSync(log, "utf8").split("\n").filter((l) => l.includes("ftruncate(")).length;
  const res = sh(["strace", "-f", "-qq", "-o", "/dev/null", "-e", "trace=ftruncate", "-e", `inject=ftruncate:error=EIO:when=${last}`, STOR, "--root", r.path, "--config", r.config, "snapshot", "-s", "native", "apply", "work", join(work, "layer.tar")]);
  expect(res.code).toBe(1);
  expect(res.stderr).toContain("i/o error");
  expect(listing(tree)).toEqual(before);
  expect(r.ok(["snapshot", "-s", "native", "cleanup"])).toBe("");
});

for (const sn of ["native", "overlay"]) {
  test.skipIf(!need(isRoot() && have("strace"), "strace kills the apply at each of its calls; needs root"))(`${sn}: an apply killed at any call that changes the tree or its journal leaves, after cleanup, the tree as before it or, once its journal is emptied, as applied`, () => {
    r = TestRoot.for(sn);
    const prepare = (key: string) => {
      r!.ok(["snapshot", "-s", sn, "prepare", key]);
      const tree = writableTree(r!, sn, key);
      must(`cd ${tree} && mkdir d gone && echo user > d/f && echo user > gone/g && echo user > top && find . -mindepth 1 -exec touch -h -d @1000000000 {} +`);
      return tree;
    };
    const work = r.dir("layer");
    must(`cd ${work} && mkdir -p l/d/sub l/gone && echo layer > l/d/f && echo new > l/d/new && echo new > l/d/sub/deep && ln -s f l/d/link && ln l/d/new l/d/hard &&
      echo layer > l/top && touch l/gone/.wh.g && tar -C l -cf layer.tar top d gone`);
    const layer = join(work, "layer.tar");
    const calls = "write,mkdirat,openat,symlinkat,mknodat,linkat,renameat2,unlinkat,ftruncate,fchownat,fchmodat,utimensat";
    // The sequence of those calls in an apply that runs whole, each with its rank among its kind.
    const log = join(work, "calls.log");
    const dry = prepare("dry");
    must(`strace -f -qq -o ${log} -e trace=${calls} ${STOR} --root ${r.path} --config ${r.config} snapshot -s ${sn} apply dry ${layer}`);
    const applied = listing(dry);
    const seen = new Map<string, number>();
    const points: [string, number][] = [];
    for (const line of readFileSync(log, "utf8").split("\n")) {
      const name = /^(?:\d+\s+)?(\w+)\(/.exec(line)?.[1];
      if (!name) continue;
      seen.set(name, (seen.get(name) ?? 0) + 1);
      points.push([name, seen.get(name)!]);
    }
    let tree = prepare("work");
    const before = listing(tree);
    let undone = 0;
    for (const [name, rank] of points) {
      const res = sh(["strace", "-f", "-qq", "-o", "/dev/null", "-e", `trace=${name}`, "-e", `inject=${name}:signal=SIGKILL:when=${rank}`, STOR, "--root", r.path, "--config", r.config, "snapshot", "-s", sn, "apply", "work", layer]);
      if (res.code === 0) {
        // Past the apply's end (its output, its database): applied whole; set back for the next kill.
        r.ok(["snapshot", "-s", sn, "rm", "work"]);
        tree = prepare("work");
        expect(listing(tree)).toEqual(before);
        continue;
      }
      r.ok(["snapshot", "-s", sn, "cleanup"]);
      const now = listing(tree);
      if (JSON.stringify(now) === JSON.stringify(applied)) {
        r.ok(["snapshot", "-s", sn, "rm", "work"]);
        tree = prepare("work");
        expect(listing(tree)).toEqual(before);
        continue;
      }
      expect([name, rank, now]).toEqual([name, rank, before]);
      undone++;
    }
    expect(undone).toBeGreaterThan(30);
  }, 300_000);
}
