/**
 * `stor serve`: containerd's snapshots API and Docker's volume plugin protocol, each on its unix
 * socket, in one process until SIGTERM or SIGINT. Shutdown is graceful: both stop accepting, the
 * calls in flight finish, the databases close and the socket files go. A second signal during
 * shutdown gets the default action (the process ends at once).
 *
 * For its whole life serve holds the root's serve lock shared, so `stor restore` can tell that a
 * live server uses the root. Before it listens it removes what a killed serve (or any killed
 * process) left of the things it serves: half-made snapshot copies nobody holds, interrupted
 * volume removals; each under the locks their owners take, so work in progress is left alone.
 */
import { mkdirSync } from "../nodeFs.ts";
import { removeLeftovers } from "../snapshot/restore.ts";
import { connect, createServer as createNetServer } from "node:net";
import { createServer as createHttpServer } from "node:http";
import { basename, dirname, join, resolve } from "../path.ts";
import * as grpc from "@grpc/grpc-js";
import type { Config } from "../config.ts";
import { AlreadyExistsError, InvalidArgumentError, PreconditionError, StorError, describe } from "../errors.ts";
import { encodeName } from "../fileName.ts";
import { RUN_DIR, SOCKET_CLAIMS_DIR, rootError, serveLock, socketClaimLock } from "../layout.ts";
import { dirsError } from "../dirsError.ts";
import { log } from "../log.ts";
import { openSnapshots, openVolumes } from "../services.ts";
import { lockEphemeral, lockPath, type FileLock } from "../sys/file.ts";
import { pathExists, realPath, removeDirIfEmpty, removeFile, rootOnly, statPath } from "../sys/pathCalls.ts";
import type { SnapshotService } from "../snapshot/service.ts";
import type { VolumeService } from "../volume/service.ts";
import { snapshotsService } from "./containerd.ts";
import { Threads } from "./threads.ts";
import { useNormalJit } from "../jitPolicy.ts";
import { failpoint } from "../failpoint.ts";
import { dockerVolumeHandler } from "./dockerVolume.ts";
import { connectionLimit, fetchListener, listenOn } from "./listener.ts";

/** What `stor serve` serves; at least one socket. */
export interface ServeOptions {
  /** Socket for containerd's snapshots API. */
  containerd?: string;
  /** Socket for Docker's volume plugin protocol. */
  dockerVolume?: string;
  /** The snapshotter behind the containerd socket (the configured default when not given). */
  snapshotter?: string;
}

/** The largest request either protocol takes: keys and labels are a few KiB at most. */
const MAX_REQUEST_BYTES = 1 << 20;
/**
 * How long shutdown waits for calls in flight before cutting them off, then for the threads'
 * calls; STOR_SERVE_GRACE_MS shortens it for the tests.
 */
const SHUTDOWN_GRACE_MS = Number(process.env.STOR_SERVE_GRACE_MS) || 30_000;
/**
 * The bound on a connection to the containerd socket that never speaks HTTP/2: each connection
 * is pinged after half of it (and again half of it after each answer), and closed when the other
 * half passes without an answer. A client's HTTP/2 layer answers by itself, busy or idle; a
 * connection that never spoke would hold a descriptor for ever. grpc-go, containerd's own
 * server, closes one without a preface after 120 s. STOR_SERVE_SILENCE_MS shortens it for the
 * tests.
 */
const SILENCE_MS = Number(process.env.STOR_SERVE_SILENCE_MS) || 120_000;
/** The longest path a unix socket can have: sun_path holds 108 bytes, the closing NUL among them. */
const MAX_SOCKET_PATH_BYTES = 107;
/** How often start-up asks again for a lock another holds: the serve lock, a socket's claim lock. */
const LOCK_POLL_MS = 100;

type Stop = () => void | Promise<void>;

