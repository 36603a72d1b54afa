/** STOR_TRACE=1: where one command's time goes, on stderr; without it, not a word more. */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { TestRoot, isRoot, need } from "./helpers.ts";

let r: TestRoot;
beforeAll(() => {
  r = new TestRoot();
  r.ok(["snapshot", "-s", "native", "prepare", "a"]);
});
afterAll(() => r.close());

/** The bytecode layout line a traced command ends with: how many functions it loaded were laid out first, and how many not. */
function layout(stderr: string): { profiled: number; not: number } | undefined {
  const m = /^stor trace: bytecode layout: (\d+) functions from the profile, (\d+) not$/m.exec(stderr);
  return m ? { profiled: Number(m[1]), not: Number(m[2]) } : undefined;
}

/** The phases a traced command printed, with their microseconds and (a phase, not a cost inside one) page faults. */
function phases(stderr: string): [string, number, number?][] {
  return stderr
    .split("\n")
    .filter((line) => line !== "" && !line.startsWith("stor trace: bytecode layout: "))
    .map((line) => {
      const m = /^stor trace: (.+?) +(\d+) µs +(?:(\d+) faults)?  \(at (\d+) µs\)$/.exec(line);
      if (!m) throw new Error(`not a trace line: ${line}`);
      return [m[1]!, Number(m[2]), m[3] === undefined ? undefined : Number(m[3])];
    });
}

test("a traced read prints its phases in order, from start-up to exit, and the same output", () => {
  const plain = r.stor(["snapshot", "-s", "native", "ls"]);
  const traced = r.stor(["snapshot", "-s", "native", "ls"], { env: { STOR_TRACE: "1" } });
  expect(traced.code).toBe(0);
  expect(traced.stdout).toBe(plain.stdout);
  expect(plain.stderr).toBe("");
  const names = phases(traced.stderr).map(([p]) => p);
  expect(names).toEqual(["start-up, bundle load", "command load, parse", "config", "root check", "sqlite open", "pragmas, schema", "query, format", "exit"]);
  // Each phase says how many pages it touched first: the runtime's start-up alone touches hundreds.
  const faults = phases(traced.stderr).map(([, , f]) => f);
  expect(faults.every((f) => f !== undefined)).toBe(true);
  expect(faults[0]).toBeGreaterThan(100);
});

test("a traced write and a traced failure end with exit too", () => {
  const write = r.stor(["snapshot", "-s", "native", "label", "a", "k=v"], { env: { STOR_TRACE: "1" } });
  expect(write.stdout).toBe("k=v\n");
  expect(phases(write.stderr).at(-1)![0]).toBe("exit");
  const failed = r.stor(["snapshot", "-s", "native", "info", "nosuch"], { env: { STOR_TRACE: "1" } });
  expect(failed.code).toBe(3);
  const [first, ...rest] = failed.stderr.split("\n");
  expect(first).toBe('stor: snapshot "nosuch": not found');
  expect(phases(rest.join("\n")).at(-1)![0]).toBe("exit");
});

/** How many times a traced `stor args` loaded node:fs (its own line in the trace). */
function fsLoads(args: string[]): number {
  const res = r.stor(args, { env: { STOR_TRACE: "1" } });
  if (res.code !== 0) throw new Error(`stor ${args.join(" ")}: ${res.stderr}`);
  return phases(res.stderr).filter(([p]) => p === "(node:fs load)").length;
}

test("everyday commands never load node:fs, which costs a command about 1 ms; restore does, and the trace says so", () => {
  const native = (...a: string[]) => ["snapshot", "-s", "native", ...a];
  const everyday = [
    native("prepare", "e1"),
    native("commit", "e2", "e1"),
    native("info", "e2"),
    native("ls"),
    native("mounts", "/t", "a"),
    native("usage", "a"),
    native("label", "e2", "k=v"),
    native("view", "e3"),
    native("rm", "e3"),
    ["volume", "create", "tv"],
    ["volume", "inspect", "tv"],
    ["volume", "ls"],
    ["volume", "rm", "tv"],
    ["--version"],
  ];
  expect(everyday.filter((args) => fsLoads(args) !== 0).map((args) => args.join(" "))).toEqual([]);
  r.ok(native("prepare", "e5"));
  // A native copy too, of a tree with a file, a directory and a symlink in it.
  const tree = JSON.parse(r.ok(native("mounts", "--format", "json", "/t", "e5")))[0]?.Source as string | undefined;
  expect(tree).toBeDefined();
  mkdirSync(join(tree!, "dir"));
  writeFileSync(join(tree!, "dir", "file"), "data");
  symlinkSync("dir/file", join(tree!, "link"));
  r.ok(native("commit", "e6", "e5"));
  expect(fsLoads(native("prepare", "e4", "e6"))).toBe(0);
  const copy = JSON.parse(r.ok(native("mounts", "--format", "json", "/t", "e4")))[0].Source as string;
  expect(readFileSync(join(copy, "link"), "utf8")).toBe("data");
  expect(fsLoads(["restore"])).toBe(1); // its cleanup lists directories through node:fs
});

test.skipIf(!need(isRoot(), "overlay snapshots need root"))("overlay's everyday commands never load node:fs either", () => {
  const overlay = (...a: string[]) => ["snapshot", "-s", "overlay", ...a];
  const everyday = [overlay("prepare", "o1"), overlay("commit", "o2", "o1"), overlay("prepare", "o3", "o2"), overlay("mounts", "/t", "o3"), overlay("rm", "o3"), overlay("info", "o2")];
  expect(everyday.filter((args) => fsLoads(args) !== 0).map((args) => args.join(" "))).toEqual([]);
});

test("the build lays out the bytecode of the commands it recorded: a traced info loaded nothing else", () => {
  const info = r.stor(["snapshot", "-s", "native", "info", "a"], { env: { STOR_TRACE: "1" } });
  expect(info.code).toBe(0);
  const stats = layout(info.stderr);
  expect(stats).toBeDefined(); // undefined: the binary under test was built without a profile
  expect(stats!.profiled).toBeGreaterThan(50);
  // Not the same command as the build's (native, not overlay), so a few of its functions may lie later.
  expect(stats!.not).toBeLessThan(stats!.profiled / 5);
  expect(r.stor(["snapshot", "-s", "native", "info", "a"]).stderr).toBe(""); // untraced, not a word
});
