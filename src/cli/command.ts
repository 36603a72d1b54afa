/**
 * A command group (`stor snapshot …`, `stor volume …`) on cac: parsing, help, and turning
 * cac's complaints into usage errors (exit 2).
 */
import cac, { type CAC, type Command } from "cac";
import { InvalidArgumentError } from "../errors.ts";

/** A cac instance for one group, named for help output. */
export function group(name: string): CAC {
  const cli = cac(name);
  cli.help();
  return cli;
}

/**
 * Parses `argv` against `cli` and runs the matched command. Unknown commands, unknown options,
 * missing and surplus arguments are usage errors.
 */
export async function runGroup(cli: CAC, argv: readonly string[]): Promise<void> {
  const what = cli.name.replace(/^stor ?/, "") || "stor";
  try {
    cli.parse(["", "", ...argv], { run: false });
  } catch (err) {
    throw new InvalidArgumentError(what, (err as Error).message);
  }
  const cmd = cli.matchedCommand as Command | undefined;
  if (cli.options.help) return; // cac printed the help
  if (!cmd) {
    const given = cli.args[0];
    throw new InvalidArgumentError(what, given === undefined ? "missing command (see --help)" : `unknown command "${given}" (see --help)`);
  }
  const usage = `${what} ${cmd.name}`.trim();
  try {
    cmd.checkUnknownOptions();
    cmd.checkOptionValue();
    cmd.checkRequiredArgs();
  } catch (err) {
    throw new InvalidArgumentError(usage, `${(err as Error).message.replace(/ for command `.*`$/, "")} (see --help)`);
  }
  const max = cmd.args.some((a) => a.variadic) ? Infinity : cmd.args.length;
  if (cli.args.length > max) throw new InvalidArgumentError(usage, "too many arguments (see --help)");
  await cli.runMatchedCommand();
}

/** An option that may repeat, as a list of strings (cac gives one value bare and numbers as numbers). */
export function list(value: unknown): string[] {
  if (value === undefined || value === false) return [];
  return (Array.isArray(value) ? value : [value]).map(String);
}

/** Parses `K=V` words into a map; `what` names the option in errors. */
export function keyValues(words: readonly string[], what: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const w of words) {
    const eq = w.indexOf("=");
    if (eq <= 0) throw new InvalidArgumentError(`${what} "${w}"`, "expected KEY=VALUE");
    out[w.slice(0, eq)] = w.slice(eq + 1);
  }
  return out;
}

/** The value of `--format`: table or json. */
export function outputFormat(value: unknown): "table" | "json" {
  const f = String(value ?? "table");
  if (f !== "table" && f !== "json") throw new InvalidArgumentError(`format "${f}"`, "expected table or json");
  return f;
}