/** Serves until SIGTERM or SIGINT, then shuts down gracefully. */
export async function serve(config: Config, opts: ServeOptions): Promise<void> {
  for (const [option, socket] of [["--containerd", opts.containerd], ["--docker-volume", opts.dockerVolume]] as const) {
    if (socket === "") throw new InvalidArgumentError(`option ${option}`, "an empty socket path");
  }
  if (!opts.containerd && !opts.dockerVolume) throw new InvalidArgumentError("serve", "nothing to serve: give --containerd or --docker-volume");
  useNormalJit(); // a daemon from here on
  // Listened for from the start, so a signal during start-up is a graceful stop too.
  const stopSignal = stopSignals();
  // Undone in reverse: each server stops before its socket file goes and its database closes.
  const undo: Stop[] = [stopSignal.off];
  // A bug in one call must not take both servers down with it.
  const stray = (err: unknown) => log.error(`unhandled: ${describe(err)}`);
  process.on("unhandledRejection", stray);
  undo.push(() => void process.off("unhandledRejection", stray));
  // A root this start makes, and a start refused (a snapshotter that cannot run there), leaves nothing.
  const newRoot = !pathExists(config.root);
  failpoint("serve:root-looked-at");
  let started = false;
  undo.push(() => {
    if (!newRoot || started) return;
    // Only while no one holds it: another serve that started on the same new root keeps its lock,
    // or a restore would take a lock of a new file beside it.
    lockEphemeral(serveLock(config.root), false)?.release();
    removeDirIfEmpty(config.root);
  });
  try {
    // Held before the store is touched: restore, which takes it exclusively, may be at work.
    const lock = await takeServeLock(config.root, stopSignal.first);
    if (!lock) return;
    undo.push(() => lock.release());
    // Before the stores are opened, which makes them: a socket refused (its directory a file)
    // leaves a root this start made as it found it.
    const containerdSocket = opts.containerd ? await claimSocket(opts.containerd, stopSignal.first) : undefined;
    if (containerdSocket) undo.push(() => containerdSocket.release());
    const volumeSocket = opts.dockerVolume ? await claimSocket(opts.dockerVolume, stopSignal.first) : undefined;
    if (volumeSocket) undo.push(() => volumeSocket.release());
    if ((opts.containerd && !containerdSocket) || (opts.dockerVolume && !volumeSocket)) return; // stopped while waiting
    const snapshots = opts.containerd ? await openSnapshots(config, { access: "write", snapshotter: opts.snapshotter, forContainerd: true }) : undefined;
    if (snapshots) undo.push(() => snapshots.close());
    const volumes = opts.dockerVolume ? await openVolumes(config, "write", { askPlugins: false }) : undefined;
    if (volumes) undo.push(() => volumes.close());
    const left = snapshots && removeLeftovers(snapshots);
    const removed = [...(left?.abandoned ?? []), ...(left?.removed ?? []), ...(left?.undone ?? []), ...(volumes?.cleanup() ?? [])];
    if (removed.length > 0) log.info(`removed leftovers of interrupted operations: ${removed.join(", ")}`);
    const snapshotThreads = snapshots && new Threads("snapshots", { config, snapshotter: snapshots.snapshotter.name });
    // Volume calls wait on the kernel (a mount on a server that does not answer), not on the CPU:
    // as dockerd's goroutines, more may wait at once than there are CPUs.
    const volumeThreads = volumes && new Threads("volumes", { config }, { burst: 16 });
    // After the servers have stopped: the calls on the threads are theirs.
    undo.push(async () => void (await Promise.all([snapshotThreads?.close(SHUTDOWN_GRACE_MS), volumeThreads?.close(SHUTDOWN_GRACE_MS)])));
    // Each socket file goes once its server has stopped; the servers stop together, both taking
    // no new call from the first moment, so one socket's calls in flight keep the other open to none.
    const servers: Stop[] = [];
    const claims = [containerdSocket, volumeSocket].filter((claim) => claim !== undefined);
    undo.push(() => {
      failpoint("serve:servers-stopped");
      for (const claim of claims) claim.stopped();
    });
    undo.push(async () => void (await Promise.all(servers.map((stop) => stop()))));
    undo.push(async () => void (await Promise.all(claims.map((claim) => claim.stopping()))));
    const limit = connectionLimit();
    if (containerdSocket && snapshots && snapshotThreads) {
      servers.push(await serveContainerd(containerdSocket.path, snapshots, snapshotThreads, limit));
      containerdSocket.bound();
      log.info(`serving containerd snapshotter ${snapshots.snapshotter.name} on ${containerdSocket.path}`);
    }
    if (volumeSocket && volumes && volumeThreads) {
      servers.push(await serveDockerVolume(volumeSocket.path, volumes, volumeThreads, limit));
      volumeSocket.bound();
      log.info(`serving Docker volume plugin on ${volumeSocket.path}`);
    }
    started = true;
    log.info(`shutting down on ${await stopSignal.first}`);
  } finally {
    for (const stop of undo.reverse()) {
      try {
        await stop();
      } catch (err) {
        log.error(`shutdown: ${describe(err)}`);
      }
    }
  }
}

/**
 * The serve lock of `root` (made, with the root, when missing), shared; while `stor restore`
 * holds it exclusively, asked for again until it is free or `stop` settles (then undefined).
 * Asked without blocking, so that a signal is still heard while waiting.
 */
