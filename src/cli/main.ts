/** The stor command line: global options, the command groups, and errors as one line and an exit code. */
import { loadConfig } from "../config.ts";
import { ExitCode, InvalidArgumentError, describe, exitCodeOf } from "../errors.ts";
import { log, logEnabled, setLogLevel } from "../log.ts";
import { redact } from "../redact.ts";
import { initColour } from "../colour.ts";
import { extractGlobals } from "./globals.ts";
import { print, printError } from "./output.ts";
import { VERSION } from "../version.ts";
import { printTrace, trace } from "../trace.ts";

const HELP = `stor ${VERSION}: container storage for one Linux host

Usage: stor [global options] <command> [args]

Commands:
  snapshot <command>    snapshots, as ctr snapshots (prepare, view, commit, mounts, rm, ls,
                        info, usage, tree, label, cleanup); 'stor snapshot --help'
  mount KEY TARGET      mount snapshot KEY on TARGET
  unmount TARGET        unmount everything mounted on TARGET
  serve [--containerd SOCKET] [--docker-volume [SOCKET]]
                        serve as containerd snapshotter and Docker volume plugin
  unpack SOURCE         unpack an OCI image layout or docker save tarball into snapshots
  volume <command>      volumes, as docker volume (create, ls, inspect, rm, prune, mount,
                        unmount, plugins); 'stor volume --help'
  df [-v]               space used by snapshots and volumes, as docker system df
  restore               run once at boot: repair what an unclean shutdown left

Global options:
  --root DIR            state directory (STOR_ROOT; default /var/lib/stor)
  --config FILE         ini file (STOR_CONFIG; default /etc/stor/stor.ini)
  --log-level LEVEL     error, warn, info or debug (STOR_LOG_LEVEL; default warn)
  -s, --snapshotter S   overlay, btrfs or native (default: the first of them that the
                        kernel and the filesystem under the root support)
  --plugin-dir DIR      look for volume plugins in DIR first (repeatable; STOR_PLUGIN_DIRS
                        and [volume] plugin_dirs replace Docker's directories)
  --no-color            no colour (also NO_COLOR)
  -h, --help            this help
  -v, --version         the version
`;

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
    const { globals, rest } = extractGlobals(argv);
    initColour(globals.noColor);
    if (globals.logLevel) setLogLevel(globals.logLevel as never);
    const [command, ...args] = rest;
    if (command === undefined || command === "-h" || command === "--help" || command === "help") {
      print(HELP);
      return command === undefined ? ExitCode.invalid : ExitCode.ok;
    }
    if (command === "-v" || command === "--version" || command === "version") {
      print(`stor ${VERSION}`);
      return ExitCode.ok;
    }
    const config = loadConfig(globals);
    trace("config");
    // Each command group is loaded only when used: start-up time is most of a short command's cost.
    setLogLevel(config.logLevel);
    switch (command) {
      case "snapshot":
      case "snapshots":
        await (await import("./snapshot.ts")).snapshotCommand(args, config, globals.snapshotter);
        break;
      case "mount":
        await (await import("./mount.ts")).mountCommand(args, config, globals.snapshotter);
        break;
      case "unmount":
      case "umount":
        await (await import("./mount.ts")).unmountCommand(args);
        break;
      case "unpack":
        await (await import("./unpack.ts")).unpackCommand(args, config, globals.snapshotter);
        break;
      case "volume":
      case "volumes":
        await (await import("./volume.ts")).volumeCommand(args, config);
        break;
      case "df":
        await (await import("./df.ts")).dfCommand(args, config);
        break;
      case "restore":
        await (await import("./restore.ts")).restoreCommand(args, config);
        break;
      case "serve":
        await (await import("./serve.ts")).serveCommand(args, config, globals.snapshotter);
        break;
      default:
        throw new InvalidArgumentError(`command "${command}"`, "unknown (see stor --help)");
    }
    return ExitCode.ok;
  } catch (err) {
    printError(`stor: ${redact(describe(err))}`);
    if (logEnabled("debug") && err instanceof Error && err.stack) log.debug(err.stack);
    return exitCodeOf(err);
  }
}
