/**
 * Crash consistency of volumes: stor killed with SIGKILL at each named point of create, rm, mount
 * and unmount; after `stor restore` every listed volume has its directory, every volume
 * directory is listed, nothing is mounted, no reference is left, nothing half-made is left, and a
 * second restore does nothing.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { STOR, TestRoot, have, isRoot, must, need, sh, simulateReboot, stopped, typicalSpan } from "./helpers.ts";

let r: TestRoot | undefined;
afterEach(() => {
  r?.close();
  r = undefined;
});

/** What is wrong with the volumes below `root` (empty when consistent). */
function violations(root: TestRoot): string[] {
  const vols = join(root.path, "volumes");
  const listed = new Set(root.ok(["volume", "ls", "-q"]).split("\n").filter(Boolean));
  const dirs = readdirSync(vols).filter((n) => existsSync(join(vols, n, "_data")));
  const wrong = [
    ...[...listed].filter((n) => !dirs.includes(n)).map((n) => `volume ${n} has no directory`),
    ...dirs.filter((n) => !listed.has(n)).map((n) => `directory ${n} has no volume`),
    ...readdirSync(vols).filter((n) => n.startsWith(".rm-") || n.startsWith(".new-")).map((n) => `leftover ${n}`),
    ...(existsSync(join(vols, ".meta/locks")) ? readdirSync(join(vols, ".meta/locks")) : []).map((n) => `lock file left: ${n}`),
    ...readFileSync("/proc/self/mountinfo", "utf8")
      .split("\n")
      .map((l) => l.split(" ")[4])
      .filter((p) => p?.startsWith(`${vols}/`))
      .map((p) => `still mounted: ${p}`),
  ];
  const held = root.ok(["volume", "ls", "-q", "-f", "dangling=false"]);
  if (held) wrong.push(`references left on ${held.trim()}`);
  return wrong;
}

const TMPFS_OPTIONS = { device: "tmpfs", o: "size=2m", type: "tmpfs" };

/** No volume `name`, and a create of it now makes it with its options. */
function neverMade(root: TestRoot, name: string): void {
  expect(root.stor(["volume", "inspect", name]).code).toBe(3);
  root.ok(["volume", "create", "-o", "type=tmpfs", "-o", "device=tmpfs", "-o", "o=size=2m", name]);
  expect(JSON.parse(root.ok(["volume", "inspect", name]))[0].Options).toEqual(TMPFS_OPTIONS);
}

const CASES: [point: string, args: string[], after: (root: TestRoot) => void][] = [
  // Killed while the volume's directory is built: it was never the volume's, and goes.
  ["volume-create:data", ["volume", "create", "-o", "type=tmpfs", "-o", "device=tmpfs", "-o", "o=size=2m", "cut"], (root) => neverMade(root, "cut")],
  ["volume-create:built", ["volume", "create", "-o", "type=tmpfs", "-o", "device=tmpfs", "-o", "o=size=2m", "cut"], (root) => neverMade(root, "cut")],
  [
    "volume-create:made",
    ["volume", "create", "-o", "type=tmpfs", "-o", "device=tmpfs", "-o", "o=size=2m", "made"],
    // The storage was made: restore adopts it, options and all.
    (root) => expect(JSON.parse(root.ok(["volume", "inspect", "made"]))[0].Options).toEqual(TMPFS_OPTIONS),
  ],
  ["volume-rm:renamed", ["volume", "rm", "plain"], (root) => expect(root.stor(["volume", "inspect", "plain"]).code).toBe(3)],
  ["volume-rm:removed", ["volume", "rm", "plain"], (root) => expect(root.stor(["volume", "inspect", "plain"]).code).toBe(3)],
  ["volume-mount:mounted", ["volume", "mount", "tt", "c2"], (root) => expect(root.ok(["volume", "rm", "tt"])).toBe("tt\n")],
  ["volume-unmount:unmounted", ["volume", "unmount", "tt", "c1"], (root) => expect(root.ok(["volume", "rm", "tt"])).toBe("tt\n")],
];

