/** `stor snapshot changes|diff|apply`: a snapshot's changes as an OCI layer and back. */
import { createWriteStream, rmSync } from "node:fs";
import type { CAC } from "cac";
import { InvalidArgumentError } from "../errors.ts";
import type { Access } from "../services.ts";
import type { SnapshotService } from "../snapshot/service.ts";
import { print } from "./output.ts";

// The layer modules are imported when a layer command runs: every other snapshot command would
// otherwise pay for loading them at start-up.

/** Adds the layer commands to the `stor snapshot` group. */
export function registerLayerCommands(cli: CAC, svc: (access?: Access) => SnapshotService): void {
  cli
    .command("changes <key>", "Print a snapshot's changes against its parent (A, C, D), as docker diff")
    .action(async (key) => {
      const { changes } = await import("../layer/changes.ts");
      print(changes(svc("read").layerView(String(key))).map((c) => `${c.kind} /${c.path}\n`).join(""));
    });

  cli
    .command("diff <key>", "Write a snapshot's changes as an OCI layer (tar) to stdout or FILE")
    .option("-o, --output <file>", "Write to FILE and print the layer's diffID")
    .option("--gzip", "Compress with gzip")
    .option("--zstd", "Compress with zstd")
    .action(async (key, opts) => {
      if (opts.gzip && opts.zstd) throw new InvalidArgumentError("snapshot diff", "--gzip and --zstd exclude each other");
      const compression = opts.gzip ? "gzip" : opts.zstd ? "zstd" : "none";
      const { writeLayer } = await import("../layer/diff.ts");
      const view = svc("read").layerView(String(key));
      if (opts.output === undefined) {
        if ((await import("node:tty")).isatty(1)) throw new InvalidArgumentError("snapshot diff", "will not write a layer to a terminal (use -o FILE or redirect)");
        await writeLayer(view, process.stdout, compression);
        return;
      }
      const file = String(opts.output);
      try {
        print(await writeLayer(view, createWriteStream(file), compression));
      } catch (err) {
        rmSync(file, { force: true });
        throw err;
      }
    });

  cli
    .command("apply <key> [file]", "Apply an OCI layer (tar, gzip or zstd) to an active snapshot; FILE '-' or none reads stdin")
    .action(async (key, file) => {
      const [{ applyToSnapshot }, { LayerFile }] = await Promise.all([import("../layer/apply.ts"), import("../layer/layerInput.ts")]);
      const name = file === undefined || file === "-" ? "-" : String(file);
      const input = name === "-" ? process.stdin : new LayerFile(name);
      print(await applyToSnapshot(svc(), String(key), input, name === "-" ? "stdin" : name));
    });
}
