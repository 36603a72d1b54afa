/**
 * Daemons the tests start for themselves, each with its own root, sockets and log file: `stor
 * serve`, and containerd with stor as its `[proxy_plugins]` snapshotter. Shared by
 * serve.test.ts and snapshot-ctr.test.ts.
 */
import { join } from "node:path";
import { Containerd } from "./containerd.ts";
import { connectable, Daemon } from "./daemon.ts";
import { STOR, type TestRoot } from "./helpers.ts";

/**
 * `stor serve ARGS` on `root`, ready when every socket it names accepts connections; `env` is
 * added to its environment (a failpoint, say).
 */
export async function startStor(root: TestRoot, args: string[], log = join(root.dir("logs"), "serve.log"), env: Record<string, string> = {}): Promise<Daemon> {
  const vars = Object.entries(env).map(([k, v]) => `${k}=${v}`);
  const serve = new Daemon([...(vars.length > 0 ? ["env", ...vars] : []), STOR, "--root", root.path, "--config", root.config, "--log-level", "debug", "serve", ...args], log);
  const sockets = args.filter((a) => a.endsWith(".sock"));
  await serve.until(() => connectable(...sockets), { timeoutMs: 15_000 });
  return serve;
}

/** stor serving `snapshotter` on a socket below `root`, and a containerd using it as `stor`. */
export interface ContainerdWithStor {
  serve: Daemon;
  containerd: Containerd;
  /** containerd's gRPC socket, for `ctr -a`. */
  socket: string;
  /** Stops containerd, then stor; each even when the other fails to. */
  stop(): Promise<void>;
}

/** Starts both; `logLevel` is containerd's ("debug" logs each garbage collection). */
export async function startContainerdWithStor(root: TestRoot, snapshotter: string, logLevel = "info"): Promise<ContainerdWithStor> {
  const storSocket = join(root.dir("run"), "stor.sock");
  const serve = await startStor(root, ["-s", snapshotter, "--containerd", storSocket]);
  let containerd: Containerd;
  try {
    containerd = new Containerd(root.dir("containerd"), { logLevel, storSocket });
    await containerd.until(() => connectable(containerd.socket));
  } catch (err) {
    await serve.stop();
    throw err;
  }
  return {
    serve,
    containerd,
    socket: containerd.socket,
    async stop() {
      try {
        await containerd.stop();
      } finally {
        await serve.stop();
      }
    },
  };
}
