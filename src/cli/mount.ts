/** `stor mount KEY TARGET` and `stor unmount TARGET`. */
import type { Config } from "../config.ts";
import { mountAll, unmountAll } from "../mounting.ts";
import { openSnapshots } from "../snapshot/registry.ts";
import { group, runGroup } from "./command.ts";

/** Runs `stor mount ARGS`. */
export async function mountCommand(argv: readonly string[], config: Config, snapshotter?: string): Promise<void> {
  const cli = group("stor");
  cli.command("mount <key> <target>", "Mount snapshot KEY on TARGET").action((key, target) => {
    const service = openSnapshots(config, snapshotter);
    try {
      mountAll(service.mounts(String(key)), String(target), `snapshot "${key}"`);
    } finally {
      service.close();
    }
  });
  await runGroup(cli, ["mount", ...argv]);
}

/** Runs `stor unmount ARGS`. */
export async function unmountCommand(argv: readonly string[]): Promise<void> {
  const cli = group("stor");
  cli
    .command("unmount <target>", "Unmount everything mounted on TARGET")
    .alias("umount")
    .option("--lazy", "Detach now, clean up when no longer busy (MNT_DETACH)")
    .action((target, opts) => {
      unmountAll(String(target), Boolean(opts.lazy));
    });
  await runGroup(cli, ["unmount", ...argv]);
}
