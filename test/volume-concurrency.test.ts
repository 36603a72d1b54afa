/** Many stor processes on one volume root at once: exact results, and never a locking error. */
import { afterEach, expect, test } from "bun:test";
import { mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { STOR, TestRoot, have, isRoot, need, sh, type Result } from "./helpers.ts";

let r: TestRoot | undefined;
afterEach(() => {
  r?.close();
  r = undefined;
});

const failures = (res: Result[]) => res.filter((x) => x.code !== 0 || x.stderr !== "");
const volumeDirs = (root: TestRoot) => readdirSync(join(root.path, "volumes")).filter((n) => !n.startsWith(".")).sort();

test("50 parallel creates of one name on a fresh root: all succeed, one volume", async () => {
  r = new TestRoot();
  const res = await r.parallel(Array.from({ length: 50 }, () => ["volume", "create", "--label", "k=v", "same"]));
  expect(failures(res)).toEqual([]);
  expect(res.every((x) => x.stdout === "same\n")).toBe(true);
  expect(r.ok(["volume", "ls", "-q"])).toBe("same\n");
  expect(JSON.parse(r.ok(["volume", "inspect", "same"]))[0].Labels).toEqual({ k: "v" });
  expect(volumeDirs(r)).toEqual(["same"]);
}, 120_000);

test("50 parallel creates of 50 names on a fresh root: all succeed, each once", async () => {
  r = new TestRoot();
  const names = Array.from({ length: 50 }, (_, i) => `v${i}`);
  const res = await r.parallel(names.map((n) => ["volume", "create", n]));
  expect(failures(res)).toEqual([]);
  expect(res.map((x) => x.stdout)).toEqual(names.map((n) => `${n}\n`));
  expect(r.ok(["volume", "ls", "-q"])).toBe(names.join("\n") + "\n");
  expect(volumeDirs(r)).toEqual([...names].sort());
}, 120_000);

test.skipIf(!need(have("flock"), "flock(1) holds a volume's lock as another stor process would"))("work on one volume waits for the process holding it; other volumes do not", async () => {
  r = new TestRoot();
  r.ok(["volume", "create", "made"]); // a command that makes the store: its lock directory too
  r.ok(["volume", "rm", "made"]);
  const lockFile = join(r.path, "volumes/.meta/locks/held");
  sh(["touch", lockFile]);
  const holder = Bun.spawn(["flock", lockFile, "cat"], { stdin: "pipe" }); // held until its input ends below, however slow the machine
  while (sh(["flock", "-n", lockFile, "true"]).code === 0) await Bun.sleep(10);
  const spawn = (name: string) => Bun.spawn([STOR, "--root", r!.path, "--config", r!.config, "volume", "create", name], { stdout: "pipe", stderr: "pipe" });
  const waiting = Array.from({ length: 5 }, () => spawn("held"));
  const other = spawn("other");
  expect(await other.exited).toBe(0);
  await Bun.sleep(500);
  expect(waiting.map((p) => p.exitCode)).toEqual(Array(5).fill(null)); // still waiting for the lock
  expect(r.ok(["volume", "ls", "-q"])).toBe("other\n");
  void holder.stdin.end();
  await holder.exited;
  expect(await Promise.all(waiting.map((p) => p.exited))).toEqual(Array(5).fill(0));
  expect(r.ok(["volume", "ls", "-q"])).toBe("held\nother\n");
}, 120_000);

test.skipIf(!need(have("flock"), "flock(1) holds a volume's lock as another stor process would"))(
  "a prune of several batches holds its names as one lock each: a create of a name it holds waits for it, and it waits for a name another holds",
  async () => {
    r = new TestRoot();
    const vols = join(r.path, "volumes");
    r.ok(["volume", "create", "made"]); // makes the store: its lock directory too
    r.ok(["volume", "rm", "made"]);
    for (let i = 0; i < 600; i++) mkdirSync(join(vols, `p${i}`, "_data"), { recursive: true });
    r.ok(["restore"]); // adopts them
    const locks = join(vols, ".meta/locks");
    const held = join(locks, "p300");
    sh(["touch", held]);
    const holder = Bun.spawn(["flock", held, "cat"], { stdin: "pipe" }); // held until its input ends below, however slow the machine
    while (sh(["flock", "-n", held, "true"]).code === 0) await Bun.sleep(10);
    const prune = Bun.spawn([STOR, "--root", r.path, "--config", r.config, "volume", "prune", "-a", "-f"], { stdout: "pipe", stderr: "pipe" });
    // The names prune holds while it waits for p300 are links to one file: its link count says how many.
    let linked: string[] = [];
    for (let i = 0; i < 300 && linked.length === 0; i++, await Bun.sleep(10)) {
      linked = readdirSync(locks).filter((n) => n !== "p300" && (statSync(join(locks, n), { throwIfNoEntry: false })?.nlink ?? 0) > 1);
    }
    expect(linked.length).toBeGreaterThan(1);
    const name = linked[0]!;
    const create = Bun.spawn([STOR, "--root", r.path, "--config", r.config, "volume", "create", name], { stdout: "pipe", stderr: "pipe" });
    await Bun.sleep(500);
    expect([prune.exitCode, create.exitCode]).toEqual([null, null]); // both wait: prune for p300, the create for prune
    void holder.stdin.end();
    await holder.exited;
    expect(await prune.exited).toBe(0);
    expect(await create.exited).toBe(0);
    expect(await new Response(prune.stdout).text()).toContain("\np300\n");
    // The create came after the prune of its name: a new, empty volume.
    expect(r.ok(["volume", "ls", "-q"])).toBe(`${name}\n`);
    expect(readdirSync(join(vols, name, "_data"))).toEqual([]);
    expect(readdirSync(locks)).toEqual([]); // no lock file left behind
  },
  120_000,
);

test("creates and removes racing with ls and inspect: nothing fails that should not", async () => {
  r = new TestRoot();
  for (let i = 0; i < 20; i++) r.ok(["volume", "create", `old${i}`]);
  const jobs: string[][] = [];
  for (let i = 0; i < 20; i++) jobs.push(["volume", "rm", `old${i}`], ["volume", "create", `new${i}`], ["volume", "ls"], ["volume", "inspect", `old${i}`]);
  const res = await r.parallel(jobs);
  // inspect may come after its volume's removal (exit 3); nothing else may fail.
  expect(res.filter((x, i) => (x.code !== 0 || x.stderr !== "") && !(jobs[i]![1] === "inspect" && x.code === 3))).toEqual([]);
  expect(res.some((x) => /locked|busy/i.test(x.stderr))).toBe(false);
  expect(r.ok(["volume", "ls", "-q"]).split("\n").filter(Boolean).sort()).toEqual(Array.from({ length: 20 }, (_, i) => `new${i}`).sort());
}, 120_000);

test.skipIf(!need(isRoot(), "mounting volumes needs root"))("parallel references on one tmpfs volume: one mount while any is held, none after the last", async () => {
  r = new TestRoot();
  r.ok(["volume", "create", "-o", "type=tmpfs", "-o", "device=tmpfs", "shared"]);
  const data = join(r.path, "volumes/shared/_data");
  const mounts = () => readFileSync("/proc/self/mountinfo", "utf8").split("\n").filter((l) => l.split(" ")[4] === data).length;
  const refs = Array.from({ length: 25 }, (_, i) => `c${i}`);

  const up = await r.parallel(refs.map((c) => ["volume", "mount", "shared", c]));
  expect(failures(up)).toEqual([]);
  expect(up.every((x) => x.stdout === `${data}\n`)).toBe(true);
  expect(mounts()).toBe(1);
  expect(r.stor(["volume", "rm", "shared"]).stderr).toBe(`stor: volume "shared": in use - [${[...refs].sort().join(", ")}]\n`);

  const down = await r.parallel(refs.map((c) => ["volume", "unmount", "shared", c]));
  expect(failures(down)).toEqual([]);
  expect(mounts()).toBe(0);
  expect(r.ok(["volume", "rm", "shared"])).toBe("shared\n");
}, 120_000);

/**
 * Runs `stor volume prune ARGS` while another process holds the lock of `held`, a name of its
 * first batch: prune has chosen its candidates and waits there. `meanwhile` runs then, on names of
 * its later batches; prune's result is returned once it is let go.
 */
async function pruneHeldUp(root: TestRoot, args: string[], held: string, meanwhile: () => void): Promise<Result> {
  const locks = join(root.path, "volumes/.meta/locks");
  const heldFile = join(locks, held);
  sh(["touch", heldFile]);
  const holder = Bun.spawn(["flock", heldFile, "cat"], { stdin: "pipe" }); // held until its input ends below
  while (sh(["flock", "-n", heldFile, "true"]).code === 0) await Bun.sleep(10);
  const prune = Bun.spawn([STOR, "--root", root.path, "--config", root.config, "volume", "prune", ...args], { stdout: "pipe", stderr: "pipe" });
  // The names of the batch prune holds while it waits are links to one file.
  const waiting = () => readdirSync(locks).some((n) => n !== held && (statSync(join(locks, n), { throwIfNoEntry: false })?.nlink ?? 0) > 1);
  for (let i = 0; i < 1000 && !waiting(); i++) await Bun.sleep(10);
  expect(waiting()).toBe(true);
  meanwhile();
  void holder.stdin.end();
  await holder.exited;
  const [stdout, stderr, code] = await Promise.all([new Response(prune.stdout).text(), new Response(prune.stderr).text(), prune.exited]);
  return { code, stdout, stderr };
}

/** Made again under `name` by another command, holding `data`: it is not the volume prune chose. */
function madeAgain(root: TestRoot, name: string, createArgs: string[], data: string): void {
  root.ok(["volume", "rm", name]);
  root.ok(["volume", "create", ...createArgs, name]);
  writeFileSync(join(root.path, "volumes", name, "_data/db"), data);
}

test.skipIf(!need(have("flock"), "flock(1) holds a volume's lock as another stor process would"))(
  "prune --filter: a volume removed and made again while prune waits for its lock is another volume, and stays, with its data",
  async () => {
    r = new TestRoot();
    const names = Array.from({ length: 300 }, (_, i) => `s${String(i).padStart(3, "0")}`); // two batches of locks
    for (let i = 0; i < names.length; i += 25) expect(failures(await r.parallel(names.slice(i, i + 25).map((n) => ["volume", "create", "--label", "scratch=1", n])))).toEqual([]);
    const root = r;
    const res = await pruneHeldUp(r, ["-a", "-f", "--filter", "label=scratch"], "s100", () => {
      madeAgain(root, "s290", [], "no longer scratch"); // no longer matches the filter
      madeAgain(root, "s291", ["--label", "scratch=1"], "another scratch"); // matches, but is not the volume chosen
    });
    expect([res.code, res.stderr]).toEqual([0, ""]);
    expect(r.ok(["volume", "ls", "-q"])).toBe("s290\ns291\n");
    expect(readFileSync(join(r.path, "volumes/s290/_data/db"), "utf8")).toBe("no longer scratch");
    expect(readFileSync(join(r.path, "volumes/s291/_data/db"), "utf8")).toBe("another scratch");
    expect(res.stdout.split("\n").filter((n) => n.startsWith("s"))).toEqual(names.filter((n) => n !== "s290" && n !== "s291"));
  },
  120_000,
);

test.skipIf(!need(have("flock"), "flock(1) holds a volume's lock as another stor process would"))(
  "prune without -a: an anonymous volume made again under its name, not anonymous, while prune waits for its lock stays",
  async () => {
    r = new TestRoot();
    for (let i = 0; i < 300; i += 25) expect(failures(await r.parallel(Array.from({ length: 25 }, () => ["volume", "create"])))).toEqual([]);
    const names = r.ok(["volume", "ls", "-q"]).split("\n").filter(Boolean).sort();
    expect(names).toHaveLength(300);
    const named = names.at(-1)!;
    const root = r;
    const res = await pruneHeldUp(r, ["-f"], names[100]!, () => madeAgain(root, named, [], "named now"));
    expect([res.code, res.stderr]).toEqual([0, ""]);
    expect(r.ok(["volume", "ls", "-q"])).toBe(`${named}\n`);
    expect(JSON.parse(r.ok(["volume", "inspect", named]))[0].Labels).toEqual({});
    expect(readFileSync(join(r.path, "volumes", named, "_data/db"), "utf8")).toBe("named now");
    expect(res.stdout.split("\n").filter((n) => /^[0-9a-f]{64}$/.test(n))).toEqual(names.slice(0, -1));
  },
  120_000,
);
