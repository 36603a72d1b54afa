/** `stor serve`: the store as a containerd snapshotter and a Docker volume plugin, over unix sockets. */
import { InvalidArgumentError } from "../errors.ts";
import { LOG_FORMATS, setLogFormat, type LogFormat } from "../log.ts";
import { Group, type Context } from "./command.ts";

/** Where dockerd looks for a plugin named stor. */
const DOCKER_PLUGIN_SOCKET = "/run/docker/plugins/stor.sock";

/** `stor serve`, on the snapshotter chosen by `-s`, until SIGTERM or SIGINT. */
export function serveGroup(ctx: Context): Group {
  const cli = new Group("stor");
  cli
    .command("serve", "Serve containerd's snapshots API and Docker's volume plugin protocol on unix sockets until SIGTERM. Logs to stderr, one line a call at --log-level info.")
    .usesSnapshotter()
    .option("--containerd <socket>", "serve the snapshots API on SOCKET ([proxy_plugins] address)")
    .option("--docker-volume [socket]", `serve the volume plugin on SOCKET (default ${DOCKER_PLUGIN_SOCKET})`)
    .option("--log-format <format>", "text or json (one object a line, for log collectors); every line timestamped, one a call at --log-level info", { default: "text" })
    .example("stor serve --containerd /run/stor/containerd.sock --docker-volume --log-format json")
    .action(async (opts) => {
      const format = String(opts.logFormat);
      if (!(LOG_FORMATS as readonly string[]).includes(format)) throw new InvalidArgumentError(`log format "${format}"`, `expected ${LOG_FORMATS.join(" or ")}`);
      setLogFormat(format as LogFormat);
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
