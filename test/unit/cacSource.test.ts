/**
 * The cac compiled into stor (src/cacSource.ts) against cac as published: the same commands,
 * options and parses for random spellings and argv, RegExp-hungry characters included.
 */
import { describe, expect, test } from "bun:test";
import { Rng } from "../fuzz/tarModel.ts";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { leanCac } from "../../src/cacSource.ts";

type CacModule = typeof import("cac");

const publishedPath = require.resolve("cac/dist/index.mjs");
const published = (await import(publishedPath)) as CacModule;
const dir = mkdtempSync(join(tmpdir(), "stor-cac-"));
writeFileSync(join(dir, "lean.mjs"), leanCac(readFileSync(publishedPath, "utf8")));
const lean = (await import(join(dir, "lean.mjs"))) as CacModule;
rmSync(dir, { recursive: true });

const rng = new Rng(13);
const rand = () => rng.next();
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
/** A word of the characters cac's RegExps and splits look at, and a few they do not. */
function word(alphabet: readonly string[], max: number): string {
  let w = "";
  for (let n = Math.floor(rand() * (max + 1)); n > 0; n--) w += pick(alphabet);
  return w;
}
const SPELLING = ["a", "b", "z", "A", "1", "-", "-", "<", ">", "[", "]", ".", "*", ",", " ", "\n", "\u2028", "x-y", "no-", "...", "--"];
const ARGV = ["a", "b", "-", "--", "=", "1", "x-y", "no-", ".", "v", "<", "["];

/** What cac made of a command and its options, and what it parsed argv into (or the error). */
function outcome(cac: CacModule, command: string, options: readonly string[], argv: readonly string[]) {
  try {
    const cli = cac.cac("stor");
    const cmd = cli.command(command);
    for (const o of options) cmd.option(o, "");
    const parsed = cli.parse(["", "", ...argv], { run: false });
    return {
      name: cmd.name,
      args: cmd.args,
      options: cmd.options.map((o) => ({ names: o.names, name: o.name, negated: o.negated, required: o.required, isBoolean: o.isBoolean, default: o.config.default })),
      matched: cli.matchedCommand?.name,
      parsed,
    };
  } catch (err) {
    return { error: String(err) };
  }
}

describe("cac as stor compiles it", () => {
  test("makes the same commands and options, and parses argv the same, as cac as published", () => {
    const cases: [string, string[], string[]][] = [
      ["prepare <key> [parent]", ["-l, --label <label>", "--mounts"], ["prepare", "k", "--label=a=b", "--mounts", "--", "p"]],
      ["rm <...keys>", [], ["rm", "a", "b"]],
      ["@@global@@", ["--no-color", "-s, --snapshotter <name>"], ["x", "--no-color", "-s", "overlay"]],
      ["a.b <x-y> [z]", ["--foo-bar.baz [v]", "--a-b-c <d>", "--x.*"], ["a.b", "--foo-bar.baz=1", "--a-b-c", "e", "--x.y", "2"]],
    ];
    for (let i = 0; i < 20_000; i++) {
      const name = word(["a", "b", "x-y", "."], 3);
      const command = `${name}${word(SPELLING, 12)}`;
      const options: string[] = [];
      for (let n = Math.floor(rand() * 3); n > 0; n--) options.push(pick(["-", "--", "-a, --", "--no-"]) + word(SPELLING, 10));
      const argv = [name];
      for (let n = Math.floor(rand() * 5); n > 0; n--) argv.push(pick(["", "-", "--", "--no-"]) + word(ARGV, 6));
      cases.push([command, options, argv]);
    }
    let differ = 0;
    for (const [command, options, argv] of cases) {
      const want = outcome(published, command, options, argv);
      const got = outcome(lean, command, options, argv);
      if (!Bun.deepEquals(got, want, true) && differ++ < 3) expect({ command, options, argv, got }).toEqual({ command, options, argv, got: want });
    }
    expect(differ).toBe(0);
  });

  test("parses a command without options running none of cac's RegExps, map, reduce or entries", () => {
    const watched: [object, PropertyKey][] = [
      [RegExp.prototype, "exec"],
      [RegExp.prototype, Symbol.replace],
      [RegExp.prototype, Symbol.split],
      [Array.prototype, "map"],
      [Array.prototype, "reduce"],
      [Array.prototype, "entries"],
    ];
    const calls = (cac: CacModule) => {
      const used: string[] = [];
      const saved = watched.map(([proto, key]) => Object.getOwnPropertyDescriptor(proto, key)!);
      watched.forEach(([proto, key], i) => {
        const original = saved[i]!.value as (...a: unknown[]) => unknown;
        Object.defineProperty(proto, key, { ...saved[i], value: function (this: unknown, ...a: unknown[]) { used.push(String(key)); return original.apply(this, a); } });
      });
      try {
        const cli = cac.cac("stor");
        cli.command("info <key> [...rest]");
        cli.parse(["", "", "info", "--", "k", "r"], { run: false });
      } finally {
        watched.forEach(([proto, key], i) => Object.defineProperty(proto, key, saved[i]!));
      }
      return used;
    };
    expect(calls(published).length).toBeGreaterThan(0); // what the test would see
    expect(calls(lean)).toEqual([]);
    expect(leanCac(readFileSync(publishedPath, "utf8"))).not.toContain("from 'events'");
  });

  test("a cac whose source changed fails the build instead of compiling half-changed", () => {
    expect(() => leanCac("export const cac = () => {};")).toThrow(/has cac changed/);
  });
});
