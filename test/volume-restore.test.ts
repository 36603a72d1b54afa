/** `stor restore` after a simulated crash, and creates cut short: the state restore puts right. */
import { afterEach, expect, test } from "bun:test";
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { STOR, TestRoot, have, isRoot, need, simulateReboot, type Result } from "./helpers.ts";

let r: TestRoot | undefined;
afterEach(() => {
  r?.close();
  r = undefined;
});

const mountedUnder = (dir: string) =>
  readFileSync("/proc/self/mountinfo", "utf8")
    .split("\n")
    .map((l) => l.split(" ")[4])
    .filter((p) => p !== undefined && p.startsWith(`${dir}/`));

test.skipIf(!need(isRoot(), "the crash leaves a tmpfs mounted; mounting needs root"))("restore after a crash: leftover mounts, stale references, a deleted and an orphan directory; twice", () => {
  r = new TestRoot();
  const vols = join(r.path, "volumes");
  // State as a crash leaves it: references held, a tmpfs mounted.
  r.ok(["volume", "create", "-o", "type=tmpfs", "-o", "device=tmpfs", "-o", "o=size=8m", "tt"]);
  r.ok(["volume", "mount", "tt", "c1"]);
  r.ok(["volume", "mount", "tt", "c2"]);
  r.ok(["volume", "create", "plain"]);
  r.ok(["volume", "mount", "plain", "c3"]);
  r.ok(["volume", "create", "gone"]);
  rmSync(join(vols, "gone"), { recursive: true });
  // A volume directory without metadata (a create cut short), with data and options.
  mkdirSync(join(vols, "orphan/_data"), { recursive: true });
  writeFileSync(join(vols, "orphan/_data/file"), "kept");
  writeFileSync(join(vols, "orphan/opts.json"), '{"MountType":"tmpfs","MountOpts":"size=4m","MountDevice":"tmpfs","Quota":{"Size":0}}');
  // What an interrupted create and an interrupted removal leave, and directories that are no volumes.
  mkdirSync(join(vols, ".new-d4e5f6/_data"), { recursive: true });
  writeFileSync(join(vols, ".new-d4e5f6/opts.json"), '{"MountType":"tmpfs","MountOpts":"","MountDevice":"tmpfs","Quota":{"Size":0}}');
  mkdirSync(join(vols, ".rm-a1b2c3/_data"), { recursive: true });
  mkdirSync(join(vols, "no-data-dir"));
  mkdirSync(join(vols, "bad name/_data"), { recursive: true });
  expect(mountedUnder(vols)).toEqual([join(vols, "tt/_data")]);

  simulateReboot(r.path);
  expect(r.ok(["restore"])).toBe(
    [
      'released volume "plain": references c3',
      'released volume "tt": references c1, c2',
      `unmounted ${vols}/tt/_data`,
      'dropped volume "gone": its data is gone',
      'adopted volume "orphan": found without metadata',
      `removed ${vols}/.new-d4e5f6: left by an interrupted create or removal`,
      `removed ${vols}/.rm-a1b2c3: left by an interrupted create or removal`,
      "",
    ].join("\n"),
  );
  expect(mountedUnder(vols)).toEqual([]);
  expect(r.ok(["volume", "ls", "-q"])).toBe("orphan\nplain\ntt\n");
  expect(r.ok(["volume", "ls", "-q", "-f", "dangling=false"])).toBe("");
  const [orphan] = JSON.parse(r.ok(["volume", "inspect", "orphan"]));
  expect([orphan.Driver, orphan.Labels, orphan.Options]).toEqual(["local", {}, { device: "tmpfs", o: "size=4m", type: "tmpfs" }]);
  expect(readFileSync(join(vols, "orphan/_data/file"), "utf8")).toBe("kept");
  expect([existsSync(join(vols, ".new-d4e5f6")), existsSync(join(vols, ".rm-a1b2c3")), existsSync(join(vols, "no-data-dir")), existsSync(join(vols, "bad name"))]).toEqual([false, false, true, true]);

  // The second run finds nothing to do.
  expect(r.stor(["restore"])).toEqual({ code: 0, stdout: "", stderr: "" });
  expect(JSON.parse(r.ok(["restore", "--format", "json"]))).toEqual({
    AtBoot: false,
    ServeRunning: false,
    Migrated: [],
    Unmounted: [],
    Busy: [],
    Volumes: { Unmounted: [], Busy: [], LeftMounted: [], Released: [], Kept: [], Dropped: [], Adopted: [], Removed: [] },
    Snapshots: [],
  });

  // Afterwards the volumes work as new: the first reference mounts again, the last unmounts.
  const data = r.ok(["volume", "mount", "tt", "c9"]).trim();
  expect(mountedUnder(vols)).toEqual([data]);
  r.ok(["volume", "unmount", "tt", "c9"]);
  expect(mountedUnder(vols)).toEqual([]);
  expect(r.ok(["volume", "rm", "plain", "tt", "orphan"])).toBe("plain\ntt\norphan\n");
});

