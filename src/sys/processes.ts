/**
 * Which processes use a tree: their working or root directory or an open file in it, or a mount
 * of it in their mount namespace (a container's bind of a volume is seen only there). Read from
 * /proc once, then asked about any number of trees; a process that exits meanwhile is skipped.
 */
import { readFileSync, readdirSync, readlinkSync } from "../nodeFs.ts";
import { mountsUsing, parseMountInfo, readMountInfo, within, type MountInfo } from "./mountinfo.ts";

/** A process that uses a tree, and how. */
export interface ProcessUse {
  pid: number;
  /** Its command name. */
  comm: string;
  /** `cwd`, `root`, `fd N` or `mount MOUNTPOINT`. */
  how: string;
}

interface Held {
  use: ProcessUse;
  /** The path it holds (cwd, root, open file). */
  path: string;
}

interface NamespaceMounts {
  pid: number;
  comm: string;
  mounts: MountInfo[];
}

/** What every process holds, read once from /proc. */
export class ProcessTable {
  readonly #held: Held[] = [];
  readonly #namespaces: NamespaceMounts[] = [];
  readonly #hostMounts = readMountInfo();

  constructor() {
    const seen = new Set<string>();
    for (const name of readdirSync("/proc")) {
      if (!/^\d+$/.test(name)) continue;
      const pid = Number(name);
      if (pid === process.pid) continue;
      const proc = `/proc/${name}`;
      const comm = read(`${proc}/comm`)?.trim() ?? "?";
      for (const how of ["cwd", "root"]) {
        const path = readLink(`${proc}/${how}`);
        if (path !== undefined && path !== "/") this.#held.push({ use: { pid, comm, how }, path });
      }
      let fds: string[] = [];
      try {
        fds = readdirSync(`${proc}/fd`);
      } catch {
        // Gone, or not ours to read.
      }
      for (const fd of fds) {
        const path = readLink(`${proc}/fd/${fd}`);
        if (path?.startsWith("/")) this.#held.push({ use: { pid, comm, how: `fd ${fd}` }, path });
      }
      // Each mount namespace once: its mounts are the same for all its processes.
      const ns = readLink(`${proc}/ns/mnt`);
      if (ns === undefined || seen.has(ns)) continue;
      seen.add(ns);
      const text = read(`${proc}/mountinfo`);
      if (text !== undefined) this.#namespaces.push({ pid, comm, mounts: parseMountInfo(text) });
    }
  }

  /** The processes that use the tree at `path` (a real path), one entry per process. */
  usersOf(path: string): ProcessUse[] {
    const out = new Map<number, ProcessUse>();
    for (const h of this.#held) if (!out.has(h.use.pid) && within(h.path, path)) out.set(h.use.pid, h.use);
    for (const ns of this.#namespaces) {
      if (out.has(ns.pid)) continue;
      const m = mountsUsing(path, this.#hostMounts, ns.mounts)[0];
      if (m) out.set(ns.pid, { pid: ns.pid, comm: ns.comm, how: `mount ${m.mountPoint}` });
    }
    return [...out.values()];
  }
}

function readLink(path: string): string | undefined {
  try {
    return readlinkSync(path);
  } catch {
    return undefined;
  }
}

function read(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return undefined;
  }
}
