/**
 * stor's command definitions and their parser. A command is declared once (its spelling, options,
 * description and example) and that one declaration parses argv, prints `--help`, writes the man
 * page and docs/CLI.md and drives shell completion, so none of them can drift from the others.
 *
 * The rules are getopt's, as git, docker and ctr users expect: `--` ends the options and every
 * word after it is a positional taken as given; `-abc` is `-a -b -c` and an unknown letter in it
 * is an error; `-oVALUE`, `-o VALUE`, `--opt=VALUE` and `--opt VALUE` are the same; options may
 * follow positionals.
 *
 * cac parses the options: the ones given are registered with it, and it builds their values
 * (names, repeats) and splits the positionals off at `--`. Its own reading of argv (mri's)
 * differs from getopt's, so the words are first checked against the declaration and handed to
 * cac in a form it reads only one way: see {@link parseCommand}. A command given no option is
 * only its positionals, and cac is not asked.
 */
import { cac, type Command as CacCommand } from "cac";
import type { Config } from "../config.ts";
import { InvalidArgumentError } from "../errors.ts";
import { stringMap } from "../stringMap.ts";
import { print } from "./output.ts";

/** What a command group is made with: the configuration (loaded on first use) and `-s`. */
export interface Context {
  config(): Config;
  snapshotter?: string;
}

/** A module's command group, made for one invocation. */
export type GroupFactory = (ctx: Context) => Group;

/** An option, from its spelling: `-t, --target <target>`, `-b`, `--docker-volume [socket]`. */
export interface OptionDef {
  /** As declared, `-t, --target <target>`: the form cac reads too. */
  spelling: string;
  short?: string;
  long?: string;
  /** The property it is read under: the long name in camelCase, else the letter. */
  key: string;
  /** Its value: required (`<v>`) or optional (`[v]`, taken only as `--opt=v` or a next word not starting `-`). */
  value?: { name: string; optional: boolean };
  description: string;
  default?: string;
  /** Given more than once, every value is kept (a list); otherwise the last one wins. */
  repeat: boolean;
}

/** A positional argument, from its spelling: `<key>`, `[parent]`, `<...names>`, `[...keys]`. */
export interface ArgDef {
  name: string;
  required: boolean;
  variadic: boolean;
}

/** What an option is given as: its value, its values when repeatable, or true for a flag. */
export type OptionValues = Record<string, string | string[] | boolean | undefined>;
// biome-ignore lint: handlers receive positionals by position, typed by the command that declares them
type Handler = (...args: any[]) => unknown;

/** `a-long-name` as `aLongName`. */
function camel(name: string): string {
  let out = "";
  for (let i = 0; i < name.length; i++) {
    const next = name[i + 1];
    out += name[i] === "-" && next !== undefined && next >= "a" && next <= "z" ? name[++i]!.toUpperCase() : name[i];
  }
  return out;
}

const isWordChar = (c: string) => (c >= "a" && c <= "z") || (c >= "A" && c <= "Z") || (c >= "0" && c <= "9") || c === "_";

/** `-x` */
const isShort = (w: string | undefined): w is string => w?.length === 2 && w[0] === "-" && isWordChar(w[1]!);

/** `--long-name` */
function isLong(w: string | undefined): w is string {
  if (w === undefined || w.length < 3 || !w.startsWith("--")) return false;
  for (let i = 2; i < w.length; i++) if (w[i] !== "-" && !isWordChar(w[i]!)) return false;
  return true;
}

/**
 * An option's names and value from its spelling: `-x`, `--long` or `-x, --long`, then ` <value>`
 * (required) or ` [value]` (optional). Read without a RegExp, which every command would compile;
 * a spelling not written exactly so is a mistake in stor.
 */
function parseOptionSpelling(spelling: string): Pick<OptionDef, "short" | "long" | "key" | "value"> {
  const words = spelling.split(" ");
  const both = words[0]!.endsWith(",");
  const short = both ? words[0]!.slice(0, -1) : isShort(words[0]) ? words[0] : undefined;
  const long = both ? words[1] : short === undefined ? words[0] : undefined;
  const valueWord = words[both ? 2 : 1];
  const required = valueWord?.startsWith("<") && valueWord.endsWith(">");
  const optional = valueWord?.startsWith("[") && valueWord.endsWith("]");
  if (
    words.length > (both ? 3 : 2) ||
    (short !== undefined && !isShort(short)) ||
    ((both || long !== undefined) && !isLong(long)) ||
    (valueWord !== undefined && (valueWord.length < 3 || !(required || optional)))
  ) {
    throw new Error(`bad option spelling ${spelling}`);
  }
  return {
    short: short?.slice(1),
    long: long?.slice(2),
    key: long ? camel(long.slice(2)) : short!.slice(1),
    value: valueWord === undefined ? undefined : { name: valueWord.slice(1, -1), optional: !required },
  };
}

