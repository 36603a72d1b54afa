/** `stor serve`: the store as a containerd snapshotter and a Docker volume plugin, over unix sockets. */
import { Group, type Context } from "./command.ts";

/** Where dockerd looks for a plugin named stor. */
const DOCKER_PLUGIN_SOCKET = "/run/docker/plugins/stor.sock";

/** `stor serve`, on the snapshotter chosen by `-s`, until SIGTERM or SIGINT. */
export function serveGroup(ctx: Context): Group {
  const cli = new Group("stor");
  cli
    .command("serve", "Serve containerd's snapshots API and Docker's volume plugin protocol on unix sockets until SIGTERM. Logs one line per call to stderr.")
    .usesSnapshotter()
    .option("--containerd <socket>", "serve the snapshots API on SOCKET ([proxy_plugins] address)")
    .option("--docker-volume [socket]", `serve the volume plugin on SOCKET (default ${DOCKER_PLUGIN_SOCKET})`)
    .example("stor serve --containerd /run/stor/containerd.sock --docker-volume")
    .action(async (opts) => {
      const docker = opts.dockerVolume === true ? DOCKER_PLUGIN_SOCKET : opts.dockerVolume;
      const { serve } = await import("../serve/server.ts"); // gRPC: loaded only to serve
      await serve(ctx.config(), {
        containerd: opts.containerd === undefined ? undefined : String(opts.containerd),
        dockerVolume: docker === undefined ? undefined : String(docker),
        snapshotter: ctx.snapshotter,
      });
    });
  return cli;
}
