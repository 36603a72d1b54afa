/**
 * containerd of our own, for the tests and the benchmark alike: its root, state, gRPC and ttrpc
 * sockets, config and log all below one directory, so that it shares nothing with the host's.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Daemon } from "./daemon.ts";

/** What differs between the containerds the tests and the benchmark start. */
export interface ContainerdOptions {
  /** containerd's log level; "debug" logs each garbage collection (`snapshot garbage collected`). */
  logLevel?: string;
  /** The socket of a `stor serve --containerd`, made proxy snapshotter `stor`. */
  storSocket?: string;
  /** Other proxy snapshotters: their names and sockets. */
  proxies?: Record<string, string>;
  /**
   * true (the default): containerd's own garbage collection schedule. false: collect only after
   * deletions (as always), never after a count of mutations.
   * ctr gives views no gc.root label, so a mutation-triggered collection would take the views
   * just made before they can be labelled.
   */
  collectOnMutations?: boolean;
}

/** containerd with its own config below `dir`, spawned; wait for it with {@link Daemon.until}. */
export class Containerd extends Daemon {
  /** Its gRPC socket, for `ctr -a`. */
  readonly socket: string;

  constructor(dir: string, opts: ContainerdOptions = {}) {
    mkdirSync(dir, { recursive: true });
    const socket = join(dir, "containerd.sock");
    const config = join(dir, "config.toml");
    writeFileSync(config, containerdConfig(dir, socket, opts));
    super(["containerd", "--config", config], join(dir, "containerd.log"));
    this.socket = socket;
  }
}

/**
 * The config: root, state and sockets below `dir`; the plugins neither the tests nor the
 * benchmark use (CRI, the other snapshotters, tracing, /opt) disabled.
 */
function containerdConfig(dir: string, socket: string, { logLevel = "info", storSocket, proxies = {}, collectOnMutations = true }: ContainerdOptions): string {
  const gc = collectOnMutations
    ? ""
    : `[plugins."io.containerd.gc.v1.scheduler"]
  pause_threshold = 0.02
  deletion_threshold = 0
  mutation_threshold = 1000000000
  schedule_delay = "0s"
  startup_delay = "100ms"
`;
  let proxy = "";
  for (const [name, address] of Object.entries(storSocket === undefined ? proxies : { stor: storSocket, ...proxies })) {
    proxy += `[proxy_plugins.${name}]
  type = "snapshot"
  address = "${address}"
`;
  }
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
${gc}[grpc]
  address = "${socket}"
[ttrpc]
  address = "${socket}.ttrpc"
[debug]
  address = ""
  level = "${logLevel}"
[metrics]
  address = ""
${proxy}`;
}
