/**
 * Daemons the tests start for themselves, each with its own root, sockets and log file: `stor
 * serve`, and containerd with stor as its `[proxy_plugins]` snapshotter. Shared by
 * serve.test.ts and snapshot-ctr.test.ts.
 */
import { closeSync, existsSync, openSync, readFileSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { STOR, type TestRoot } from "./helpers.ts";

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** True when a unix socket accepts a connection. */
export function connectable(socket: string): Promise<boolean> {
  return new Promise((done) => {
    const c = connect(socket);
    c.once("connect", () => {
      c.destroy();
      done(true);
    });
    c.once("error", () => done(false));
  });
}

/** A process the tests started, its output in a log file; {@link Proc.stop} ends it. */
export class Proc {
  readonly proc: Subprocess;
  constructor(cmd: string[], readonly log: string) {
    const fd = openSync(log, "a");
    try {
      this.proc = Bun.spawn({ cmd, stdin: "ignore", stdout: fd, stderr: fd });
    } finally {
      closeSync(fd);
    }
  }

  /** Waits until `ready()` holds; throws with the log's tail if the process dies or time runs out. */
  async until(ready: () => boolean | Promise<boolean>, timeoutMs = 60_000): Promise<void> {
    const end = Date.now() + timeoutMs;
    while (!(await ready())) {
      if (this.proc.exitCode !== null || this.proc.signalCode !== null) throw new Error(`exited ${this.proc.exitCode ?? this.proc.signalCode}: ${this.tail()}`);
      if (Date.now() > end) throw new Error(`not ready after ${timeoutMs} ms: ${this.tail()}`);
      await sleep(20);
    }
  }

  tail(): string {
    return existsSync(this.log) ? readFileSync(this.log, "utf8").trim().split("\n").slice(-8).join("\n") : "";
  }

  /** SIGTERM, then SIGKILL after `graceMs`; resolves with the exit code (null when killed). */
  async stop(graceMs = 15_000): Promise<number | null> {
    if (this.proc.exitCode === null && this.proc.signalCode === null) {
      this.proc.kill("SIGTERM");
      const timer = setTimeout(() => this.proc.kill("SIGKILL"), graceMs);
      await this.proc.exited;
      clearTimeout(timer);
    }
    return this.proc.exitCode;
  }
}

/** `stor serve ARGS` on `root`, ready when every socket it names accepts connections. */
export async function startStor(root: TestRoot, args: string[], log = join(root.dir("logs"), "serve.log")): Promise<Proc> {
  const p = new Proc([STOR, "--root", root.path, "--config", root.config, "--log-level", "debug", "serve", ...args], log);
  const sockets = args.filter((a) => a.endsWith(".sock"));
  try {
    await p.until(async () => (await Promise.all(sockets.map(connectable))).every(Boolean), 15_000);
  } catch (err) {
    await p.stop();
    throw err;
  }
  return p;
}

/**
 * containerd with its own root, state and sockets below `dir`, and stor as proxy snapshotter
 * `stor`. `logLevel` "debug" logs each garbage collection (`snapshot garbage collected`).
 */
export async function startContainerd(dir: string, storSocket: string, logLevel = "info"): Promise<{ proc: Proc; socket: string }> {
  const socket = join(dir, "containerd.sock");
  const config = join(dir, "config.toml");
  writeFileSync(
    config,
    `version = 2
root = "${join(dir, "root")}"
state = "${join(dir, "state")}"
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.internal.v1.tracing",
  "io.containerd.tracing.processor.v1.otlp"]
[grpc]
  address = "${socket}"
[ttrpc]
  address = "${socket}.ttrpc"
[debug]
  address = ""
  level = "${logLevel}"
[metrics]
  address = ""
[proxy_plugins.stor]
  type = "snapshot"
  address = "${storSocket}"
`,
  );
  const proc = new Proc(["containerd", "--config", config], join(dir, "containerd.log"));
  try {
    await proc.until(() => connectable(socket));
  } catch (err) {
    await proc.stop();
    throw err;
  }
  return { proc, socket };
}

/** stor serving `snapshotter` on a socket below `root`, and a containerd using it as `stor`. */
export interface ContainerdWithStor {
  serve: Proc;
  containerd: Proc;
  /** containerd's gRPC socket, for `ctr -a`. */
  socket: string;
  /** Stops containerd, then stor; each even when the other fails to. */
  stop(): Promise<void>;
}

export async function startContainerdWithStor(root: TestRoot, snapshotter: string, logLevel = "info"): Promise<ContainerdWithStor> {
  const storSocket = join(root.dir("run"), "stor.sock");
  const serve = await startStor(root, ["-s", snapshotter, "--containerd", storSocket]);
  let c: Awaited<ReturnType<typeof startContainerd>>;
  try {
    c = await startContainerd(root.dir("containerd"), storSocket, logLevel);
  } catch (err) {
    await serve.stop();
    throw err;
  }
  return {
    serve,
    containerd: c.proc,
    socket: c.socket,
    async stop() {
      try {
        await c.proc.stop();
      } finally {
        await serve.stop();
      }
    },
  };
}
