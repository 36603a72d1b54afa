/** Many stor processes on one root at once: exact results and never a locking error. */
import { afterEach, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { NotFoundError } from "../src/errors.ts";
import { diskUsage } from "../src/fs/diskUsage.ts";
import { native } from "../src/snapshot/native.ts";
import { SnapshotService } from "../src/snapshot/service.ts";
import type { Snapshotter } from "../src/snapshot/snapshotter.ts";
import { STOR, TestRoot, isRoot, need } from "./helpers.ts";

let r: TestRoot | undefined;
afterEach(() => r?.close(), 120_000);

/** Runs one stor invocation per argument list, all at once; returns exit codes and stderr. */
async function parallel(root: TestRoot, argvs: string[][]): Promise<{ code: number; stderr: string }[]> {
  const procs = argvs.map((a) =>
    Bun.spawn([STOR, "--root", root.path, "--config", root.config, ...a], { stdout: "ignore", stderr: "pipe" }),
  );
  return Promise.all(procs.map(async (p) => ({ code: await p.exited, stderr: await new Response(p.stderr).text() })));
}

for (const sn of ["native", "overlay"]) {
  test.skipIf(!need(isRoot(), "snapshot directories are owned by root"))(`${sn}: 100 parallel prepares of distinct keys on one parent`, async () => {
    r = new TestRoot();
    const up = JSON.parse(r.ok(["snapshot", "-s", sn, "prepare", "--mounts", "base-a"]))[0];
    const dir: string = up.Type === "bind" ? up.Source : up.Options.find((o: string) => o.startsWith("upperdir=")).slice(9);
    for (let i = 0; i < 200; i++) writeFileSync(join(dir, `f${i}`), "x".repeat(1000));
    r.ok(["snapshot", "-s", sn, "commit", "base", "base-a"]);
    const res = await parallel(r, Array.from({ length: 100 }, (_, i) => ["snapshot", "-s", sn, "prepare", `k${i}`, "base"]));
    expect(res.filter((x) => x.code !== 0)).toEqual([]);
    const keys = JSON.parse(r.ok(["snapshot", "-s", sn, "ls", "--format", "json"])).map((i: { Name: string }) => i.Name);
    expect(keys).toHaveLength(101);
    // One directory per snapshot, nothing left over.
    expect(readdirSync(join(r.path, "snapshots", sn, "snapshots"))).toHaveLength(101);
  }, 120_000);

  test.skipIf(!need(isRoot(), "snapshot directories are owned by root"))(`${sn}: 20 parallel prepares of one key: exactly one wins, the rest exit 4`, async () => {
    r = new TestRoot();
    r.ok(["snapshot", "-s", sn, "prepare", "base-a"]);
    r.ok(["snapshot", "-s", sn, "commit", "base", "base-a"]);
    const res = await parallel(r, Array.from({ length: 20 }, () => ["snapshot", "-s", sn, "prepare", "same", "base"]));
    expect(res.map((x) => x.code).sort()).toEqual([0, ...Array(19).fill(4)]);
    expect(new Set(res.filter((x) => x.code === 4).map((x) => x.stderr))).toEqual(new Set(['stor: snapshot "same": already exists\n']));
    expect(readdirSync(join(r.path, "snapshots", sn, "snapshots"))).toHaveLength(2);
  }, 120_000);

  test.skipIf(!need(isRoot(), "snapshot directories are owned by root"))(`${sn}: commits and removes racing with ls, info and cleanup`, async () => {
    r = new TestRoot();
    for (let i = 0; i < 30; i++) r.ok(["snapshot", "-s", sn, "prepare", `a${i}`]);
    const jobs: string[][] = [];
    for (let i = 0; i < 30; i++) {
      jobs.push(i % 2 ? ["snapshot", "-s", sn, "commit", `c${i}`, `a${i}`] : ["snapshot", "-s", sn, "rm", `a${i}`]);
      jobs.push(["snapshot", "-s", sn, "ls"], ["snapshot", "-s", sn, "info", `a${i}`]);
    }
    jobs.push(["snapshot", "-s", sn, "cleanup"], ["snapshot", "-s", sn, "cleanup"]);
    const res = await parallel(r, jobs);
    // info may race its snapshot's commit or removal (exit 3); nothing else may fail, and nothing says "locked".
    expect(res.filter((x, i) => x.code !== 0 && !(jobs[i]![3] === "info" && x.code === 3))).toEqual([]);
    expect(res.some((x) => /locked|busy/i.test(x.stderr))).toBe(false);
    const infos = JSON.parse(r.ok(["snapshot", "-s", sn, "ls", "--format", "json"]));
    expect(infos.map((i: { Name: string }) => i.Name).sort()).toEqual(Array.from({ length: 15 }, (_, k) => `c${2 * k + 1}`).sort());
    expect(readdirSync(join(r.path, "snapshots", sn, "snapshots"))).toHaveLength(15);
  }, 120_000);
}

test("commit and usage of a snapshot removed while its tree is measured: not found (exit 3), as when rm got there first", () => {
  const dir = mkdtempSync(join(tmpdir(), "stor-measure-race-"));
  try {
    const other = new SnapshotService(dir, native, "write");
    // The walk of the tree runs outside the store's lock: another process's rm gets in there.
    const racing: Snapshotter = { ...native, usage: (d) => (other.remove("w"), diskUsage(d)) };
    const svc = new SnapshotService(dir, racing, "write");
    for (const measure of [() => svc.commit("c", "w"), () => svc.usage("w")]) {
      svc.prepare("w");
      writeFileSync(join(dir, "snapshots/native/snapshots", readdirSync(join(dir, "snapshots/native/snapshots"))[0]!, "f"), "x");
      let thrown: unknown;
      try {
        measure();
      } catch (err) {
        thrown = err;
      }
      expect(thrown).toBeInstanceOf(NotFoundError);
      expect((thrown as Error).message).toBe('snapshot "w": not found');
    }
    svc.close();
    other.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("prepare whose parent is removed while its tree is copied: the parent not found (exit 3), not the copy's failure", () => {
  const dir = mkdtempSync(join(tmpdir(), "stor-parent-race-"));
  try {
    const other = new SnapshotService(dir, native, "write");
    other.prepare("p");
    writeFileSync(join(dir, "snapshots/native/snapshots/1/f"), "x");
    other.commit("P", "p");
    // The copy runs outside the store's lock: another process's rm of the parent gets in there.
    const racing: Snapshotter = { ...native, populate: (req) => (other.remove("P"), native.populate(req)) };
    const svc = new SnapshotService(dir, racing, "write");
    let thrown: unknown;
    try {
      svc.prepare("k", "P");
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(NotFoundError);
    expect((thrown as Error).message).toBe('parent snapshot "P": not found');
    expect(readdirSync(join(dir, "snapshots/native/snapshots"))).toEqual([]); // nor its half-made copy
    svc.close();
    other.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.skipIf(!need(isRoot(), "snapshot directories are owned by root"))("cleanup racing an rm leaves the directory the rm is removing to it: no leftover reported, no warning", async () => {
  const r = TestRoot.for("native", "stor-rm-cleanup-");
  try {
    r.ok(["-s", "native", "snapshot", "prepare", "k"]);
    const tree = join(r.path, "snapshots/native/snapshots/1");
    mkdirSync(join(tree, "many"));
    for (let i = 0; i < 50; i++) writeFileSync(join(tree, "many", `f${i}`), "");
    // Stopped with its record gone and its directory being removed; a cleanup comes then.
    const rm = await r.stoppedAt(["-s", "native", "snapshot", "rm", "k"], "remove-tree:opened", () => {
      expect(r.ok(["-s", "native", "snapshot", "cleanup"])).toBe("");
      expect(readdirSync(join(r.path, "snapshots/native/snapshots"))).toEqual(["1"]);
    });
    expect(rm).toEqual({ code: 0, stdout: "", stderr: "" });
    expect(readdirSync(join(r.path, "snapshots/native/snapshots"))).toEqual([]);
  } finally {
    r.close();
  }
});
