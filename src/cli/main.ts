/** The stor command line: global options, the command groups, and errors as one line and an exit code. */
import { givenLogLevel, loadConfig, type Config } from "../config.ts";
import { ExitCode, InvalidArgumentError, OutputClosedError, exitCodeOf } from "../errors.ts";
import { log, logEnabled, setLogLevel } from "../log.ts";
import { initColour } from "../colour.ts";
import { runGroup, type Context } from "./command.ts";
import { topLevel } from "./commands.ts";
import { extractGlobals, type Globals } from "./globals.ts";
import { print, reportError } from "./output.ts";
import { VERSION } from "../version.ts";
import { printTrace, trace } from "../trace.ts";
import { escapeNonUtf8, isUtf8 } from "../fileName.ts";
import { lastArguments } from "../sys/cmdline.ts";

/** The context commands run in: the configuration is loaded (and validated) when first asked for. */
function context(globals: Globals): Context {
  let config: Config | undefined;
  return {
    config() {
      if (!config) {
        trace("command load, parse");
        config = loadConfig(globals);
        setLogLevel(config.logLevel);
        trace("config");
      }
      return config;
    },
    snapshotter: globals.snapshotter,
  };
}

/** Runs stor with `argv` (without the program name) and returns the exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  trace("start-up, bundle load");
  try {
    return await run(argv);
  } finally {
    trace("exit");
    printTrace();
  }
}

async function run(argv: readonly string[]): Promise<number> {
  try {
    refuseNonUtf8(argv);
    // `stor [global options] __complete WORD…`: the words are what the user typed, not parsed here.
    const at = argv.indexOf("__complete");
    if (at >= 0) {
      const before = extractGlobals(argv.slice(0, at));
      if (before.rest.length === 0) {
        await (await import("./docs.ts")).complete(argv.slice(at + 1), before.globals, context);
        return ExitCode.ok;
      }
    }
    const { globals, rest: words } = extractGlobals(argv);
    // `stor help volume create` is `stor volume create --help`, as git's help is.
    const rest = words[0] === "help" && words.length > 1 ? [...words.slice(1), "--help"] : words;
    initColour(globals.noColor);
    // Checked here, not only with the configuration, which a command may never load.
    const logLevel = givenLogLevel(globals);
    if (logLevel !== undefined) setLogLevel(logLevel);
    const [command, ...args] = rest;
    if (command === undefined) throw new InvalidArgumentError("command", "missing (see stor --help)");
    if (command === "-h" || command === "--help" || command === "help") {
      print(await (await import("./help.ts")).topHelp());
      return ExitCode.ok;
    }
    if (command === "-v" || command === "--version" || command === "version") {
      print(`stor ${VERSION}`);
      return ExitCode.ok;
    }
    const entry = topLevel(command);
    if (!entry) {
      if (command.startsWith("-")) throw new InvalidArgumentError(`option ${command}`, "unknown (see stor --help)");
      throw new InvalidArgumentError(`command "${command}"`, "unknown (see stor --help)");
    }
    const group = (await entry.load())(context(globals));
    await runGroup(group, entry.group ? args : [command, ...args]);
    return ExitCode.ok;
  } catch (err) {
    if (err instanceof OutputClosedError) return err.code; // nothing more to say: no one reads it
    reportError(err);
    // A log line is one line: the stack goes a frame a line, after the error as one (its message
    // may hold a newline from a key: split with the stack, its rest would pass for a line of its own).
    if (logEnabled("debug") && err instanceof Error && err.stack) {
      log.debug(`${err.name}: ${err.message}`);
      for (const frame of err.stack.split("\n")) if (frame.startsWith("    at ")) log.debug(frame);
    }
    return exitCodeOf(err);
  }
}

/**
 * Refuses an argument that is not UTF-8. Bun gives each byte of one that is not UTF-8 as U+FFFD,
 * so two keys that differ only there would be one (`rm $'img\xfe'` would remove `img\xff`), and a
 * path would name another file. Only an argument holding U+FFFD can be one: those are compared
 * with the bytes the process was given.
 */
function refuseNonUtf8(argv: readonly string[]): void {
  let suspect = false;
  for (const a of argv) if (a.includes("\ufffd")) suspect = true;
  if (!suspect) return;
  const given = lastArguments(argv.length);
  for (let i = 0; i < given.length; i++) {
    if (!isUtf8(given[i]!)) throw new InvalidArgumentError(`argument "${escapeNonUtf8(given[i]!)}"`, "is not UTF-8: stor takes names, keys, labels and paths as UTF-8");
  }
}
