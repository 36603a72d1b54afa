/**
 * Section "snapshots": per-operation latency of whole `stor snapshot` processes against
 * `ctr snapshots` talking to a containerd of our own, for the native and overlay snapshotters.
 */
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import type { Containerd } from "../containerd.ts";
import { storArgv, type Ctx } from "./context.ts";
import { ctrTool, makeBase, measure, SNAPSHOT_OPS, type Tool } from "./latency.ts";
import { must } from "./proc.ts";
import { figures, fmtMs, fmtRatio, median, percentile, table } from "./stats.ts";

const TARGET = 0.5;

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
    const collected = { n: 0 };
    const ctr = ctrTool({ name: "ctr", containerd, namespacePrefix: "bench", snapshotter: ctrName, collected });
    makeBase(storTool, mnt);
    makeBase(ctr, mnt);

    const rows = [["op", "stor p50", "stor p90", "ctr p50", "ctr p90", "ratio", "target"]];
    for (const [op, [st, ct]] of measure(SNAPSHOT_OPS, [storTool, ctr], ctx.n)) {
      const f = { section: `snapshots ${s}`, what: op, stor: median(st), reference: median(ct), referenceName: "ctr", target: TARGET };
      figures.push(f);
      rows.push([op, fmtMs(f.stor), fmtMs(percentile(st, 90)), fmtMs(f.reference), fmtMs(percentile(ct, 90)), fmtRatio(f.stor / f.reference), `≤${TARGET}×`]);
    }
    console.log(`\n-s ${s} vs ctr --snapshotter ${ctrName} (ls lists ${2 * ctx.n + 1} snapshots at the end)`);
    if (collected.n) console.log(`  (containerd's GC took ${collected.n} unpinned ctr views before they were labelled; made again, untimed)`);
    process.stdout.write(table(rows));
  }
  console.log("note: ctr rm only deletes metadata; containerd removes the directory later in its GC. stor rm removes it in the call.");
}
