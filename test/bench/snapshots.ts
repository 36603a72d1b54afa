/**
 * Section "snapshots": per-operation latency of whole `stor snapshot` processes against
 * `ctr snapshots` talking to a containerd of our own, for the native and overlay snapshotters.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Containerd } from "../containerd.ts";
import { storArgv, type Ctx } from "./context.ts";
import { must, run } from "./proc.ts";
import { figures, fmtMs, fmtRatio, median, percentile, table } from "./stats.ts";
import { runMountLines, unmountBelow } from "./system.ts";

const TARGET = 0.5;

interface Tool {
  name: string;
  argv(args: readonly string[]): string[];
  /** Untimed work after a timed call (ctr: pin a view against containerd's garbage collector). */
  after?(op: string, i: number): void;
}

interface Op {
  op: string;
  args(i: number): string[];
}

const OPS: Op[] = [
  { op: "prepare", args: (i) => ["prepare", `p${i}`, "base"] },
  { op: "commit", args: (i) => ["commit", `c${i}`, `p${i}`] },
  { op: "view", args: (i) => ["view", `v${i}`, "base"] },
  { op: "mounts", args: (i) => ["mounts", "/mnt/bench", `v${i}`] },
  { op: "info", args: (i) => ["info", `c${i}`] },
  { op: "ls", args: () => ["ls"] },
  { op: "rm", args: (i) => ["rm", `c${i}`] },
];

/** A committed `base` with a few small files, made through the tool's own mounts. */
function makeBase(tool: Tool, mnt: string): void {
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

/** Median and p90 of N runs of each op for both tools, interleaved so drift hits both alike. */
function measure(tools: readonly Tool[], n: number): Map<string, Map<string, number[]>> {
  const times = new Map<string, Map<string, number[]>>();
  for (const t of tools) times.set(t.name, new Map(OPS.map((o) => [o.op, []])));
  for (const o of OPS) {
    for (let i = 0; i < n; i++) {
      const order = i % 2 === 0 ? tools : [...tools].reverse();
      for (const t of order) {
        const r = must(t.argv(o.args(i)));
        times.get(t.name)!.get(o.op)!.push(r.ms);
        t.after?.(o.op, i);
      }
    }
  }
  return times;
}

export async function snapshotsSection(ctx: Ctx, containerd: Containerd): Promise<void> {
  console.log(`\n== 1. Snapshot operations: whole-process latency, N=${ctx.n} each (median, p90) ==`);
  // Process start-up alone, for reading the figures below.
  const startup = { stor: [] as number[], ctr: [] as number[] };
  for (let i = 0; i < ctx.n; i++) {
    startup.stor.push(must([ctx.stor, "--version"]).ms);
    startup.ctr.push(must(["ctr", "--version"]).ms);
  }
  console.log(`process start-up (--version, no work): stor ${fmtMs(median(startup.stor))}, ctr ${fmtMs(median(startup.ctr))}`);
  figures.push({ section: "snapshots", what: "start-up: --version", stor: median(startup.stor), reference: median(startup.ctr), referenceName: "ctr" });

  for (const [s, ctrName] of [
    ["native", "native"],
    ["overlay", "overlayfs"],
  ] as const) {
    const root = join(ctx.work, `snap-${s}`);
    const mnt = join(ctx.work, `snap-${s}-mnt`);
    mkdirSync(root, { recursive: true });
    mkdirSync(mnt, { recursive: true });
    const storTool: Tool = { name: "stor", argv: (a) => storArgv(ctx, root, ["snapshot", "-s", s, ...a]) };
    const ctrArgv = (a: readonly string[]) => ["ctr", "-a", containerd.socket, "-n", `bench-${s}`, "snapshots", "--snapshotter", ctrName, ...a];
    let collected = 0;
    const ctrTool: Tool = {
      name: "ctr",
      argv: ctrArgv,
      // ctr gives views no gc.root label; pin them so containerd's GC does not take them mid-run.
      after: (op, i) => {
        if (op !== "view") return;
        for (let tries = 0; ; tries++) {
          const r = run(ctrArgv(["label", `v${i}`, "containerd.io/gc.root=bench"]));
          if (r.code === 0) return;
          if (tries > 2 || !/not found/.test(r.stderr)) throw new Error(`ctr label v${i}: ${r.stderr.trim()}`);
          collected++; // the GC took it between view and label: make it again, untimed
          must(ctrArgv(["view", `v${i}`, "base"]));
        }
      },
    };
    makeBase(storTool, mnt);
    makeBase(ctrTool, mnt);
    const times = measure([storTool, ctrTool], ctx.n);

    const rows = [["op", "stor p50", "stor p90", "ctr p50", "ctr p90", "ratio", "target"]];
    for (const o of OPS) {
      const st = times.get("stor")!.get(o.op)!;
      const ct = times.get("ctr")!.get(o.op)!;
      const f = { section: `snapshots ${s}`, what: o.op, stor: median(st), reference: median(ct), referenceName: "ctr", target: TARGET };
      figures.push(f);
      rows.push([o.op, fmtMs(f.stor), fmtMs(percentile(st, 90)), fmtMs(f.reference), fmtMs(percentile(ct, 90)), fmtRatio(f.stor / f.reference), `≤${TARGET}×`]);
    }
    console.log(`\n-s ${s} vs ctr --snapshotter ${ctrName} (ls lists ${2 * ctx.n + 1} snapshots at the end)`);
    if (collected) console.log(`  (containerd's GC took ${collected} unpinned ctr views before they were labelled; made again, untimed)`);
    process.stdout.write(table(rows));
  }
  console.log("note: ctr rm only deletes metadata; containerd removes the directory later in its GC. stor rm removes it in the call.");
}
