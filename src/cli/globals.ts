/**
 * Global options (`--root`, `--config`, `--log-level`, `--no-color`, `-s/--snapshotter`,
 * `--plugin-dir`) may stand anywhere before `--`; they are taken out of argv before a command
 * group parses the rest.
 */
import { InvalidArgumentError } from "../errors.ts";

export interface Globals {
  root?: string;
  config?: string;
  logLevel?: string;
  noColor: boolean;
  snapshotter?: string;
  /** `--plugin-dir`, repeatable: more places to find volume plugins in. */
  pluginDirs?: string[];
}

const VALUED: Record<string, keyof Globals> = {
  "--root": "root",
  "--config": "config",
  "--log-level": "logLevel",
  "--snapshotter": "snapshotter",
  "-s": "snapshotter",
  "--plugin-dir": "pluginDirs",
};

/** Splits argv into the global options and the remaining words. */
export function extractGlobals(argv: readonly string[]): { globals: Globals; rest: string[] } {
  const globals: Globals = { noColor: false };
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "--") {
      rest.push(...argv.slice(i));
      break;
    }
    if (a === "--no-color") {
      globals.noColor = true;
      continue;
    }
    const eq = a.indexOf("=");
    const flag = a.startsWith("--") && eq > 0 ? a.slice(0, eq) : a;
    const key = VALUED[flag];
    if (!key) {
      rest.push(a);
      continue;
    }
    const value = flag !== a ? a.slice(eq + 1) : argv[++i];
    if (value === undefined || value === "") throw new InvalidArgumentError(`option ${flag}`, "needs a value");
    if (key === "pluginDirs") (globals.pluginDirs ??= []).push(value);
    else (globals as unknown as Record<string, string>)[key] = value;
  }
  return { globals, rest };
}