test("restore --format json reports what it did", () => {
  r = new TestRoot();
  r.ok(["volume", "create", "held"]);
  r.ok(["volume", "mount", "held", "ref-1"]);
  mkdirSync(join(r.path, "volumes/found/_data"), { recursive: true });
  simulateReboot(r.path);
  expect(JSON.parse(r.ok(["restore", "--format", "json"]))).toEqual({
    AtBoot: true,
    ServeRunning: false,
    Migrated: [],
    Unmounted: [],
    Busy: [],
    Volumes: { Unmounted: [], Busy: [], LeftMounted: [], Released: [{ Volume: "held", Refs: ["ref-1"] }], Kept: [], Dropped: [], Adopted: ["found"], Removed: [] },
    Snapshots: [],
  });
  expect(r.stor(["restore", "--format", "yaml"]).stderr).toBe('stor: format "yaml": expected table or json\n');
});

test("creating over a directory a crashed create left keeps its data", () => {
  r = new TestRoot();
  r.ok(["volume", "ls"]);
  mkdirSync(join(r.path, "volumes/half/_data"), { recursive: true });
  writeFileSync(join(r.path, "volumes/half/_data/file"), "data");
  expect(r.ok(["volume", "create", "--label", "a=b", "half"])).toBe("half\n");
  expect(JSON.parse(r.ok(["volume", "inspect", "half"]))[0].Labels).toEqual({ a: "b" });
  expect(readFileSync(join(r.path, "volumes/half/_data/file"), "utf8")).toBe("data");
});

test("a symlink where a volume directory goes is refused, and nothing is written through it", () => {
  r = new TestRoot();
  r.ok(["volume", "create", "made"]); // makes the store
  r.ok(["volume", "rm", "made"]);
  const outside = r.dir("outside");
  symlinkSync(outside, join(r.path, "volumes/evil"));
  const res = r.stor(["volume", "create", "-o", "type=tmpfs", "-o", "device=tmpfs", "evil"]);
  expect([res.code, res.stderr]).toEqual([1, `stor: volume directory ${r.path}/volumes/evil: exists and is not a directory\n`]);
  expect(existsSync(join(outside, "opts.json")) || existsSync(join(outside, "_data"))).toBe(false);
  expect(r.ok(["restore"])).toBe("");
});

/**
 * Runs `stor restore` stopped where it takes its first batch of volume locks, after it listed the
 * storage: strace stops it at its first open of the lock directory, which a batch of locks makes
 * before it locks any name. `meanwhile` runs then; restore's result is returned once it goes on.
 */
