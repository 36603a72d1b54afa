/**
 * Section "snapshots": per-operation latency of whole `stor snapshot` processes against
 * `ctr snapshots` talking to a containerd of our own, for the native and overlay snapshotters.
 */
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import type { Containerd } from "../containerd.ts";
import { storArgv, type Ctx } from "./context.ts";
import { contractInfoFloor, createFloor, helloFloor, infoFloor, removeFloor } from "./floors.ts";
import { ctrTool, makeBase, measure, rotated, SNAPSHOT_OPS, type Tool } from "./latency.ts";
import { must, parallel, runAsync } from "./proc.ts";
import { figures, fmtMs, fmtRatio, median, percentile, table } from "./stats.ts";

const TARGET = 1.0; // issue 13: every snapshot command at most as long as ctr's

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

    const rows = [["op", "stor p50", "stor p90", "ctr p50", "ctr p90", "ratio", "target", "over --version"]];
    for (const [op, [st, ct, version]] of measure(SNAPSHOT_OPS, [storTool, ctr], ctx.n, [ctx.stor, "--version"])) {
      const f = { section: `snapshots ${s}`, what: op, stor: median(st), reference: median(ct), referenceName: "ctr", target: TARGET };
      figures.push(f);
      const over = f.stor - median(version);
      figures.push({ section: `snapshots ${s} over --version`, what: op, stor: over });
      rows.push([op, fmtMs(f.stor), fmtMs(percentile(st, 90)), fmtMs(f.reference), fmtMs(percentile(ct, 90)), fmtRatio(f.stor / f.reference), `≤${TARGET}×`, `+${fmtMs(over)}`]);
    }
    console.log(`\n-s ${s} vs ctr --snapshotter ${ctrName} (ls lists ${2 * ctx.n + 1} snapshots at the end; over --version: against stor --version timed between them)`);
    if (collected.n) console.log(`  (containerd's GC took ${collected.n} unpinned ctr views before they were labelled; made again, untimed)`);
    process.stdout.write(table(rows));
    if (s === "overlay") floors(ctx, root, ctr);
  }
  await manySnapshots(ctx, containerd);
  console.log("note: ctr rm only deletes metadata; containerd removes the directory later in its GC. stor rm removes it in the call.");
}

/** What an overlay snapshot prepared on a parent holds: the floors make and remove the same. */
const OVERLAY_DIRS = ["fs", "work"];

/**
 * The floors under stor's figures (see floors.ts), timed interleaved with stor and ctr doing the
 * same: start-up, `snapshot info`, `snapshot prepare` (a fresh key each run) and the `rm` of it.
 */
