/**
 * The reference daemons, started by the benchmark with their own roots, state and sockets under
 * its work directory, and stopped by it (or by its clean-up, however it ends): containerd (for
 * `ctr snapshots`) and dockerd (for `docker volume`).
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Containerd } from "../containerd.ts";
import { connectable, Daemon } from "../daemon.ts";
import { atCleanup, findBin, unmountBelow } from "./system.ts";

/**
 * Waits for a daemon the benchmark just spawned until `ready()` holds, asking every 5 ms so that
 * its startMs is close; first registers its stop, then `after`, as a clean-up step.
 */
export async function started<D extends Daemon>(d: D, ready: () => boolean | Promise<boolean>, timeoutMs: number, after?: () => void): Promise<D> {
  atCleanup(`stop ${d.name}`, async () => {
    await d.stop();
    after?.();
  });
  await d.until(ready, { timeoutMs, everyMs: 5 });
  return d;
}

/**
 * Starts containerd with its own config under `dir`, garbage collected only after deletions (the
 * benchmark pins its views once made), with `storSocket`, if given, as proxy snapshotter `stor`.
 */
export function startContainerd(dir: string, storSocket?: string, proxies?: Record<string, string>): Promise<Containerd> {
  const containerd = new Containerd(dir, { storSocket, proxies, collectOnMutations: false });
  return started(containerd, () => connectable(containerd.socket), 30_000, () => unmountBelow(dir));
}

/** True when the Docker API on `socket` answers `/_ping`. */
async function ping(socket: string): Promise<boolean> {
  try {
    const r = await fetch("http://localhost/_ping", { unix: socket });
    await r.arrayBuffer();
    return r.ok;
  } catch {
    return false;
  }
}

/** The docker CLI to drive dockerd with: Debian's, which matches its daemon (a newer one on PATH would negotiate down). */
export function dockerClient(): string {
  const cli = existsSync("/usr/bin/docker") ? "/usr/bin/docker" : findBin("docker");
  if (!cli) throw new Error("docker CLI not found");
  return cli;
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

/** dockerd and the socket of its API; its stop also stops the containerd it started, if it was killed first. */
export class Dockerd extends Daemon {
  constructor(
    cmd: string[],
    readonly dirs: DockerDirs,
  ) {
    super(cmd, dirs.log);
  }

  get socket(): string {
    return this.dirs.socket;
  }

  override async stop(graceMs?: number): Promise<number | null> {
    const code = await super.stop(graceMs);
    // dockerd stops the containerd it started; if it was killed instead, stop that one too.
    try {
      const cpid = Number(readFileSync(join(this.dirs.execRoot, "containerd", "containerd.pid"), "utf8").trim());
      // Only if that pid is still the containerd of this exec root (pids get reused).
      const cmdline = readFileSync(`/proc/${cpid}/cmdline`, "utf8");
      if (cpid > 0 && cmdline.includes(this.dirs.execRoot)) await terminate(cpid, 5_000);
    } catch {
      /* no managed containerd */
    }
    return code;
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Sends SIGTERM to `pid` (not a child of ours), waits up to `graceMs`, then SIGKILL. */
async function terminate(pid: number, graceMs: number): Promise<void> {
  if (!alive(pid)) return;
  process.kill(pid, "SIGTERM");
  const until = Date.now() + graceMs;
  while (alive(pid) && Date.now() < until) await Bun.sleep(20);
  if (alive(pid)) {
    process.kill(pid, "SIGKILL");
    while (alive(pid)) await Bun.sleep(20);
  }
}

/**
 * Starts dockerd (it starts and stops its own containerd) with the data root, exec root, socket
 * and pidfile of `dirs`, no iptables and no bridge; resolves when `/_ping` answers. `startMs` is
 * the time from spawn to the first good ping: the start-up time compared with `stor restore`.
 */
async function startDockerd(dockerd: string, dirs: DockerDirs): Promise<Dockerd> {
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

function spawnDockerd(cmd: string[], dirs: DockerDirs): Promise<Dockerd> {
  return started(new Dockerd(cmd, dirs), () => ping(dirs.socket), 120_000, () => {
    unmountBelow(dirs.execRoot);
    unmountBelow(dirs.dataRoot);
  });
}

/** Retries the start with the minimal flags when this dockerd version rejects one of the others. */
export async function startDockerdCompat(dockerd: string, dirs: DockerDirs): Promise<Dockerd> {
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
