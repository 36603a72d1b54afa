/**
 * The reference daemons, started by the benchmark with their own roots, state and sockets under
 * its work directory, and stopped by it: containerd (for `ctr snapshots`) and dockerd (for
 * `docker volume`).
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync, openSync, closeSync } from "node:fs";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { sleep } from "./proc.ts";
import { atCleanup, unmountBelow } from "./system.ts";

export interface Daemon {
  name: string;
  pid: number;
  socket: string;
  log: string;
  /** Milliseconds from spawn until the daemon answered. */
  startMs: number;
  /** Stops the daemon (SIGTERM, then SIGKILL after `graceMs`) and waits for it to exit. */
  stop(graceMs?: number): Promise<void>;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Sends SIGTERM to `pid`, waits up to `graceMs`, then SIGKILL. */
export async function terminate(pid: number, graceMs = 15_000): Promise<void> {
  if (!alive(pid)) return;
  process.kill(pid, "SIGTERM");
  const until = Date.now() + graceMs;
  while (alive(pid) && Date.now() < until) await sleep(20);
  if (alive(pid)) {
    process.kill(pid, "SIGKILL");
    while (alive(pid)) await sleep(20);
  }
}

/** Waits until `ready()` holds, checking every `everyMs`; throws after `timeoutMs` or when `failed()` says so. */
async function waitUntil(ready: () => Promise<boolean> | boolean, failed: () => string | undefined, timeoutMs: number, everyMs = 5): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    if (await ready()) return;
    const why = failed();
    if (why) throw new Error(why);
    if (Date.now() > until) throw new Error(`not ready after ${timeoutMs} ms`);
    await sleep(everyMs);
  }
}

function spawnLogged(cmd: string[], log: string): Subprocess {
  const fd = openSync(log, "a");
  try {
    return Bun.spawn({ cmd, stdin: "ignore", stdout: fd, stderr: fd });
  } finally {
    closeSync(fd);
  }
}

const tail = (file: string) => {
  try {
    return readFileSync(file, "utf8").trim().split("\n").slice(-5).join("\n");
  } catch {
    return "";
  }
};

/**
 * containerd's config for a daemon of its own below `dir`: root, state, gRPC and ttrpc sockets
 * there; the plugins the benchmark does not use disabled; `extra` appended (e.g. a proxy plugin).
 */
export function containerdConfig(dir: string, socket: string, extra = ""): string {
  return `version = 2
root = "${join(dir, "root")}"
state = "${join(dir, "state")}"
disabled_plugins = [
  "io.containerd.grpc.v1.cri",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.internal.v1.opt",
  "io.containerd.tracing.processor.v1.otlp",
  "io.containerd.internal.v1.tracing",
]
# GC only after deletions (as always), never after a count of mutations: ctr gives views no
# gc.root label, so a mutation-triggered collection would take the views the benchmark just made.
[plugins."io.containerd.gc.v1.scheduler"]
  pause_threshold = 0.02
  deletion_threshold = 0
  mutation_threshold = 1000000000
  schedule_delay = "0s"
  startup_delay = "100ms"
[grpc]
  address = "${socket}"
[ttrpc]
  address = "${socket}.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
${extra}`;
}

/**
 * Starts containerd with its own config under `dir`: root, state, gRPC and ttrpc sockets there;
 * the plugins the benchmark does not use (CRI, other snapshotters, tracing) disabled.
 */
export async function startContainerd(dir: string): Promise<Daemon> {
  mkdirSync(dir, { recursive: true });
  const socket = join(dir, "containerd.sock");
  const config = join(dir, "config.toml");
  writeFileSync(config, containerdConfig(dir, socket));
  const log = join(dir, "containerd.log");
  const t0 = performance.now();
  const proc = spawnLogged(["containerd", "--config", config], log);
  const pid = proc.pid;
  let stopped = false;
  const stop = async (graceMs?: number) => {
    if (stopped) return;
    stopped = true;
    await terminate(pid, graceMs);
  };
  atCleanup("stop containerd", async () => {
    await stop();
    unmountBelow(dir);
  });
  await waitUntil(
    () => existsSync(socket),
    () => (proc.exitCode !== null ? `containerd exited ${proc.exitCode}: ${tail(log)}` : undefined),
    30_000,
  );
  const startMs = performance.now() - t0;
  return { name: "containerd", pid, socket, log, startMs, stop };
}