for (const [point, args, after] of CASES) {
  test.skipIf(!need(isRoot(), "tmpfs volumes are mounted; mounting needs root"))(`killed at ${point}: restore puts everything right, once`, () => {
    r = new TestRoot();
    r.ok(["volume", "create", "plain"]);
    writeFileSync(join(r.path, "volumes/plain/_data/file"), "data");
    r.ok(["volume", "create", "-o", "type=tmpfs", "-o", "device=tmpfs", "tt"]);
    r.ok(["volume", "mount", "tt", "c1"]);

    const killed = r.stor(args, { env: { STOR_FAILPOINT: point } });
    expect([killed.code, killed.stdout, killed.stderr]).toEqual([-1, "", ""]); // SIGKILL: no exit code, no word

    simulateReboot(r.path); // what holds references here (c1) does not outlive a reboot
    r.ok(["restore"]);
    expect(violations(r)).toEqual([]);
    expect(r.stor(["restore"])).toEqual({ code: 0, stdout: "", stderr: "" });
    after(r);
  });
}

test.skipIf(!need(isRoot(), "tmpfs volumes are mounted; mounting needs root"))("a device a killed mount left mounted is unmounted by rm, with no reboot or restore, as Docker's driver does", () => {
  r = new TestRoot();
  r.ok(["volume", "create", "-o", "type=tmpfs", "-o", "device=tmpfs", "tt"]);
  expect(r.stor(["volume", "mount", "tt", "c1"], { env: { STOR_FAILPOINT: "volume-mount:mounted" } }).code).toBe(-1);
  const data = join(r.path, "volumes/tt/_data");
  expect(readFileSync("/proc/self/mountinfo", "utf8")).toContain(` ${data} `);
  expect(r.ok(["volume", "rm", "tt"])).toBe("tt\n");
  expect(readFileSync("/proc/self/mountinfo", "utf8")).not.toContain(` ${data} `);
  expect(violations(r)).toEqual([]);
});

test.skipIf(!need(isRoot(), "tmpfs volumes are mounted; mounting needs root"))("killed at random instants during volume create and rm: restore always puts it right", async () => {
  r = new TestRoot();
  const trials = Number(process.env.STOR_CRASH_TRIALS ?? (process.env.CI === "true" ? 60 : 150));
  const root = r; // a closure does not see r narrowed
  const span = typicalSpan(
    () => root.ok(["volume", "create", "timing"]),
    () => root.ok(["volume", "rm", "timing"]),
  );
  const failures: string[] = [];
  let killed = 0;
  for (let t = 0; t < trials; t++) {
    const existing = r.ok(["volume", "ls", "-q"]).split("\n").filter(Boolean);
    const args = t % 2 === 0 || existing.length === 0
      ? ["volume", "create", ...(t % 4 === 0 ? ["-o", "type=tmpfs", "-o", "device=tmpfs"] : []), `v${t}`]
      : ["volume", "rm", existing[0]!];
    const p = Bun.spawn([STOR, "--root", r.path, "--config", r.config, ...args], { stdout: "ignore", stderr: "ignore" });
    await Bun.sleep(Math.random() * span);
    p.kill("SIGKILL");
    if ((await p.exited) !== 0) killed++;
    r.ok(["restore"]);
    const wrong = violations(r);
    if (wrong.length) failures.push(`trial ${t} (${args.join(" ")}): ${wrong.join("; ")}`);
  }
  console.log(`volumes: ${trials} trials over ${span.toFixed(0)} ms, ${killed} killed before finishing, ${failures.length} inconsistent`);
  expect(failures).toEqual([]);
  expect(killed).toBeGreaterThan(trials / 4);
}, 600_000);

/** Makes `n` volumes as directories without metadata, adopted by one restore: more than one batch. */
function manyVolumes(root: TestRoot, n: number): string[] {
  root.ok(["volume", "create", "first"]);
  const names = Array.from({ length: n }, (_, i) => `many${String(i).padStart(4, "0")}`);
  for (const name of names) mkdirSync(join(root.path, "volumes", name, "_data"), { recursive: true });
  expect(root.ok(["restore"]).split("\n").filter((l) => l.startsWith("adopted volume")).length).toBe(n);
  return ["first", ...names];
}

