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

/** A global option as help, the man page and completion show it. */
export interface GlobalOption {
  /** The property of {@link Globals} it sets. */
  key: keyof Globals;
  short?: string;
  long: string;
  /** The name of its value, or none for a flag. */
  value?: string;
  description: string;
  /** Only for commands that work on snapshots. */
  snapshotter?: boolean;
}

/** Every global option, in the order help lists them. */
export const GLOBAL_OPTIONS: readonly GlobalOption[] = [
  { key: "snapshotter", short: "s", long: "snapshotter", value: "S", description: "overlay, btrfs or native (default: [snapshot] default, else the first of them that the kernel and the filesystem under the root support)", snapshotter: true },
  { key: "root", long: "root", value: "DIR", description: "state directory (STOR_ROOT; default /var/lib/stor)" },
  { key: "config", long: "config", value: "FILE", description: "ini file (STOR_CONFIG; default /etc/stor/stor.ini)" },
  { key: "logLevel", long: "log-level", value: "LEVEL", description: "error, warn, info or debug (STOR_LOG_LEVEL; default warn)" },
  { key: "pluginDirs", long: "plugin-dir", value: "DIR", description: "look for volume plugins in DIR first (repeatable; STOR_PLUGIN_DIRS and [volume] plugin_dirs replace Docker's directories)" },
  { key: "noColor", long: "no-color", description: "no colour (also NO_COLOR)" },
];

/** The spellings of the global options that take a value (`--root`, `-s`), each with its option. */
export const VALUED_GLOBALS = new Map<string, GlobalOption>();
// A loop, not filter and flatMap: every command builds this, and each of those builtins costs a
// command tens of microseconds to compile on its first call.
for (const o of GLOBAL_OPTIONS) {
  if (!o.value) continue;
  VALUED_GLOBALS.set(`--${o.long}`, o);
  if (o.short) VALUED_GLOBALS.set(`-${o.short}`, o);
}

/** Splits argv into the global options and the remaining words (`--` and what follows it kept as given). */
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
    const key = VALUED_GLOBALS.get(flag)?.key;
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
