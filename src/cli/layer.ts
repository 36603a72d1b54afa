/** `stor snapshot changes|diff|apply`: a snapshot's changes as an OCI layer and back. */
import { InvalidArgumentError } from "../errors.ts";
import type { Access } from "../services.ts";
import type { SnapshotService } from "../snapshot/service.ts";
import { outputFormat, type Group } from "./command.ts";
import { goJson, print, toStdout } from "./output.ts";
import { oneLine } from "../oneLine.ts";

/** The Kind numbers of Docker's API for a change (`GET /containers/{id}/changes`). */
const DOCKER_KINDS = { C: 0, A: 1, D: 2 } as const;

// The layer modules are imported when a layer command runs: every other snapshot command would
// otherwise pay for loading them at start-up.

/** Adds the layer commands to the `stor snapshot` group. */
export function registerLayerCommands(cli: Group, svc: (access: Access) => Promise<SnapshotService>): void {
  cli
    .command("changes <key>", "Print what snapshot KEY changed against its parent, one `A|C|D /path` line each, as docker diff.")
    .option("--format <format>", "table (the lines) or json (Docker API's [{Path, Kind}], Kind 0 changed, 1 added, 2 deleted)", { default: "table" })
    .example("stor snapshot changes work")
    .action(async (key: string, opts) => {
      const format = outputFormat(opts.format);
      const { changes } = await import("../layer/changes.ts");
      const found = await (await svc("read")).readLayer(key, changes);
      if (format === "json") return print(goJson(found.map((c) => ({ Path: `/${c.path}`, Kind: DOCKER_KINDS[c.kind] }))));
      print(found.map((c) => `${c.kind} /${oneLine(c.path)}\n`).join(""));
    });

  cli
    .command("diff <key>", "Write what snapshot KEY changed against its parent as an OCI layer (tar, whiteouts as .wh. files) to stdout, or to FILE.")
    .option("-o, --output <file>", "write to FILE and print the layer's diffID")
    .option("--gzip", "compress with gzip")
    .option("--zstd", "compress with zstd")
    .example("stor snapshot diff --gzip -o layer.tar.gz work")
    .action(async (key: string, opts) => {
      if (opts.gzip && opts.zstd) throw new InvalidArgumentError("snapshot diff", "--gzip and --zstd exclude each other");
      const compression = opts.gzip ? "gzip" : opts.zstd ? "zstd" : "none";
      const { writeLayer, writeLayerToFile } = await import("../layer/diff.ts");
      const service = await svc("read");
      if (opts.output === undefined) {
        await service.readLayer(key, async (view) => {
          if ((await import("node:tty")).isatty(1)) throw new InvalidArgumentError("snapshot diff", "will not write a layer to a terminal (use -o FILE or redirect)");
          await toStdout(() => writeLayer(view, process.stdout, compression));
        });
        return;
      }
      print(await service.readLayer(key, (view) => writeLayerToFile(view, String(opts.output), compression)));
    });

  cli
    .command("apply <key> [file]", "Apply an OCI layer (tar, gzip or zstd, found by its magic) to active snapshot KEY and print its diffID; all or nothing: a layer refused leaves KEY as it was. FILE '-' or none reads stdin. Shows progress on a terminal.")
    .example("stor snapshot apply work layer.tar.gz")
    .action(async (key: string, file: string | undefined) => {
      const [{ applyToSnapshot }, { LayerFile, stdinLayer }] = await Promise.all([import("../layer/apply.ts"), import("../layer/layerInput.ts")]);
      const name = file ?? "-";
      const input = name === "-" ? stdinLayer() : new LayerFile(name);
      const { withProgress } = await import("./progress.ts");
      const s = await svc("change");
      print(await withProgress("applying", (onProgress) => applyToSnapshot(s, key, input, name === "-" ? "stdin" : name, onProgress)));
    });
}