async function restoreHeldUp(root: TestRoot, meanwhile: () => void): Promise<Result> {
  const log = join(root.dir("strace"), "log");
  const trace = ["-f", "-qq", "-o", log, "-P", join(root.path, "volumes/.meta/locks"), "-e", "trace=openat", "-e", "inject=openat:signal=SIGSTOP:when=1"];
  const p = Bun.spawn(["strace", ...trace, STOR, "--root", root.path, "--config", root.config, "restore"], { stdout: "pipe", stderr: "pipe" });
  const stopped = () => existsSync(log) && readFileSync(log, "utf8").includes("stopped by SIGSTOP");
  for (let i = 0; i < 1000 && p.exitCode === null && !stopped(); i++) await Bun.sleep(10);
  expect(stopped()).toBe(true);
  meanwhile();
  process.kill(Number(readFileSync(`/proc/${p.pid}/task/${p.pid}/children`, "utf8").trim()), "SIGCONT");
  const [stdout, stderr, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  return { code, stdout, stderr };
}

test.skipIf(!need(have("strace"), "strace stops restore between its listing and its locks"))(
  "a volume removed, made again and mounted while restore runs keeps its record and reference: restore looks at the storage again under the lock",
  async () => {
    r = new TestRoot();
    const vols = join(r.path, "volumes");
    for (const v of ["g1", "g2", "g3"]) {
      r.ok(["volume", "create", v]);
      renameSync(join(vols, v), join(vols, `.rm-${v}`)); // its storage lost, as a crashed removal leaves it
    }
    const root = r;
    const res = await restoreHeldUp(r, () => {
      root.ok(["volume", "rm", "g3"]);
      root.ok(["volume", "create", "--label", "keep=1", "g3"]);
      writeFileSync(join(root.ok(["volume", "mount", "g3", "ctr1"]).trim(), "db"), "precious");
    });
    expect([res.code, res.stderr]).toEqual([0, ""]);
    expect(res.stdout).not.toContain('"g3"');
    expect(r.ok(["volume", "ls", "-q"])).toBe("g3\n");
    expect(JSON.parse(r.ok(["volume", "inspect", "g3"]))[0].Labels).toEqual({ keep: "1" });
    expect(r.ok(["volume", "ls", "-q", "-f", "dangling=false"])).toBe("g3\n"); // ctr1 holds it
    expect(r.stor(["volume", "rm", "g3"]).code).toBe(5);
    expect(readFileSync(join(vols, "g3/_data/db"), "utf8")).toBe("precious");
  },
);

test.skipIf(!need(have("strace"), "strace stops restore between its listing and its locks"))(
  "a volume directory made and removed by a create and an rm while restore runs is not adopted, and restore goes on",
  async () => {
    r = new TestRoot();
    r.ok(["volume", "create", "seed"]);
    mkdirSync(join(r.path, "volumes/o1/_data"), { recursive: true }); // as a create cut short leaves it
    const root = r;
    const res = await restoreHeldUp(r, () => {
      root.ok(["volume", "create", "o1"]); // takes the directory over
      root.ok(["volume", "rm", "o1"]);
    });
    expect([res.code, res.stdout, res.stderr]).toEqual([0, "", ""]);
    expect(r.ok(["volume", "ls", "-q"])).toBe("seed\n");
    expect(existsSync(join(r.path, "volumes/o1"))).toBe(false);
  },
);

test("restore --force releases only the references it looked at: one taken meanwhile stays", async () => {
  r = new TestRoot();
  r.ok(["volume", "create", "vol"]);
  r.ok(["volume", "mount", "vol", "old"]);
  // Stopped once it has looked at the references and at who uses the volumes, before it releases any.
  const restore = await r.stoppedAt(["restore", "--force", "--format", "json"], "restore:refs-looked", () => r!.ok(["volume", "mount", "vol", "new"]));
  expect(restore.code).toBe(0);
  expect(JSON.parse(restore.stdout).Volumes.Released).toEqual([{ Volume: "vol", Refs: ["old"] }]);
  expect(r.stor(["volume", "rm", "vol"])).toEqual({ code: 5, stdout: "", stderr: 'stor: volume "vol": in use - [new]\n' });
});