async function takeServeLock(root: string, stop: Promise<string>): Promise<FileLock | undefined> {
  const path = serveLock(root);
  try {
    mkdirSync(root, { recursive: true, mode: 0o711 });
  } catch (err) {
    throw rootError(root, err);
  }
  return await waitForLock(() => lockPath(path, { shared: true, create: true, wait: false }), stop, `waiting for ${path}: held exclusively, as stor restore holds it`);
}

/**
 * A lock `take` gives (undefined while another holds it), asked for again until it is given or
 * `stop` settles (then undefined). Asked without blocking, so that a signal is still heard while
 * waiting; `waiting` is logged once, when the first try fails.
 */
async function waitForLock(take: () => FileLock | undefined, stop: Promise<string>, waiting: string): Promise<FileLock | undefined> {
  let stopped = false;
  void stop.then(() => (stopped = true));
  for (let said = false; !stopped; said = true) {
    const lock = take();
    if (lock) return lock;
    if (!said) log.info(waiting);
    await Bun.sleep(LOCK_POLL_MS);
  }
  return undefined;
}

/** The name of the first SIGTERM or SIGINT from now on, and the end of listening for them. */
function stopSignals(): { first: Promise<string>; off: () => void } {
  let off = () => {};
  const first = new Promise<string>((done) => {
    const on = (signal: string) => {
      off();
      done(signal);
    };
    off = () => {
      process.off("SIGTERM", on);
      process.off("SIGINT", on);
    };
    process.on("SIGTERM", on);
    process.on("SIGINT", on);
  });
  return { first, off };
}

/**
 * A socket path this serve has claimed. The path's claim lock (in /run/stor/sockets, there only
 * while held) keeps every other stor serve from looking at the path from the claim until the
 * bind, and again from the moment this serve begins to stop until its socket file is gone: without
 * it, two serves starting at once could both find one stale socket file, and the one that removed
 * it last would remove the other's live socket; and a serve stopping (node:net and node:http unlink
 * their socket's path as they close) would unlink the socket of one that had just started there.
 */
class SocketClaim {
  #lockFile: string;
  #lock: FileLock | undefined;
  #bound: bigint | undefined;

  constructor(
    /** The socket's absolute path. */
    readonly path: string,
    lockFile: string,
    lock: FileLock,
  ) {
    this.#lockFile = lockFile;
    this.#lock = lock;
  }

  /** After the bind: the file at the path is this serve's socket, which others may now find live. */
  bound(): void {
    const st = statPath(this.path, false);
    this.#bound = st?.isSocket ? st.ino : undefined;
    this.release();
  }

