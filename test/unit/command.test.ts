/** The option parser every command uses (src/cli/command.ts), without a process or a store. */
import { describe, expect, test } from "bun:test";
import { CommandDef, keyValues, parseCommand } from "../../src/cli/command.ts";
import { StorError } from "../../src/errors.ts";

const prepare = new CommandDef("prepare <key> [parent]", "Make a snapshot.")
  .option("-t, --target <target>", "target")
  .option("--mounts", "mounts")
  .option("-l, --label <k=v>", "label", { repeat: true })
  .option("--format <format>", "format", { default: "table" });
const rm = new CommandDef("rm [...key]", "Remove.").option("-f, --force", "force");
const serve = new CommandDef("serve", "Serve.").option("--docker-volume [socket]", "socket");

const parse = (cmd: CommandDef, ...words: string[]) => parseCommand(cmd, words, cmd.name);
const refusal = (cmd: CommandDef, ...words: string[]) => {
  try {
    parse(cmd, ...words);
  } catch (err) {
    return [(err as StorError).code, (err as StorError).message];
  }
  return "accepted";
};

describe("parseCommand", () => {
  test("positionals and options in any order, values attached or not, defaults filled in", () => {
    expect(parse(prepare, "k", "-t", "/x", "p", "--mounts")).toEqual({ help: false, args: ["k", "p"], options: { target: "/x", mounts: true, format: "table" } });
    expect(parse(prepare, "-t/x", "--target=/y", "k")).toMatchObject({ args: ["k"], options: { target: "/y" } });
  });

  test("a repeatable option keeps every value", () => {
    expect(parse(prepare, "-l", "a=1", "--label=b=2", "-lc", "k")).toMatchObject({ options: { label: ["a=1", "b=2", "c"] } });
  });

  test("-- ends the options: what follows is positional, as given", () => {
    expect(parse(prepare, "--", "-t", "--mounts")).toMatchObject({ args: ["-t", "--mounts"], options: { format: "table" } });
    expect(parse(rm, "a", "--", "--", "-f")).toMatchObject({ args: ["a", "--", "-f"], options: {} });
  });

  test("a cluster of flags is each of them; -h or --help anywhere before -- asks for help", () => {
    expect(parse(rm, "-f", "k")).toMatchObject({ options: { force: true } });
    expect(parse(prepare, "k", "--help")).toEqual({ help: true });
    expect(parse(prepare, "-h")).toEqual({ help: true });
    expect(parse(prepare, "--", "-h")).toMatchObject({ help: false, args: ["-h"] });
  });

  test("values come as typed (cac reads them): numbers, empty, a leading dash; - is a positional", () => {
    expect(parse(prepare, "-t", "010", "-l", "1e3", "k")).toMatchObject({ options: { target: "010", label: ["1e3"] } });
    expect(parse(prepare, "--target=", "k")).toMatchObject({ args: ["k"], options: { target: "" } });
    expect(parse(prepare, "-t", "-x", "k", "-")).toMatchObject({ args: ["k", "-"], options: { target: "-x" } });
    expect(parse(prepare, "--format", "json", "--format", "table", "k")).toMatchObject({ options: { format: "table" } });
    expect(refusal(prepare, "--no-mounts", "k")).toEqual([2, "prepare: unknown option --no-mounts (see --help)"]);
  });

  test("an optional value is taken with = or from a next word that is not an option", () => {
    expect(parse(serve)).toEqual({ help: false, args: [], options: {} });
    expect(parse(serve, "--docker-volume")).toMatchObject({ options: { dockerVolume: true } });
    expect(parse(serve, "--docker-volume", "/s")).toMatchObject({ options: { dockerVolume: "/s" } });
    expect(parse(serve, "--docker-volume=/s")).toMatchObject({ options: { dockerVolume: "/s" } });
  });

  test.each([
    [["-dash", "seed"], "prepare: unknown option -d in -dash (see --help)"],
    [["--bogus", "k"], "prepare: unknown option --bogus (see --help)"],
    [["k", "-t"], "prepare: option -t needs a value (see --help)"],
    [["k", "--target"], "prepare: option --target needs a value (see --help)"],
    [["k", "--mounts=yes"], "prepare: option --mounts takes no value (see --help)"],
    [[], "prepare: missing argument KEY (see --help)"],
    [["k", "p", "extra"], 'prepare: unexpected argument "extra" (see --help)'],
  ] as const)("prepare %p is a usage error (exit 2)", (words, message) => {
    expect(refusal(prepare, ...words)).toEqual([2, message]);
  });
});