test("a prune killed holding a batch of locks, one file under many names: the next prune and creates take those names without waiting on it", () => {
  r = new TestRoot();
  manyVolumes(r, 600);
  expect(r.stor(["volume", "prune", "-a", "-f"], { env: { STOR_FAILPOINT: "volume-rm:renamed" } }).code).toBe(-1);
  const locks = join(r.path, "volumes/.meta/locks");
  expect(statSync(join(locks, "many0001")).nlink).toBeGreaterThan(1); // the dead prune's batch
  // Bounded: taking its own batch's names one of which it already holds through the dead file would wait forever.
  const run = (args: string[]) => sh([STOR, "--root", r!.path, "--config", r!.config, ...args], { timeout: 30_000 });
  expect(run(["volume", "create", "many0001"]).code).toBe(0);
  const prune = run(["volume", "prune", "-a", "-f"]);
  expect([prune.code, prune.stderr]).toEqual([0, ""]);
  expect(r.ok(["volume", "ls", "-q"])).toBe("");
  r.ok(["restore"]);
  expect(violations(r)).toEqual([]);
  expect(readdirSync(locks)).toEqual([]);
});

test("one restore adopts 600 orphaned volume directories, batch after batch", () => {
  r = new TestRoot();
  const names = manyVolumes(r, 600);
  expect(r.ok(["volume", "ls", "-q"]).split("\n").filter(Boolean)).toEqual(names.sort());
  expect(violations(r)).toEqual([]);
  expect(r.stor(["restore"])).toEqual({ code: 0, stdout: "", stderr: "" });
});

for (const point of ["volume-rm:renamed", "volume-rm:removed"]) {
  test(`prune -a of 600 volumes killed at ${point}: restore leaves each volume whole or gone`, () => {
    r = new TestRoot();
    manyVolumes(r, 600);
    const killed = r.stor(["volume", "prune", "-a", "-f"], { env: { STOR_FAILPOINT: point } });
    expect([killed.code, killed.stdout, killed.stderr]).toEqual([-1, "", ""]);
    r.ok(["restore"]);
    expect(violations(r)).toEqual([]);
    // The first batch was on its way out; the others were not touched.
    const left = r.ok(["volume", "ls", "-q"]).split("\n").filter(Boolean).length;
    expect(left).toBeGreaterThan(0);
    expect(left).toBeLessThan(601);
    r.ok(["volume", "prune", "-a", "-f"]);
    expect(r.ok(["volume", "ls", "-q"])).toBe("");
    expect(violations(r)).toEqual([]);
  });
}

