/** `--help` text, made from the command definitions (./command.ts) that also parse argv. */
import { VERSION } from "../version.ts";
import type { ArgDef, CommandDef, Group, OptionDef } from "./command.ts";
import { TOP_LEVEL } from "./commands.ts";
import { GLOBAL_OPTIONS, type GlobalOption } from "./globals.ts";

/** Every command group stor has, in help order (each module is loaded). */
export async function allGroups(): Promise<Group[]> {
  // The definitions never touch the configuration until a command runs.
  const ctx = {
    config(): never {
      throw new Error("no configuration while listing commands");
    },
  };
  return Promise.all(TOP_LEVEL.map(async (t) => (await t.load())(ctx)));
}

/** `KEY [PARENT]`, `NAME...`: how the positionals are written in a usage line. */
export function argsSpelling(args: readonly ArgDef[]): string {
  return args
    .map((a) => {
      const name = `${a.name.toUpperCase()}${a.variadic ? "..." : ""}`;
      return a.required ? name : `[${name}]`;
    })
    .join(" ");
}

/** `-t, --target TARGET`, `    --docker-volume[=SOCKET]`: an option as help shows it. */
export function optionSpelling(o: OptionDef | GlobalOption): string {
  const value =
    typeof o.value === "object" ? (o.value.optional ? `[=${o.value.name.toUpperCase()}]` : ` ${o.value.name.toUpperCase()}`) : o.value ? ` ${o.value}` : "";
  return `${o.short ? `-${o.short}${o.long ? `, --${o.long}` : ""}` : `    --${o.long}`}${value}`;
}

/** The full command line a command is run with: `stor snapshot prepare`. */
export function commandPath(group: Group, cmd: CommandDef): string {
  return `${group.name} ${cmd.name}`;
}

/** `stor snapshot prepare [options] KEY [PARENT]`. */
export function usageLine(group: Group, cmd: CommandDef): string {
  return [commandPath(group, cmd), "[options]", argsSpelling(cmd.args)].filter(Boolean).join(" ");
}

/** The global options that apply to `cmd`. */
export function globalsFor(cmd: CommandDef | undefined): GlobalOption[] {
  return GLOBAL_OPTIONS.filter((o) => !o.snapshotter || cmd?.snapshotter);
}

/** `text` broken into lines of at most `width` characters, at spaces. */
function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  for (const word of text.split(" ")) {
    const last = lines.length - 1;
    if (last >= 0 && lines[last]!.length + word.length + 1 <= width) lines[last] += ` ${word}`;
    else lines.push(word);
  }
  return lines;
}

/** Rows of two columns, the right one wrapped to fit 80 columns. */
function columns(rows: readonly [string, string][]): string {
  const width = Math.min(28, Math.max(...rows.map(([l]) => l.length)) + 2);
  const indent = " ".repeat(width + 2);
  return rows
    .map(([l, r]) => {
      const left = l.length + 2 > width ? `  ${l}\n${indent}` : `  ${l.padEnd(width)}`;
      return `${left}${wrap(r, 78 - width).join(`\n${indent}`)}\n`;
    })
    .join("");
}

/** A paragraph wrapped to 80 columns. */
const paragraph = (text: string) => `${wrap(text, 80).join("\n")}\n`;

const HELP_ROW: [string, string] = ["-h, --help", "print this help"];

/** Help for one command: what it does, its usage, every option that applies, an example. */
export function commandHelp(group: Group, cmd: CommandDef): string {
  const aliases = cmd.aliases.length ? `\nAliases: ${cmd.aliases.join(", ")}\n` : "";
  const options = columns([...cmd.options.map((o): [string, string] => [optionSpelling(o), describeOption(o)]), HELP_ROW]);
  const globals = columns(globalsFor(cmd).map((o) => [optionSpelling(o), o.description]));
  const examples = cmd.examples.map((e) => `  ${e}\n`).join("");
  return `Usage: ${usageLine(group, cmd)}\n\n${paragraph(cmd.description)}${aliases}\nOptions:\n${options}\nGlobal options:\n${globals}${examples && `\nExample:\n${examples}`}`;
}

/** An option's description with its default. */
export function describeOption(o: OptionDef): string {
  return o.default === undefined ? o.description : `${o.description} (default ${o.default})`;
}

/** Help for a group: what it is and its commands. */
export function groupHelp(group: Group): string {
  const rows = group.commands.map((c): [string, string] => [`${c.name} ${argsSpelling(c.args)}`.trim(), c.summary]);
  const globals = columns(GLOBAL_OPTIONS.filter((o) => !o.snapshotter || group.snapshotter).map((o) => [optionSpelling(o), o.description]));
  return `Usage: ${group.name} [options] <command> [args]\n\n${paragraph(group.description)}\nCommands:\n${columns(rows)}\nGlobal options:\n${globals}\n'${group.name} <command> --help' tells more of each command.\n`;
}

/** Help for stor itself: every command, and the global options. */
export async function topHelp(): Promise<string> {
  const rows: [string, string][] = [];
  for (const group of await allGroups()) {
    if (group.word) rows.push([`${group.word} <command>`, `${group.description} Commands: ${group.commands.map((c) => c.name).join(", ")}.`]);
    else for (const c of group.commands) rows.push([`${c.name} ${argsSpelling(c.args)}`.trim(), c.summary]);
  }
  const globals = columns([...GLOBAL_OPTIONS.map((o): [string, string] => [optionSpelling(o), o.description]), HELP_ROW, ["-v, --version", "print the version"]]);
  return `stor ${VERSION}: container storage for one Linux host\n\nUsage: stor [global options] <command> [args]\n\nCommands:\n${columns(rows)}\nGlobal options:\n${globals}\n'stor <command> --help' tells more of each command; 'man stor' tells all.\n`;
}
