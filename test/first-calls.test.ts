/**
 * What the everyday commands run for the first time in their process. JavaScriptCore compiles its
 * JavaScript-implemented builtins (Array.prototype.map, filter, reduce…) from their source on a
 * process's first call of each, which costs a short command 0.05–0.3 ms apiece: the everyday paths
 * use loops instead (see README, Speed). Nor do they call require(), whose first call costs more
 * (src/lazy.ts). `BUN_JSC_dumpGeneratedBytecodes=1` makes the binary name every code block it
 * generates, so each command here is run with it and its list is read.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { TestRoot, isRoot, need, sh } from "./helpers.ts";

/** Builtins JavaScriptCore implements in JavaScript, by the names their code blocks carry. */
const JS_BUILTINS = ["map", "filter", "some", "every", "forEach", "reduce", "reduceRight", "flatMap", "findLast", "findIndex", "fromEntries", "from"];

let r: TestRoot;
beforeAll(() => {
  r = new TestRoot();
  r.ok(["snapshot", "-s", "overlay", "prepare", "base-a"]);
  r.ok(["snapshot", "-s", "overlay", "commit", "base", "base-a"]);
  r.ok(["volume", "create", "v0"]);
});
afterAll(() => r.close());

/** What each command run so far generated: a command changes the store, so it runs once, whichever test asks first. */
const dumps = new Map<string, Set<string>>();

/** The names of the code blocks `args` generated, each once; the command must succeed. */
function generated(args: string[]): Set<string> {
  const key = args.join("\0");
  const done = dumps.get(key);
  if (done) return done;
  const res = r.stor(args, { env: { BUN_JSC_dumpGeneratedBytecodes: "1" } });
  if (res.code !== 0) throw new Error(`stor ${args.join(" ")}: exit ${res.code}: ${res.stderr.split("\n").find((l) => l.startsWith("stor:"))}`);
  const names = new Set<string>();
  for (const m of res.stderr.matchAll(/^([^\s#]+)#[A-Za-z0-9]+:\[/gm)) names.add(m[1]!);
  dumps.set(key, names);
  return names;
}

const EVERYDAY: string[][] = [
  ["snapshot", "-s", "overlay", "prepare", "-l", "a=b", "work", "base"],
  ["snapshot", "-s", "overlay", "view", "look", "base"],
  ["snapshot", "-s", "overlay", "mounts", "/mnt", "work"],
  ["snapshot", "-s", "overlay", "info", "work"],
  ["snapshot", "-s", "overlay", "label", "work", "c=d"],
  ["snapshot", "-s", "overlay", "usage", "work"],
  ["snapshot", "-s", "overlay", "commit", "done", "work"],
  ["snapshot", "-s", "overlay", "rm", "look"],
  ["volume", "create", "--label", "a=b", "v1"],
  ["volume", "inspect", "v1"],
  ["volume", "rm", "v1"],
];

test.skipIf(!need(isRoot(), "snapshot directories are owned by root"))("the everyday commands compile no JavaScript-implemented array builtin", () => {
  // The dump works: bun:sqlite's Database, which every one of them opens, is in each list.
  const misses: string[] = [];
  for (const args of EVERYDAY) {
    const names = generated(args);
    expect(names.has("Database")).toBe(true);
    const compiled = JS_BUILTINS.filter((b) => names.has(b));
    if (compiled.length > 0) misses.push(`${args.join(" ")}: ${compiled.join(", ")}`);
  }
  expect(misses).toEqual([]);
  // And a builtin, once called, is in the dump under its name: this Bun names them so.
  const probe = sh([process.execPath, "-e", "[1].map((x) => x)"], { env: { BUN_JSC_dumpGeneratedBytecodes: "1" } });
  expect(probe.stderr).toMatch(/^map#/m);
}, 60_000); // each dump is a few megabytes of text

test.skipIf(!need(isRoot(), "snapshot directories are owned by root"))("the everyday commands make no require(): a compiled stor's first one costs 1.1–1.9 ms", () => {
  // Code they may need is imported ahead by an asynchronous step (src/lazy.ts). A require runs
  // Bun's JavaScript-implemented `require`, whose code block the dump names; an import() does not.
  const commands = [...EVERYDAY, ["snapshot", "-s", "overlay", "ls"], ["snapshot", "-s", "native", "prepare", "copy"], ["snapshot", "-s", "native", "rm", "copy"], ["volume", "ls"]];
  const requiring = commands.filter((args) => generated(args).has("require")).map((args) => args.join(" "));
  expect(requiring).toEqual([]);
  // And a command that requires (restore: node:fs, loaded where it is used) shows it in its dump.
  expect(generated(["restore"]).has("require")).toBe(true);
}, 60_000);