describe.skipIf(!need(isRoot() && have("chattr"), "chattr +i needs root and e2fsprogs"))("storage that cannot all be deleted", () => {
  /** `names`, each with a file in its data; `stuck`'s file immutable, so its removal cannot finish. */
  const setUp = (r: TestRoot, names: string[], stuck: string) => {
    for (const n of names) {
      r.ok(["volume", "create", n]);
      writeFileSync(join(r.path, "volumes", n, "_data", "f"), n);
    }
    must(`chattr +i ${join(r.path, "volumes", stuck, "_data", "f")}`);
  };
  const trash = (r: TestRoot) => readdirSync(join(r.path, "volumes")).filter((n) => n.startsWith(".rm-"));
  const unstick = (r: TestRoot) => must(`chattr -R -i ${join(r.path, "volumes")} 2>/dev/null || true`);

  test("prune and rm remove the volume all the same, the others too, and leave its trash to cleanup", () => {
    const r = new TestRoot();
    try {
      setUp(r, ["va", "vb", "vc"], "vb");
      const res = r.stor(["volume", "prune", "-a", "-f"]);
      expect(res.code).toBe(0);
      expect(res.stderr).toMatch(/^stor: warn: \S+\/volumes\/\.rm-\S+ is left for a later cleanup: .*operation not permitted\n$/);
      expect(r.ok(["volume", "ls", "-q"])).toBe("");
      expect(trash(r)).toHaveLength(1);
      setUp(r, ["vd"], "vd");
      const rm = r.stor(["volume", "rm", "vd"]);
      expect([rm.code, rm.stdout]).toEqual([0, "vd\n"]);
      expect(r.ok(["volume", "ls", "-q"])).toBe("");
      expect(trash(r)).toHaveLength(2);
    } finally {
      unstick(r);
      r.close();
    }
  });

  test("a prune of several batches, their trash removed on helper threads: the same, one warning for the batch that cannot go", () => {
    const r = new TestRoot();
    try {
      // More volumes than one batch of locks (256), adopted rather than created one by one.
      const vols = join(r.path, "volumes");
      r.ok(["volume", "prune", "-f"]);
      for (let i = 0; i < 600; i++) mkdirSync(join(vols, `m${i}`, "_data"), { recursive: true });
      writeFileSync(join(vols, "m300", "_data", "f"), "x");
      must(`chattr +i ${join(vols, "m300", "_data", "f")}`);
      r.ok(["restore"]);
      const res = r.stor(["volume", "prune", "-a", "-f"]);
      expect(res.code).toBe(0);
      expect(res.stderr).toMatch(/^stor: warn: \S+\/volumes\/\.rm-\S+ is left for a later cleanup: .*operation not permitted\n$/);
      expect(res.stdout.split("\n").filter((l) => /^m\d+$/.test(l))).toHaveLength(600);
      expect(r.ok(["volume", "ls", "-q"])).toBe("");
      expect(trash(r)).toHaveLength(1);
      expect(readdirSync(vols).filter((n) => !n.startsWith("."))).toEqual([]);
      unstick(r);
      r.ok(["restore"]);
      expect(trash(r)).toEqual([]);
    } finally {
      unstick(r);
      r.close();
    }
  });

  test("prune whose records cannot be dropped once the data is gone says so, naming the volumes; a second prune drops them", async () => {
    const cases: [string[], RegExp][] = [
      [["p1"], /^stor: prune: the data of volume "p1" is removed, but not its record \([^)]+\): prune again, or stor restore drops it\n$/],
      [["p1", "p2", "p3", "p4"], /^stor: prune: the data of 4 volumes \(p1, p2, p3, …\) is removed, but not their records \([^)]+\): prune again, or stor restore drops them\n$/],
    ];
    for (const [names, said] of cases) {
      const r = new TestRoot();
      const db = join(r.path, "volumes", ".meta", "metadata.db");
      try {
        for (const n of names) r.ok(["volume", "create", n]);
        const prune = Bun.spawn([STOR, "--root", r.path, "--config", r.config, "volume", "prune", "-a", "-f"], { env: { ...process.env, STOR_FAILPOINT: "volume-rm:removed+stop" }, stderr: "pipe", stdout: "ignore" });
        await stopped(prune.pid);
        must(`chattr +i ${db} ${db}-wal`);
        prune.kill("SIGCONT");
        expect(await prune.exited).toBe(1);
        expect(await new Response(prune.stderr).text()).toMatch(said);
        must(`chattr -i ${db} ${db}-wal`);
        for (const n of names) expect(existsSync(join(r.path, "volumes", n))).toBe(false);
        expect(r.stor(["volume", "prune", "-a", "-f"]).code).toBe(0);
        expect(r.stor(["volume", "ls", "-q"]).stdout).toBe("");
      } finally {
        must(`chattr -i ${db} ${db}-wal 2>/dev/null || true`);
        r.close();
      }
    }
  });

  test("rm whose record cannot be dropped once the data is gone says so, naming the volume; a second rm drops it", async () => {
    const r = new TestRoot();
    const db = join(r.path, "volumes", ".meta", "metadata.db");
    try {
      setUp(r, ["vd"], "vd");
      unstick(r);
      // Stopped with the data removed, before the record goes; the database is then made unwritable.
      const rm = Bun.spawn([STOR, "--root", r.path, "--config", r.config, "volume", "rm", "vd"], { env: { ...process.env, STOR_FAILPOINT: "volume-rm:removed+stop" }, stderr: "pipe" });
      await stopped(rm.pid);
      must(`chattr +i ${db} ${db}-wal`);
      rm.kill("SIGCONT");
      expect(await rm.exited).toBe(1);
      expect(await new Response(rm.stderr).text()).toMatch(/^stor: volume "vd": its data is removed, but not its record \([^)]+\): remove it again, or stor restore drops it\n$/);
      must(`chattr -i ${db} ${db}-wal`);
      expect(existsSync(join(r.path, "volumes", "vd"))).toBe(false);
      expect(r.stor(["volume", "rm", "vd"])).toMatchObject({ code: 0, stdout: "vd\n" });
      expect(r.stor(["volume", "ls", "-q"]).stdout).toBe("");
    } finally {
      must(`chattr -i ${db} ${db}-wal 2>/dev/null || true`);
      unstick(r);
      r.close();
    }
  });

  test("restore and serve's start go on past a trash that cannot go yet, and restore removes it once it can", async () => {
    const r = new TestRoot();
    try {
      setUp(r, ["va", "vb"], "vb");
      r.ok(["volume", "prune", "-a", "-f"]);
      r.ok(["snapshot", "-s", "native", "prepare", "k"]);
      const res = r.stor(["restore"]);
      expect(res.code).toBe(0);
      expect(res.stderr).toMatch(/is left for a later cleanup/);
      expect(trash(r)).toHaveLength(1);
      const sock = join(r.path, "plugin.sock");
      const serve = Bun.spawn([STOR, "--root", r.path, "--config", r.config, "serve", "--docker-volume", sock], { stdout: "ignore", stderr: "pipe" });
      try {
        for (let i = 0; i < 200 && !existsSync(sock); i++) await Bun.sleep(25);
        expect(existsSync(sock)).toBe(true);
      } finally {
        serve.kill("SIGTERM");
        expect(await serve.exited).toBe(0);
      }
      unstick(r);
      r.ok(["restore"]);
      expect(trash(r)).toEqual([]);
      expect(r.ok(["snapshot", "-s", "native", "ls"])).toContain("k ");
    } finally {
      unstick(r);
      r.close();
    }
  });
});

