/** `stor serve`: the store as a containerd snapshotter and a Docker volume plugin, over unix sockets. */
import type { Config } from "../config.ts";
import { serve } from "../serve/server.ts";
import { group, runGroup } from "./command.ts";

/** Where dockerd looks for a plugin named stor. */
const DOCKER_PLUGIN_SOCKET = "/run/docker/plugins/stor.sock";

/** Runs `stor serve ARGS` with the snapshotter chosen by `-s` until SIGTERM or SIGINT. */
export async function serveCommand(argv: readonly string[], config: Config, snapshotter?: string): Promise<void> {
  const cli = group("stor");
  cli
    .command("serve", "Serve containerd's snapshots API and Docker's volume plugin protocol until SIGTERM")
    .option("--containerd <socket>", "Serve the snapshots API on SOCKET ([proxy_plugins] address)")
    .option("--docker-volume [socket]", `Serve the volume plugin on SOCKET (default ${DOCKER_PLUGIN_SOCKET})`)
    .action(async (opts) => {
      const docker = opts.dockerVolume === true ? DOCKER_PLUGIN_SOCKET : opts.dockerVolume;
      await serve(config, {
        containerd: opts.containerd === undefined ? undefined : String(opts.containerd),
        dockerVolume: docker === undefined ? undefined : String(docker),
        snapshotter,
      });
    });
  await runGroup(cli, ["serve", ...argv]);
}
