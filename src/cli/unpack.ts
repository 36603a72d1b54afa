/** `stor unpack SOURCE`: an image's layers as committed snapshots named by chain ID. */
import { writeSync } from "node:fs";
import { isatty } from "node:tty";
import type { Config } from "../config.ts";
import { unpack, type UnpackProgress } from "../layer/unpack.ts";
import { openSnapshots } from "../services.ts";
import { group, runGroup } from "./command.ts";
import { binarySize, print } from "./output.ts";

/** Redraws between updates at most this often. */
const REDRAW_MS = 100;

/** A one-line progress display on stderr, redrawn in place. */
function progressLine(): (p: UnpackProgress) => void {
  let last = 0;
  return (p) => {
    const now = Date.now();
    if (p.state === "applying" && now - last < REDRAW_MS) return;
    last = now;
    const amount = `${binarySize(p.bytes)}${p.size ? ` / ${binarySize(p.size)}` : ""}`;
    const status = p.state === "exists" ? "exists" : p.state === "applying" ? `applying ${amount}` : `done ${amount}`;
    const line = `layer ${p.layer}/${p.layers} ${p.chainID.slice(0, 19)}  ${status}`;
    writeSync(2, `\r\x1b[K${line}${p.state === "applying" ? "" : "\n"}`);
  };
}

/** Runs `stor unpack ARGS`. */
export async function unpackCommand(argv: readonly string[], config: Config, snapshotter?: string): Promise<void> {
  const cli = group("stor");
  cli
    .command("unpack <source>", "Unpack an OCI image layout directory or docker save tarball into committed snapshots; prints the top chain ID")
    .action(async (source) => {
      const service = openSnapshots(config, { access: "write", snapshotter });
      try {
        print(await unpack(service, String(source), isatty(2) ? progressLine() : undefined));
      } finally {
        service.close();
      }
    });
  await runGroup(cli, ["unpack", ...argv]);
}
