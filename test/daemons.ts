/**
 * Daemons the tests start for themselves, each with its own root, sockets and log file: `stor
 * serve`, and containerd with stor as its `[proxy_plugins]` snapshotter. Shared by
 * serve.test.ts and snapshot-ctr.test.ts.
 */
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Containerd } from "./containerd.ts";
import { connectable, Daemon } from "./daemon.ts";
import { STOR, sh, type TestRoot } from "./helpers.ts";

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

/**
 * A dockerd of the test's own below `dir` (data, exec root, socket, config and log), no network
 * set-up; it finds volume plugins where dockerd always looks.
 */
export class Dockerd {
  readonly #dir: string;
  readonly #daemon: Daemon;

  private constructor(dir: string, daemon: Daemon) {
    this.#dir = dir;
    this.#daemon = daemon;
  }

  /** Starts it and waits until it answers. */
  static async start(dir: string): Promise<Dockerd> {
    writeFileSync(join(dir, "daemon.json"), "{}\n"); // the host's /etc/docker/daemon.json does not apply
    const daemon = new Daemon(
      ["dockerd", "--iptables=false", "--ip6tables=false", "--bridge=none", "--data-root", join(dir, "data"), "--exec-root", join(dir, "exec"),
        "-H", `unix://${join(dir, "docker.sock")}`, "--pidfile", join(dir, "docker.pid"), "--config-file", join(dir, "daemon.json")],
      join(dir, "dockerd.log"),
    );
    const d = new Dockerd(dir, daemon);
    await daemon.until(() => d.docker("version").code === 0, { timeoutMs: 120_000 });
    return d;
  }

  /** Runs `docker ARGS` against it. */
  docker(...args: string[]) {
    return sh(["docker", "-H", `unix://${join(this.#dir, "docker.sock")}`, ...args]);
  }

  /** Stops it; the containerd it started goes too, killed if dockerd could not stop it. */
  async stop(): Promise<void> {
    await this.#daemon.stop(30_000);
    const pidfile = join(this.#dir, "exec/containerd/containerd.pid");
    const pid = existsSync(pidfile) ? Number(readFileSync(pidfile, "utf8")) : 0;
    if (pid > 0 && sh(["cat", `/proc/${pid}/cmdline`]).stdout.includes(this.#dir)) process.kill(pid, "SIGKILL");
  }
}