async function ping(socket: string): Promise<boolean> {
  try {
    const r = await fetch("http://localhost/_ping", { unix: socket });
    await r.arrayBuffer();
    return r.ok;
  } catch {
    return false;
  }
}

export interface DockerDirs {
  dataRoot: string;
  execRoot: string;
  socket: string;
  pidfile: string;
  config: string;
  log: string;
}

/** The directories of a dockerd of our own under `dir`. */
export function dockerDirs(dir: string): DockerDirs {
  return {
    dataRoot: join(dir, "data"),
    execRoot: join(dir, "exec"),
    socket: join(dir, "docker.sock"),
    pidfile: join(dir, "docker.pid"),
    config: join(dir, "daemon.json"),
    log: join(dir, "dockerd.log"),
  };
}

/**
 * Starts dockerd (it starts and stops its own containerd) with the data root, exec root, socket
 * and pidfile of `dirs`, no iptables and no bridge; resolves when `/_ping` answers. `startMs` is
 * the time from spawn to the first good ping: the start-up time compared with `stor restore`.
 */
export async function startDockerd(dockerd: string, dirs: DockerDirs): Promise<Daemon> {
  mkdirSync(dirs.dataRoot, { recursive: true });
  mkdirSync(dirs.execRoot, { recursive: true });
  writeFileSync(dirs.config, "{}\n");
  const cmd = [
    dockerd,
    "--iptables=false",
    "--ip6tables=false",
    "--ip-forward=false",
    "--bridge=none",
    "--data-root",
    dirs.dataRoot,
    "--exec-root",
    dirs.execRoot,
    "-H",
    `unix://${dirs.socket}`,
    "--pidfile",
    dirs.pidfile,
    "--config-file",
    dirs.config, // an empty one: the host's /etc/docker/daemon.json does not apply
  ];
  return spawnDockerd(cmd, dirs);
}

async function spawnDockerd(cmd: string[], dirs: DockerDirs): Promise<Daemon> {
  const t0 = performance.now();
  const proc = spawnLogged(cmd, dirs.log);
  const pid = proc.pid;
  const managedContainerd = join(dirs.execRoot, "containerd", "containerd.pid");
  let stopped = false;
  const stop = async (graceMs?: number) => {
    if (stopped) return;
    stopped = true;
    await terminate(pid, graceMs);
    // dockerd stops the containerd it started; if it was killed instead, stop that one too.
    try {
      const cpid = Number(readFileSync(managedContainerd, "utf8").trim());
      // Only if that pid is still the containerd of this exec root (pids get reused).
      const cmdline = readFileSync(`/proc/${cpid}/cmdline`, "utf8");
      if (cpid > 0 && cmdline.includes(dirs.execRoot)) await terminate(cpid, 5_000);
    } catch {
      /* no managed containerd */
    }
  };
  atCleanup("stop dockerd", async () => {
    await stop();
    unmountBelow(dirs.execRoot);
    unmountBelow(dirs.dataRoot);
  });
  await waitUntil(
    () => ping(dirs.socket),
    () => (proc.exitCode !== null ? `dockerd exited ${proc.exitCode}: ${tail(dirs.log)}` : undefined),
    120_000,
  );
  const startMs = performance.now() - t0;
  return { name: "dockerd", pid, socket: dirs.socket, log: dirs.log, startMs, stop };
}

/** Retries the start with the minimal flags when this dockerd version rejects one of the others. */
export async function startDockerdCompat(dockerd: string, dirs: DockerDirs): Promise<Daemon> {
  try {
    return await startDockerd(dockerd, dirs);
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err);
    if (!/unknown flag/i.test(msg)) throw err;
    const cmd = [dockerd, "--iptables=false", "--bridge=none", "--data-root", dirs.dataRoot, "--exec-root", dirs.execRoot, "-H", `unix://${dirs.socket}`, "--pidfile", dirs.pidfile];
    return spawnDockerd(cmd, dirs);
  }
}

/** POSTs JSON to the Docker API on `socket`; throws on a non-2xx answer. */
export async function dockerApi(socket: string, method: string, path: string, body?: unknown): Promise<unknown> {
  const r = await fetch(`http://localhost${path}`, {
    unix: socket,
    method,
    headers: body === undefined ? undefined : { "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await r.text();
  if (!r.ok) throw new Error(`docker API ${method} ${path}: ${r.status} ${text.trim()}`);
  return text ? JSON.parse(text) : undefined;
}
