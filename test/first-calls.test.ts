/**
 * What the everyday commands run for the first time in their process. JavaScriptCore compiles its
 * JavaScript-implemented builtins (Array.prototype.map, filter, reduce…) from their source on a
 * process's first call of each, which costs a short command 0.05–0.3 ms apiece: the everyday paths
 * use loops instead (see README, Speed). `BUN_JSC_dumpGeneratedBytecodes=1` makes the binary name
 * every code block it generates, so each command here is run with it and its list is read.
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

/** The names of the code blocks `args` generated, each once; the command must succeed. */
function generated(args: string[]): Set<string> {
  const res = r.stor(args, { env: { BUN_JSC_dumpGeneratedBytecodes: "1" } });
  if (res.code !== 0) throw new Error(`stor ${args.join(" ")}: exit ${res.code}: ${res.stderr.split("\n").find((l) => l.startsWith("stor:"))}`);
  const names = new Set<string>();
  for (const m of res.stderr.matchAll(/^([^\s#]+)#[A-Za-z0-9]+:\[/gm)) names.add(m[1]!);
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