/** One command: `stor snapshot prepare`, `stor mount`. */
export class CommandDef {
  readonly name: string;
  #args?: ArgDef[];
  readonly aliases: string[] = [];
  readonly #declared: [string, string, { default?: string; repeat?: boolean }][] = [];
  #options?: OptionDef[];
  readonly examples: string[] = [];
  /** Whether the global `-s/--snapshotter` chooses what it works on. */
  snapshotter = false;
  handler?: Handler;

  /** `spelling` is the name and positionals (`prepare <key> [parent]`); `description` is one or two sentences. */
  constructor(
    /** As declared: the form cac reads too. */
    readonly spelling: string,
    readonly description: string,
  ) {
    const space = spelling.indexOf(" ");
    this.name = space < 0 ? spelling : spelling.slice(0, space);
  }

  /** The positionals, read from the spelling when first asked for: a group defines many commands to run one. */
  get args(): readonly ArgDef[] {
    if (this.#args) return this.#args;
    const [name, ...words] = this.spelling.split(" ");
    // `<key>`, `[key]`, `<...keys>` or `[...keys]`, one space apart, required ones first and a
    // variadic one last (parseCommand counts on it): anything else is a mistake here.
    const args: ArgDef[] = [];
    for (const a of words) {
      const required = a.startsWith("<") && a.endsWith(">");
      const variadic = a.startsWith("...", 1);
      const last = args[args.length - 1];
      if (!name || !(required || (a.startsWith("[") && a.endsWith("]"))) || a.length < (variadic ? 6 : 3) || a.includes("...", 2) || last?.variadic || (required && last?.required === false)) {
        throw new Error(`bad command spelling ${this.spelling}`);
      }
      args.push({ name: a.slice(variadic ? 4 : 1, -1), required, variadic });
    }
    return (this.#args = args);
  }

  /** The first sentence of the description, for listings. */
  get summary(): string {
    return this.description.replace(/\.(\s.*)?$/s, "");
  }

  option(spelling: string, description: string, extra: { default?: string; repeat?: boolean } = {}): this {
    this.#declared.push([spelling, description, extra]);
    this.#options = undefined;
    return this;
  }

  /** The options, read from their spellings when first asked for: a command parses only its own. */
  get options(): readonly OptionDef[] {
    if (this.#options) return this.#options;
    // A loop, not Array.prototype.map: see optionBy.
    const options: OptionDef[] = [];
    for (const [spelling, description, extra] of this.#declared) {
      const o = { ...parseOptionSpelling(spelling), spelling, description, default: extra.default, repeat: extra.repeat ?? false };
      if (o.repeat && (!o.value || o.value.optional)) throw new Error(`bad option spelling ${spelling}: a repeatable option takes a value, <required>`);
      options.push(o);
    }
    return (this.#options = options);
  }

  alias(name: string): this {
    this.aliases.push(name);
    return this;
  }

  /** A command line that shows the command in use (the first is the one help shows). */
  example(line: string): this {
    this.examples.push(line);
    return this;
  }

  /** Marks the command as one the global `-s/--snapshotter` applies to. */
  usesSnapshotter(): this {
    this.snapshotter = true;
    return this;
  }

  /** Runs `handler(...positionals, options)`; a variadic positional comes as an array. */
  action(handler: Handler): this {
    this.handler = handler;
    return this;
  }
}

/**
 * A group of commands: `stor snapshot …`, `stor volume …`, or top-level commands (`stor mount`,
 * `stor unmount`), whose group is named `stor`.
 */
export class Group {
  readonly commands: CommandDef[] = [];
  readonly #done: (() => void)[] = [];

  constructor(
    readonly name: string,
    readonly description = "",
    /** Whether its commands take `-s/--snapshotter` unless they say otherwise. */
    readonly snapshotter = false,
  ) {}

  /** The group as the user types it after `stor` (`snapshot`), empty for top-level commands. */
  get word(): string {
    return this.name === "stor" ? "" : this.name.slice("stor ".length);
  }

  command(spelling: string, description: string): CommandDef {
    const c = new CommandDef(spelling, description);
    c.snapshotter = this.snapshotter;
    this.commands.push(c);
    return c;
  }

  /** Runs `fn` once the command has run, whether it failed or not (closing a service it opened). */
  finally(fn: () => void): void {
    this.#done.push(fn);
  }

  find(word: string): CommandDef | undefined {
    // A loop, not Array.prototype.find: a JS-implemented builtin compiles on its first call.
    for (const c of this.commands) if (c.name === word || c.aliases.includes(word)) return c;
    return undefined;
  }

  /** Runs `fn` and then what {@link finally} registered. */
  async closing(fn: () => Promise<void>): Promise<void> {
    try {
      await fn();
    } finally {
      for (const f of this.#done) f();
    }
  }
}

/** The outcome of parsing a command's words: help asked for, or its positionals and options. */
export type Parsed = { help: true } | { help: false; args: string[]; options: OptionValues };

/**
 * Goes before every option value handed to cac. mri, cac's reader, turns a value that looks
 * like a number into one (`-t 010` would be 10) and takes an empty `--opt=` as "use the next
 * word"; a value behind a NUL, which no argv word can hold, is neither, and comes back as typed.
 */
const VERBATIM = "\0";

/**
 * The option of `cmd` whose short or long name is `name`. Loops here and below stand for
 * Array.prototype.find, some and forEach on the path every command takes: each JS-implemented
 * builtin compiles on its first call in a process (10–30 µs).
 */
function optionBy(cmd: CommandDef, by: "short" | "long", name: string): OptionDef | undefined {
  for (const o of cmd.options) if (o[by] === name) return o;
  return undefined;
}

/**
 * Parses the words after a command's name against its definition; bad usage is an
 * InvalidArgumentError. The words are read by getopt's rules here only to check them and to
 * write each option in the one form mri reads as getopt would (`--long=VALUE`, a flag alone, the
 * positionals after a `--`): mri would read `-oVALUE` as the cluster `-o -V -A …`, take a value
 * starting with `-` for a missing one, `--no-x` for x=false, drop a `-` positional, and leave
 * unknown options to a later check with messages of its own. cac then parses those words.
 */
export function parseCommand(cmd: CommandDef, words: readonly string[], usage: string): Parsed {
  const bad = (why: string) => new InvalidArgumentError(usage, `${why} (see --help)`);
  const given: string[] = [];
  const args: string[] = [];
  const flag = (o: OptionDef) => (o.long ? `--${o.long}` : `-${o.short}`);
  const used = new Set<OptionDef>();
  const set = (o: OptionDef, value: string | true) => {
    used.add(o);
    given.push(value === true ? flag(o) : `${flag(o)}=${VERBATIM}${value}`);
  };
  for (let i = 0; i < words.length; i++) {
    const w = words[i]!;
    if (w === "--") {
      args.push(...words.slice(i + 1));
      break;
    }
    if (w.startsWith("--")) {
      const eq = w.indexOf("=");
      const name = eq < 0 ? w.slice(2) : w.slice(2, eq);
      if (name === "help") return { help: true };
      const o = optionBy(cmd, "long", name);
      if (!o) throw bad(`unknown option --${name}`);
      if (!o.value) {
        if (eq >= 0) throw bad(`option --${name} takes no value`);
        set(o, true);
      } else if (eq >= 0) set(o, w.slice(eq + 1));
      else if (o.value.optional) {
        const next = words[i + 1];
        set(o, next !== undefined && !next.startsWith("-") ? words[++i]! : true);
      } else {
        if (i + 1 >= words.length) throw bad(`option --${name} needs a value`);
        set(o, words[++i]!);
      }
      continue;
    }
    if (w.startsWith("-") && w.length > 1) {
      for (let j = 1; j < w.length; j++) {
        const letter = w[j]!;
        if (letter === "h") return { help: true };
        const o = optionBy(cmd, "short", letter);
        if (!o) throw bad(`unknown option -${letter}${w.length > 2 ? ` in ${w}` : ""}`);
        if (!o.value) {
          set(o, true);
          continue;
        }
        const rest = w.slice(j + 1);
        if (rest !== "") set(o, rest);
        else if (i + 1 < words.length && !o.value.optional) set(o, words[++i]!);
        else if (o.value.optional) set(o, true);
        else throw bad(`option -${letter} needs a value`);
        break;
      }
      continue;
    }
    args.push(w);
  }
  const { values, positionals } = cacParse(cmd, used, given, args);
  // Required positionals come first, a variadic one last.
  const missing = cmd.args[positionals.length];
  if (missing?.required) throw bad(`missing argument ${missing.name.toUpperCase()}`);
  if (!cmd.args[cmd.args.length - 1]?.variadic && positionals.length > cmd.args.length) throw bad(`unexpected argument "${positionals[cmd.args.length]}"`);
  return { help: false, args: positionals, options: values };
}

/**
 * The option values of `cmd` by each option's key (a repeatable one as a list, another its last
 * value; an option not used its default, if any) and the positionals, from the options `used` as
 * {@link parseCommand} checked and wrote them (`given`) and the positionals it found (`args`).
 * cac parses `given`: it is told of the used options only, as it does some work for each option
 * it is told of and the words hold no other. A command given no option has nothing for cac to
 * read, and skips it (0.17 ms of a short command's first calls).
 */
function cacParse(cmd: CommandDef, used: ReadonlySet<OptionDef>, given: readonly string[], args: string[]): { values: OptionValues; positionals: string[] } {
  const values: OptionValues = {};
  for (const o of cmd.options) if (o.default !== undefined) values[o.key] = o.repeat ? [o.default] : o.default;
  if (used.size === 0) return { values, positionals: args };
  const cli = cac("stor");
  const command: CacCommand = cli.command(cmd.spelling);
  for (const o of used) command.option(o.spelling, o.description);
  const words = [...given, "--", ...args];
  const { args: stray, options } = cli.parse(["", "", cmd.name, ...words], { run: false });
  if (cli.matchedCommand !== command || stray.length !== 0) throw new Error(`cac read ${cmd.name} ${words.join(" ")} as ${stray.join(" ")}`);
  let i = 0;
  for (const o of used) {
    const raw = options[command.options[i++]!.name] as unknown;
    if (raw === undefined) continue;
    const all: (string | true)[] = [];
    for (const v of Array.isArray(raw) ? raw : [raw]) all.push(typeof v === "string" && v.startsWith(VERBATIM) ? v.slice(1) : v === true ? true : String(v));
    values[o.key] = o.repeat ? (all as string[]) : all[all.length - 1]; // a repeatable option's values are never `true` (see options)
  }
  return { values, positionals: options["--"] as string[] };
}

/** The positionals as the handler takes them: one each, the variadic one as a list. */
function handlerArgs(cmd: CommandDef, args: readonly string[]): unknown[] {
  const out: unknown[] = [];
  for (let i = 0; i < cmd.args.length; i++) out.push(cmd.args[i]!.variadic ? args.slice(i) : args[i]);
  return out;
}

/**
 * Runs the command `argv` names in `group` (argv starts with the command's name). `-h`/`--help`
 * prints help; an unknown command or option, or missing or surplus arguments, is a usage error.
 */
export async function runGroup(group: Group, argv: readonly string[]): Promise<void> {
  const [word, ...rest] = argv;
  const what = group.word || "stor";
  if (word === undefined) throw new InvalidArgumentError(what, `missing command (see ${group.name} --help)`);
  if (word === "-h" || word === "--help" || word === "help") {
    print((await import("./help.ts")).groupHelp(group));
    return;
  }
  const cmd = group.find(word);
  if (!cmd) {
    const kind = word.startsWith("-") ? `unknown option ${word}` : `unknown command "${word}"`;
    throw new InvalidArgumentError(what, `${kind} (see ${group.name} --help)`);
  }
  const usage = `${group.word} ${cmd.name}`.trim();
  const parsed = parseCommand(cmd, rest, usage);
  if (parsed.help) {
    print((await import("./help.ts")).commandHelp(group, cmd));
    return;
  }
  await group.closing(async () => {
    await cmd.handler!(...handlerArgs(cmd, parsed.args), parsed.options);
  });
}

/** An option that may repeat, as a list of strings. */
export function list(value: unknown): string[] {
  if (value === undefined || value === false) return [];
  if (!Array.isArray(value)) return [String(value)];
  const out: string[] = []; // a loop: Array.prototype.map compiles on its first call in a process
  for (const v of value) out.push(String(v));
  return out;
}

/**
 * Parses `K=V` words into a map; `what` names the option in errors. A bare `K` means
 * `K=bare` where the reference tool allows it (docker: `""`, ctr: `"true"`), else it is an error.
 */
export function keyValues(words: readonly string[], what: string, bare?: string): Record<string, string> {
  const out = stringMap();
  for (const w of words) {
    const eq = w.indexOf("=");
    if (eq === 0 || (eq < 0 && (bare === undefined || w === ""))) throw new InvalidArgumentError(`${what} "${w}"`, "expected KEY=VALUE");
    if (eq < 0) out[w] = bare!;
    else out[w.slice(0, eq)] = w.slice(eq + 1);
  }
  return out;
}

/** The value of `--format`: table or json. */
export function outputFormat(value: unknown): "table" | "json" {
  const f = String(value ?? "table");
  if (f !== "table" && f !== "json") throw new InvalidArgumentError(`format "${f}"`, "expected table or json");
  return f;
}