test.skipIf(!need(have("strace"), "strace kills a create at each of its mkdirs and renames"))("a create killed at any of its mkdirs and renames: after restore, no volume or the volume with its options, nothing left", () => {
  r = new TestRoot();
  r.ok(["volume", "create", "seed"]);
  const args = ["volume", "create", "-o", "type=tmpfs", "-o", "device=tmpfs", "-o", "o=size=2m", "cut"];
  let kills = 0;
  for (const call of ["mkdir", "mkdirat", "rename", "renameat", "renameat2"]) {
    for (let nth = 1; ; nth++) {
      const inject = `inject=${call}:signal=SIGKILL:when=${nth}`;
      const res = sh(["strace", "-f", "-qq", "-o", "/dev/null", "-e", `trace=${call}`, "-e", inject, STOR, "--root", r.path, "--config", r.config, ...args]);
      r.ok(["restore"]);
      expect(violations(r)).toEqual([]);
      const found = r.stor(["volume", "inspect", "cut"]);
      if (found.code === 0) expect(JSON.parse(found.stdout)[0].Options).toEqual(TMPFS_OPTIONS);
      else expect(found.code).toBe(3);
      r.ok(["volume", "rm", "-f", "cut"]);
      if (res.code === 0) break; // the create got past its last such call
      kills++;
    }
  }
  expect(kills).toBeGreaterThan(2);
});

test("restore leaves alone a volume directory a create is still building", () => {
  r = new TestRoot();
  r.ok(["volume", "create", "seed"]);
  const vols = join(r.path, "volumes");
  mkdirSync(join(vols, ".new-a1b2c3/_data"), { recursive: true });
  // As a create in progress holds it: the volumes root locked shared while it builds.
  const held = sh(["flock", "-s", vols, STOR, "--root", r.path, "--config", r.config, "restore"]);
  expect([held.code, held.stdout]).toEqual([0, ""]);
  expect(existsSync(join(vols, ".new-a1b2c3"))).toBe(true);
  expect(r.ok(["restore"])).toBe(`removed ${vols}/.new-a1b2c3: left by an interrupted create or removal\n`);
});

test("restore removes the lock files of killed holders and keeps the one a live process holds", () => {
  r = new TestRoot();
  r.ok(["volume", "create", "seed"]);
  const locks = join(r.path, "volumes/.meta/locks");
  // As processes killed while they held them leave them: files nobody has locked.
  writeFileSync(join(locks, "dead1"), "");
  writeFileSync(join(locks, "dead2"), "");
  writeFileSync(join(locks, "live"), "");
  // `live` is held by a running process (flock) while restore runs.
  const held = sh(["flock", "-x", join(locks, "live"), STOR, "--root", r.path, "--config", r.config, "restore"]);
  expect([held.code, held.stdout]).toEqual([0, ""]);
  expect(readdirSync(locks)).toEqual(["live"]);
  r.ok(["restore"]);
  expect(readdirSync(locks)).toEqual([]);
  // The names lock as before.
  r.ok(["volume", "create", "dead1"]);
  r.ok(["volume", "rm", "dead1"]);
});