function floors(ctx: Ctx, root: string, ctr: Tool): void {
  const dir = join(ctx.work, "floors");
  const argv: Record<string, (i: number) => string[]> = {
    hello: helloFloor(dir),
    "minimal info": infoFloor(dir, root),
    "contract info": contractInfoFloor(dir, root),
    "minimal prepare": createFloor(dir, "prepare", OVERLAY_DIRS, false),
    "minimal rm": removeFloor(dir, "prepare", OVERLAY_DIRS),
    "stor --version": () => [ctx.stor, "--version"],
    "stor info": () => storArgv(ctx, root, ["snapshot", "-s", "overlay", "info", "base"]),
    // JavaScriptCore starts a thread that makes heap blocks resident ahead of use once a heap
    // passes 64 of them (16 KiB each), which stor's commands do and the floors do not. The same
    // binary with it on and off, the option given the same way to both (a JSC option set from the
    // environment also changes what the runtime does at start-up).
    "stor info, warm-up on": () => ["env", "BUN_JSC_useWarmUpMarkedBlocks=1", ...storArgv(ctx, root, ["snapshot", "-s", "overlay", "info", "base"])],
    "stor info, warm-up off": () => ["env", "BUN_JSC_useWarmUpMarkedBlocks=0", ...storArgv(ctx, root, ["snapshot", "-s", "overlay", "info", "base"])],
    "stor prepare": (i) => storArgv(ctx, root, ["snapshot", "-s", "overlay", "prepare", `floor-${i}`, "base"]),
    "stor rm": (i) => storArgv(ctx, root, ["snapshot", "-s", "overlay", "rm", `floor-${i}`]),
    "ctr --version": () => ["ctr", "--version"],
    "ctr info": () => ctr.argv(["info", "base"]),
    "ctr prepare": (i) => ctr.argv(["prepare", `floor-${i}`, "base"]),
    "ctr rm": (i) => ctr.argv(["rm", `floor-${i}`]),
  };
  const times = Object.fromEntries(Object.keys(argv).map((k) => [k, [] as number[]]));
  // Each rm runs right after the prepare of its key; the groups take turns going first.
  const groups = [["hello"], ["minimal info"], ["contract info"], ["minimal prepare", "minimal rm"], ["stor --version"], ["stor info"], ["stor info, warm-up on"], ["stor info, warm-up off"], ["stor prepare", "stor rm"], ["ctr --version"], ["ctr info"], ["ctr prepare", "ctr rm"]];
  rotated(
    ctx.n,
    groups.map((g) => (i: number) => {
      for (const k of g) times[k]!.push(must(argv[k]!(i)).ms);
    }),
  );
  const m = Object.fromEntries(Object.entries(times).map(([k, t]) => [k, median(t)])) as Record<keyof typeof argv, number>;
  console.log(
    `\nfloors (compiled as stor is; N=${ctx.n} each, interleaved): Bun start-up (a program that prints a line) ${fmtMs(m.hello!)}; ` +
      `a minimal info ${fmtMs(m["minimal info"]!)} (+${fmtMs(m["minimal info"]! - m.hello!)} over it), the same with cac's parse and the config file read ` +
      `${fmtMs(m["contract info"]!)} (+${fmtMs(m["contract info"]! - m.hello!)}), a minimal crash-safe prepare ` +
      `${fmtMs(m["minimal prepare"]!)} (+${fmtMs(m["minimal prepare"]! - m.hello!)}), a minimal crash-safe rm ${fmtMs(m["minimal rm"]!)} ` +
      `(+${fmtMs(m["minimal rm"]! - m.hello!)}); stor --version ${fmtMs(m["stor --version"]!)}, info ${fmtMs(m["stor info"]!)}, ` +
      `prepare ${fmtMs(m["stor prepare"]!)}, rm ${fmtMs(m["stor rm"]!)}; ctr --version ${fmtMs(m["ctr --version"]!)}, ` +
      `info ${fmtMs(m["ctr info"]!)}, prepare ${fmtMs(m["ctr prepare"]!)}, rm ${fmtMs(m["ctr rm"]!)}; ` +
      `stor info with JSC's heap warm-up thread on ${fmtMs(m["stor info, warm-up on"]!)}, off ${fmtMs(m["stor info, warm-up off"]!)} (both through env)`,
  );
  const push = (what: string, stor: string, reference: string) =>
    figures.push({ section: "floors", what, stor: m[stor]!, reference: m[reference]!, referenceName: reference });
  push("Bun start-up (hello)", "hello", "ctr --version");
  push("minimal info program", "minimal info", "ctr info");
  push("minimal info program with cac and the config file", "contract info", "ctr info");
  push("stor info, heap warm-up thread off (against on)", "stor info, warm-up off", "stor info, warm-up on");
  push("minimal prepare program", "minimal prepare", "ctr prepare");
  push("stor info", "stor info", "ctr info");
  push("stor prepare", "stor prepare", "ctr prepare");
  push("minimal rm program", "minimal rm", "ctr rm");
  push("stor rm", "stor rm", "ctr rm");
  push("stor --version", "stor --version", "hello");
}

/**
 * `snapshot ls` with many snapshots against `ctr snapshots ls` with as many: each tool makes them
 * with 4 processes at a time (timed, for reference), then lists them, interleaved.
 */
async function manySnapshots(ctx: Ctx, containerd: Containerd): Promise<void> {
  const n = ctx.manySnapshots;
  const root = join(ctx.work, "snap-many");
  const stor = (a: readonly string[]) => storArgv(ctx, root, ["snapshot", "-s", "overlay", ...a]);
  const ctr = (a: readonly string[]) => ["ctr", "-a", containerd.socket, "-n", "bench-many", "snapshots", "--snapshotter", "overlayfs", ...a];
  const keys = Array.from({ length: n }, (_, i) => `many-${i}`);
  const made: Record<string, number> = {};
  for (const [name, argv] of [["stor", stor], ["ctr", ctr]] as const) {
    const t0 = performance.now();
    await parallel(keys, 4, async (k) => {
      const r = await runAsync(argv(["prepare", k]));
      if (r.code !== 0) throw new Error(`${name} prepare ${k}: ${r.stderr.trim()}`);
    });
    made[name] = performance.now() - t0;
  }
  const times = { stor: [] as number[], ctr: [] as number[] };
  for (let i = 0; i < 11; i++) {
    for (const [name, argv] of i % 2 ? ([["ctr", ctr], ["stor", stor]] as const) : ([["stor", stor], ["ctr", ctr]] as const)) {
      const r = must(argv(["ls"]));
      if (i === 0 && r.stdout.trim().split("\n").length !== n + 1) throw new Error(`${name} ls listed ${r.stdout.trim().split("\n").length - 1} of ${n}`);
      times[name].push(r.ms);
    }
  }
  const f = { section: "snapshots", what: `ls, ${n} snapshots`, stor: median(times.stor), reference: median(times.ctr), referenceName: "ctr", target: 0.5 };
  figures.push(f);
  console.log(
    `\nls of ${n} overlay snapshots (made with 4 processes at a time: stor ${fmtMs(made.stor!)}, ctr ${fmtMs(made.ctr!)}): ` +
      `stor ${fmtMs(f.stor)}, ctr ${fmtMs(f.reference)}, ${fmtRatio(f.stor / f.reference)} (target ≤0.5×)`,
  );
}
