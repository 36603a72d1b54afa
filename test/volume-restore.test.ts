/** `stor restore` after a simulated crash, and creates cut short: the state restore puts right. */
import { afterEach, expect, test } from "bun:test";
import { existsSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { TestRoot, isRoot, need, simulateReboot } from "./helpers.ts";

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
  r.ok(["volume", "prune", "-f"]); // makes the root
  const outside = r.dir("outside");
  symlinkSync(outside, join(r.path, "volumes/evil"));
  const res = r.stor(["volume", "create", "-o", "type=tmpfs", "-o", "device=tmpfs", "evil"]);
  expect([res.code, res.stderr]).toEqual([1, `stor: volume directory ${r.path}/volumes/evil: exists and is not a directory\n`]);
  expect(existsSync(join(outside, "opts.json")) || existsSync(join(outside, "_data"))).toBe(false);
  expect(r.ok(["restore"])).toBe("");
});
