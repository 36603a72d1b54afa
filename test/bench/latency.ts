/**
 * Timing operations of two tools against each other, one whole process per call: the tools, the
 * snapshot operations both latency sections run, the interleaved measurement, and ctr as a tool.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Containerd } from "../containerd.ts";
import { must, run } from "./proc.ts";
import { runMountLines, unmountBelow } from "./system.ts";

/** One way of running an operation: a command line per call, and what to do between calls. */
export interface Tool {
  name: string;
  /** The command line that runs the operation `args` (e.g. `["view", "v3", "base"]`). */
  argv(args: readonly string[]): string[];
  /** Environment for each timed call. */
  env?: Record<string, string>;
  /** Untimed work after a timed call (ctr: pin a view against containerd's garbage collector). */
  after?(op: string, i: number): void;
}

/** An operation by name, and its arguments for the i-th run. */
export interface Op {
  op: string;
  args(i: number): string[];
}

/**
 * The snapshot operations, in the order they run: each run i prepares `p<i>` and views `v<i>` on
 * `base` (see `makeBase`), commits `p<i>` as `c<i>`, then reads and removes those. ls at the end
 * lists 2N+1 snapshots.
 */
export const SNAPSHOT_OPS: readonly Op[] = [
  { op: "prepare", args: (i) => ["prepare", `p${i}`, "base"] },
  { op: "view", args: (i) => ["view", `v${i}`, "base"] },
  { op: "commit", args: (i) => ["commit", `c${i}`, `p${i}`] },
  { op: "mounts", args: (i) => ["mounts", "/mnt/bench", `v${i}`] },
  { op: "info", args: (i) => ["info", `c${i}`] },
  { op: "label", args: (i) => ["label", `c${i}`, "bench=1"] },
  { op: "usage", args: (i) => ["usage", `v${i}`] },
  { op: "ls", args: () => ["ls"] },
  { op: "rm", args: (i) => ["rm", `c${i}`] },
];

/**
 * Per op, in the order of `ops`, the wall times in ms of `n` runs by each of the two tools (the
 * first tool's, then the second's), and of `baseline` (a command line, e.g. `stor --version`) run
 * between them: what an op costs over start-up is read against start-up timed in the same minutes.
 * The tools take turns going first so drift hits both alike.
 */
export function measure(ops: readonly Op[], tools: readonly [Tool, Tool], n: number, baseline?: readonly string[]): Map<string, [number[], number[], number[]]> {
  const times = new Map<string, [number[], number[], number[]]>(ops.map((o) => [o.op, [[], [], []]]));
  for (const o of ops) {
    for (let i = 0; i < n; i++) {
      for (const k of i % 2 === 0 ? [0, 1] : [1, 0]) {
        const t = tools[k]!;
        times.get(o.op)![k]!.push(must(t.argv(o.args(i)), { env: t.env }).ms);
        t.after?.(o.op, i);
      }
      if (baseline) times.get(o.op)![2].push(must(baseline).ms);
    }
  }
  return times;
}

/**
 * Runs each of `steps` once for each i < n, each going first in turn: drift, and what a step
 * leaves behind for the next (a daemon's GC after a delete), hit them all alike.
 */
export function rotated(n: number, steps: readonly ((i: number) => void)[]): void {
  for (let i = 0; i < n; i++) for (let k = 0; k < steps.length; k++) steps[(i + k) % steps.length]!(i);
}

/** Makes the committed snapshot `base` with a few small files, through the tool's own mounts at `mnt`. */
export function makeBase(tool: Tool, mnt: string): void {
  must(tool.argv(["prepare", "base-a"]));
  runMountLines(must(tool.argv(["mounts", mnt, "base-a"])).stdout);
  try {
    mkdirSync(join(mnt, "etc"));
    for (let i = 0; i < 16; i++) writeFileSync(join(mnt, "etc", `file${i}`), "x".repeat(256 * (i + 1)));
  } finally {
    unmountBelow(mnt);
  }
  must(tool.argv(["commit", "base", "base-a"]));
}

/**
 * `ctr snapshots --snapshotter <snapshotter>` on `containerd`, in the namespace
 * `<namespacePrefix>-<snapshotter>`. ctr gives views no gc.root label, so its `after` pins each new
 * view with one; when containerd's GC took the view first, it makes it again, untimed, and counts
 * that in `collected.n`.
 */
export function ctrTool(o: { name: string; containerd: Containerd; namespacePrefix: string; snapshotter: string; collected: { n: number } }): Tool {
  const argv = (a: readonly string[]) => ["ctr", "-a", o.containerd.socket, "-n", `${o.namespacePrefix}-${o.snapshotter}`, "snapshots", "--snapshotter", o.snapshotter, ...a];
  return {
    name: o.name,
    argv,
    after: (op, i) => {
      if (op !== "view") return;
      for (let tries = 0; ; tries++) {
        const r = run(argv(["label", `v${i}`, "containerd.io/gc.root=bench"]));
        if (r.code === 0) return;
        if (tries > 2 || !/not found/.test(r.stderr)) throw new Error(`ctr label v${i} (${o.snapshotter}): ${r.stderr.trim()}`);
        o.collected.n++; // the GC took it between view and label: make it again, untimed
        must(argv(["view", `v${i}`, "base"]));
      }
    },
  };
}