  /**
   * Before the server stops: the claim lock again. Another serve holds it only while it looks at
   * the path (and finds this one listening), so it is waited for, but not for ever.
   */
  async stopping(): Promise<void> {
    for (let waited = 0; !this.#lock && waited < STOP_CLAIM_WAIT_MS; waited += 10) {
      this.#lock = lockEphemeral(this.#lockFile, false);
      if (!this.#lock) await Bun.sleep(10);
    }
  }

  /** After the server has stopped: its socket file removed, if its server left it, and the path free. */
  stopped(): void {
    try {
      if (this.#lock && this.#bound !== undefined && statPath(this.path, false)?.ino === this.#bound) removeFile(this.path);
    } finally {
      this.release();
    }
  }

  /** Lets other serves claim the path. */
  release(): void {
    this.#lock?.release();
    this.#lock = undefined;
  }
}

/** How long a stopping serve waits for another serve to finish looking at its socket's path. */
const STOP_CLAIM_WAIT_MS = 1000;

/**
 * Claims `path` for a new socket: its directory made, a socket file that nothing listens on (left
 * by a killed server) removed. While another stor serve is starting or stopping on the path, it is
 * waited for, until `stop` settles (then undefined). A live socket or another file is an error,
 * never removed; so is a path too long to listen on, which grpc-js would report without its errno.
 */
async function claimSocket(path: string, stop: Promise<string>): Promise<SocketClaim | undefined> {
  const abs = resolve(path);
  if (encodeName(abs).length > MAX_SOCKET_PATH_BYTES) throw new InvalidArgumentError(`socket ${abs}`, `path too long (max ${MAX_SOCKET_PATH_BYTES} bytes)`);
  try {
    mkdirSync(dirname(abs), { recursive: true, mode: 0o755 });
  } catch (err) {
    throw dirsError("socket", abs, dirname(abs), err);
  }
  const lockFile = socketClaimLock(join(realPath(dirname(abs)), basename(abs)));
  try {
    mkdirSync(SOCKET_CLAIMS_DIR, { recursive: true, mode: 0o700 });
  } catch (err) {
    throw dirsError("socket claims", SOCKET_CLAIMS_DIR, SOCKET_CLAIMS_DIR, err);
  }
  // Anyone else who could write there could make the lock's name a symlink to any file.
  for (const dir of [RUN_DIR, SOCKET_CLAIMS_DIR]) if (!rootOnly(dir)) throw new PreconditionError(`socket claims ${SOCKET_CLAIMS_DIR}`, `${dir} is not root's alone`);
  const take = () => {
    try {
      return lockEphemeral(lockFile, false);
    } catch (err) {
      throw new StorError(`socket ${abs}`, describe(err));
    }
  };
  const lock = await waitForLock(take, stop, `waiting for socket ${abs}: another stor serve is starting or stopping on it`);
  if (!lock) return undefined;
  try {
    const st = statPath(abs, false);
    if (st !== undefined) {
      if (!st.isSocket) throw new AlreadyExistsError(`socket ${abs}`, "exists and is not a socket");
      failpoint("serve:socket-looked-at");
      if (await listening(abs)) throw new AlreadyExistsError(`socket ${abs}`, "another server is listening on it");
      removeFile(abs);
    }
    return new SocketClaim(abs, lockFile, lock);
  } catch (err) {
    lock.release();
    throw err;
  }
}

function listening(socket: string): Promise<boolean> {
  return new Promise((done) => {
    const c = connect(socket);
    c.once("connect", () => {
      c.destroy();
      done(true);
    });
    c.once("error", () => done(false));
  });
}

/** Serves the snapshots API on `socket`, taking at most `limit` connections; returns the graceful stop. */
async function serveContainerd(socket: string, snapshots: SnapshotService, threads: Threads<"snapshots">, limit: number): Promise<Stop> {
  // grpc-js would write lines of its own to stderr: they go to stor's log, for --log-level debug.
  const grpcLine = (...args: unknown[]) => log.debug(`grpc: ${args.join(" ")}`);
  grpc.setLogger({ error: grpcLine, info: grpcLine, debug: grpcLine });
  // No channelz: nothing reads it, and it tracks every call.
  const server = new grpc.Server({
    "grpc.max_receive_message_length": MAX_REQUEST_BYTES,
    "grpc.enable_channelz": 0,
    "grpc.keepalive_time_ms": SILENCE_MS / 2,
    "grpc.keepalive_timeout_ms": SILENCE_MS / 2,
  });
  server.addService(...snapshotsService(snapshots, threads));
  // The listener is stor's, which grpc-js's bindAsync would not let it hold to a limit; grpc-js
  // takes each connection it accepts.
  const injector = server.createConnectionInjector(grpc.ServerCredentials.createInsecure());
  const listener = createNetServer((connection) => injector.injectConnection(connection));
  await listenOn(listener, socket, limit);
  failpoint("serve:bound");
  return async () => {
    listener.close();
    const drained = new Promise<void>((done) => server.tryShutdown(() => done()));
    if (!(await withinGrace(drained))) server.forceShutdown();
  };
}

/** Serves the volume plugin on `socket`, taking at most `limit` connections; returns the graceful stop. */
async function serveDockerVolume(socket: string, volumes: VolumeService, threads: Threads<"volumes">, limit: number): Promise<Stop> {
  const inFlight = new Set<Promise<void>>();
  const track = (answered: Promise<void>) => {
    inFlight.add(answered);
    void answered.finally(() => inFlight.delete(answered));
  };
  const server = createHttpServer(fetchListener(dockerVolumeHandler(volumes, threads), MAX_REQUEST_BYTES, track));
  await listenOn(server, socket, limit);
  failpoint("serve:bound");
  return async () => {
    server.close(); // no new connections; idle keep-alive ones are closed now, the others once answered
    server.closeIdleConnections();
    await withinGrace(Promise.allSettled(inFlight));
    server.closeAllConnections();
  };
}

/** Waits for `p`, but no longer than the shutdown grace; true when `p` settled in time. */
async function withinGrace(p: Promise<unknown>): Promise<boolean> {
  let timer: Timer | undefined;
  const late = new Promise<false>((done) => (timer = setTimeout(done, SHUTDOWN_GRACE_MS, false)));
  try {
    return await Promise.race([p.then(() => true), late]);
  } finally {
    clearTimeout(timer);
  }
}