test("a create killed once its volume is made, before its record: restore adopts it with exactly its labels, named or anonymous", () => {
  r = new TestRoot();
  r.ok(["volume", "create", "seed"]);
  for (const args of [["--label", "owner=db", "v1"], ["--label", "k=v"]]) {
    const killed = r.stor(["volume", "create", ...args], { env: { STOR_FAILPOINT: "volume-create:made" } });
    expect([killed.code, killed.stdout, killed.stderr]).toEqual([-1, "", ""]);
  }
  r.ok(["restore"]);
  expect(violations(r)).toEqual([]);
  const anonymous = r.ok(["volume", "ls", "-q"]).split("\n").find((n) => /^[0-9a-f]{64}$/.test(n))!;
  const labels = (name: string) => JSON.parse(r!.ok(["volume", "inspect", name]))[0].Labels;
  expect(labels("v1")).toEqual({ owner: "db" });
  expect(labels(anonymous)).toEqual({ k: "v", "com.docker.volume.anonymous": "" });
  // The create retried finds the volume it made, labels and all.
  expect(r.ok(["volume", "create", "--label", "owner=db", "v1"])).toBe("v1\n");
  expect(labels("v1")).toEqual({ owner: "db" });
  // Anonymous still: prune (without -a) removes it, and only it.
  expect(r.ok(["volume", "prune", "-f"])).toBe(`Deleted Volumes:\n${anonymous}\n\nTotal reclaimed space: 0B\n`);
  expect(r.ok(["volume", "ls", "-q"])).toBe("seed\nv1\n");
});

test.skipIf(!need(isRoot(), "tmpfs volumes are mounted; mounting needs root"))("an unmount killed after its unmount, before its record: the next mount mounts the device, with or without a restore first", () => {
  r = new TestRoot();
  r.ok(["volume", "create", "-o", "type=tmpfs", "-o", "device=tmpfs", "-o", "o=size=2m", "tt"]);
  const data = r.ok(["volume", "mount", "tt", "c1"]).trim();
  const mounted = () => readFileSync("/proc/self/mountinfo", "utf8").split("\n").some((l) => l.split(" ")[4] === data);
  for (const restoreFirst of [false, true]) {
    expect(r.stor(["volume", "unmount", "tt", "c1"], { env: { STOR_FAILPOINT: "volume-unmount:unmounted" } }).code).toBe(-1);
    expect(mounted()).toBe(false);
    if (restoreFirst) r.ok(["restore"]);
    expect(r.ok(["volume", "mount", "tt", "c2"]).trim()).toBe(data);
    expect(mounted()).toBe(true);
    writeFileSync(join(data, "on-the-device"), "x");
    r.ok(["volume", "unmount", "tt", "c2"]);
    r.ok(["volume", "unmount", "tt", "c1"]);
    expect(mounted()).toBe(false);
    expect(existsSync(join(data, "on-the-device"))).toBe(false); // it was on the tmpfs, gone with it
    r.ok(["volume", "mount", "tt", "c1"]);
  }
  r.ok(["volume", "unmount", "tt", "c1"]);
});

test("after an rm killed once its storage was gone, before restore: mount is not found, create makes it anew", () => {
  r = new TestRoot();
  r.ok(["volume", "create", "--label", "old=1", "vol"]);
  expect(r.stor(["volume", "rm", "vol"], { env: { STOR_FAILPOINT: "volume-rm:renamed" } }).code).toBe(-1);
  // The metadata is still there (restore forgets it); the storage is gone for good.
  expect(r.stor(["volume", "mount", "vol", "c1"])).toEqual({ code: 3, stdout: "", stderr: 'stor: volume "vol": not found: its removal was cut short (stor restore forgets it)\n' });
  expect(r.ok(["volume", "create", "vol"])).toBe("vol\n");
  const data = r.ok(["volume", "mount", "vol", "c1"]).trim();
  writeFileSync(join(data, "file"), "new");
  expect(JSON.parse(r.ok(["volume", "inspect", "vol"]))[0].Labels).toEqual({});
  r.ok(["volume", "unmount", "vol", "c1"]);
  r.ok(["restore"]);
  expect(violations(r)).toEqual([]);
  expect(readFileSync(join(r.path, "volumes/vol/_data/file"), "utf8")).toBe("new");
});