describe("keyValues", () => {
  test("K=V words, the value may hold = and be empty", () => {
    expect(keyValues(["a=1", "b=x=y", "c="], "label")).toEqual({ a: "1", b: "x=y", c: "" });
  });
  test("a bare K takes the reference tool's value where it has one, else is refused", () => {
    expect(keyValues(["c"], "label", "")).toEqual({ c: "" });
    expect(keyValues(["c"], "label", "true")).toEqual({ c: "true" });
    expect(() => keyValues(["c"], "option")).toThrow('option "c": expected KEY=VALUE');
    expect(() => keyValues(["=v"], "label", "")).toThrow('label "=v": expected KEY=VALUE');
  });
});

describe("an option's spelling", () => {
  const options = (...spellings: string[]) => {
    const c = new CommandDef("x", "x");
    for (const s of spellings) c.option(s, "d");
    return c.options.map(({ short, long, key, value }) => ({ short, long, key, value }));
  };

  test("gives its letter, long name, key and value", () => {
    expect(options("-t, --target <target>", "--docker-volume [socket]", "-b", "--dry-run", "-o <k=v>")).toEqual([
      { short: "t", long: "target", key: "target", value: { name: "target", optional: false } },
      { short: undefined, long: "docker-volume", key: "dockerVolume", value: { name: "socket", optional: true } },
      { short: "b", long: undefined, key: "b", value: undefined },
      { short: undefined, long: "dry-run", key: "dryRun", value: undefined },
      { short: "o", long: undefined, key: "o", value: { name: "k=v", optional: false } },
    ]);
  });

  test.each(["", "t", "-", "--", "-tt", "-t,", "-t --target", "--target,", "-t,  --target", "--tar get", "--target <v> x", "--target v", "--target <>", "--target <v", "--target <v]", "--t!"])(
    "%p is a mistake, refused when the command runs",
    (spelling) => {
      expect(() => options(spelling)).toThrow(`bad option spelling ${spelling}`);
    },
  );
});

test("a repeatable option without a required value is a mistake; an option declared after the first read is read too", () => {
  const c = new CommandDef("x", "x").option("-f, --force", "d", { repeat: true });
  expect(() => c.options).toThrow("bad option spelling -f, --force: a repeatable option takes a value");
  // An optional value would give `true` for a bare one, which has no place in a list of values.
  const o = new CommandDef("x", "x").option("--tag [t]", "d", { repeat: true });
  expect(() => o.options).toThrow("bad option spelling --tag [t]: a repeatable option takes a value, <required>");
  const d = new CommandDef("y", "y").option("-a", "d");
  expect(d.options.map((o) => o.short)).toEqual(["a"]);
  d.option("-b", "d");
  expect(d.options.map((o) => o.short)).toEqual(["a", "b"]);
});

describe("a command's spelling", () => {
  test("names its positionals: required, optional, variadic", () => {
    expect(new CommandDef("label <key> [...label]", "x").args).toEqual([
      { name: "key", required: true, variadic: false },
      { name: "label", required: false, variadic: true },
    ]);
    expect(new CommandDef("rm <...names>", "x").args).toEqual([{ name: "names", required: true, variadic: true }]);
  });

  test.each(["prepare  <key>", "prepare <key...>", "prepare key", "prepare <key]", "prepare <>", "prepare [...]", " prepare", "prepare [parent] <key>", "rm <...names> <last>"])(
    "%p is a mistake, refused when its positionals are first read (help and the docs read every command's)",
    (spelling) => {
      expect(() => new CommandDef(spelling, "x").args).toThrow(`bad command spelling ${spelling}`);
    },
  );
});
