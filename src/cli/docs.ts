/** `stor completion`, `stor man`, and `stor __complete`, which the completion scripts run. */
import { existsSync, mkdirSync, writeFileSync } from "../nodeFs.ts";
import { join } from "../path.ts";
import { InvalidArgumentError } from "../errors.ts";
import { dirsError } from "../dirsError.ts";
import { hasControl } from "../oneLine.ts";
import { volumesDir } from "../layout.ts";
import { Group, outputFormat, type Context } from "./command.ts";
import { candidates, completionScript, SHELLS, type CompletionSource } from "./completion.ts";
import { extractGlobals, type Globals } from "./globals.ts";
import { allGroups } from "./help.ts";
import { markdownReference, pages, roffPage } from "./manual.ts";
import { print } from "./output.ts";

/** Snapshot keys and volume names for completion, read without creating anything and asking no plugin. */
function storeSource(ctx: Context): CompletionSource {
  return {
    async snapshots(snapshotter) {
      const config = ctx.config();
      const chosen = snapshotter ?? config.defaultSnapshotter;
      const { snapshotterName } = await import("../snapshot/registry.ts");
      const { openSnapshots, usedSnapshotters } = await import("../services.ts");
      const wanted = chosen === undefined ? undefined : snapshotterName(chosen);
      const keys: string[] = [];
      for (const n of await usedSnapshotters(config)) {
        if (wanted !== undefined && n !== wanted) continue;
        const svc = await openSnapshots(config, { access: "read", snapshotter: n });
        try {
          for (const i of svc.summaries()) keys.push(i.name);
        } finally {
          svc.release();
        }
      }
      return keys;
    },
    async volumes() {
      const config = ctx.config();
      if (!existsSync(volumesDir(config.root))) return [];
      const { openVolumes } = await import("../services.ts");
      const svc = await openVolumes(config, "read", { askPlugins: false });
      try {
        return (await svc.list()).map((v) => v.name);
      } finally {
        svc.release();
      }
    },
    drivers() {
      return (require("../volume/drivers.ts") as typeof import("../volume/drivers.ts")).driverNames();
    },
  };
}

/** `stor completion` and `stor man`. */
export function docsGroup(ctx: Context): Group {
  const cli = new Group("stor");
  cli
    .command("completion <shell>", "Print a completion script for SHELL (bash, zsh or fish) that completes commands, options, snapshot keys and volume names.")
    .example("stor completion bash > /etc/bash_completion.d/stor")
    .action((shell: string) => {
      if (!(SHELLS as readonly string[]).includes(shell)) throw new InvalidArgumentError(`shell "${shell}"`, `expected ${SHELLS.join(", ")}`);
      print(completionScript(shell as (typeof SHELLS)[number]));
    });

  cli
    .command("man [page]", "Print the manual page stor(1), or stor-snapshot(1) or stor-volume(1) for PAGE snapshot or volume, as roff; with --dir, write every page.")
    .option("-d, --dir <dir>", "write every page into DIR/man1 (as install.sh does)")
    .option("--format <format>", "roff, or markdown for the reference page docs/CLI.md", { default: "roff" })
    .example("stor man | man -l -")
    .action(async (page: string | undefined, opts) => {
      const groups = await allGroups();
      if (opts.format === "markdown") return print(markdownReference(groups));
      if (opts.format !== "roff") outputFormat(opts.format); // refuses it, naming the formats
      const all = pages(groups);
      if (opts.dir !== undefined) {
        const dir = join(String(opts.dir), "man1");
        try {
          mkdirSync(dir, { recursive: true });
        } catch (err) {
          throw dirsError("manual directory", dir, dir, err); // a file in the way is bad input, as for serve's sockets
        }
        for (const p of all) writeFileSync(join(dir, `${p.name}.1`), roffPage(p));
        return;
      }
      const wanted = all.find((p) => p.name === (page === undefined ? "stor" : `stor-${page}`));
      if (!wanted) throw new InvalidArgumentError(`manual page "${page}"`, "unknown (expected snapshot or volume)");
      print(roffPage(wanted));
    });

  return cli;
}

/**
 * `stor __complete WORD…`, run by the completion scripts on TAB: prints the candidates for the
 * last WORD, one a line. Not a command of the definitions, as its words are what the user typed
 * (options included), not options of its own. Global options among them (`--root`) apply.
 */
export async function complete(words: readonly string[], given: Globals, context: (globals: Globals) => Context): Promise<void> {
  let globals = given;
  try {
    const typed = extractGlobals(words.slice(0, -1)).globals;
    globals = { ...given, ...Object.fromEntries(Object.entries(typed).filter(([, v]) => v !== undefined)) };
  } catch {
    // A global option still waiting for its value: those given before __complete will do.
  }
  try {
    const all = await candidates(words, await allGroups(), storeSource(context(globals)));
    // A candidate goes to the shell as a line: one holding a newline would arrive as two, and an
    // escape sequence would act on the terminal where the shell lists it. Such a key is typed by hand.
    print(all.filter((c) => !hasControl(c)).map((c) => `${c}\n`).join(""));
  } catch {
    // A store that cannot be read completes nothing: TAB must never print an error.
  }
}
