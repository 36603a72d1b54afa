/**
 * Section "btrfs": the btrfs snapshotter on a btrfs loop filesystem. A prepare on a committed
 * parent of ≥1 GB and ≥25k entries (btrfs, native on the same btrfs, `cp -a --reflink=always`,
 * `btrfs subvolume snapshot`); a prepare on top of a 100-deep chain; the removal of the 1 GB
 * snapshot. Printed figures, no assertions.
 */
import { dirname, join } from "node:path";
import { storOk, type Ctx } from "./context.ts";
import { must, shell } from "./proc.ts";
import { figures, fmtMs, median, table } from "./stats.ts";
import { makeLoopFs } from "./system.ts";
import { generateTree } from "./tree.ts";

/** Milliseconds `fn` takes. */
function time(fn: () => void): number {
  const t0 = performance.now();
  fn();
  return performance.now() - t0;
}

export function btrfsSection(ctx: Ctx): void {
  const reps = ctx.quick ? 3 : 7;
  const copies = ctx.quick ? 1 : 3;
  const loop = makeLoopFs(join(ctx.work, "btrfs.img"), 8 * 2 ** 30, ["mkfs.btrfs", "-q", "-f"], join(ctx.work, "btrfs"));
  const root = join(loop.mountpoint, "root");
  const s = (sn: string, ...args: string[]) => storOk(ctx, root, ["snapshot", "-s", sn, ...args]);
  const spec = { smallFiles: ctx.quick ? 25_000 : 30_000, minBytes: 1 << 30 };
  console.log(`\n== 7. btrfs: prepare on a committed parent of ${spec.minBytes >> 20} MiB+ and ${spec.smallFiles}+ files; ${reps} runs each (median) ==`);

  // The same tree, committed in each snapshotter.
  const parents: Record<string, string> = {};
  let entries = 0;
  for (const sn of ["btrfs", "native"]) {
    const m = JSON.parse(s(sn, "prepare", "--mounts", "base-a").stdout)[0] as { Source: string };
    entries = generateTree(m.Source, spec).entries;
    s(sn, "commit", "base", "base-a");
    parents[sn] = m.Source;
  }
  shell("sync");
  console.log(`parent: ${entries} entries, ${shell(`du -sh --apparent-size ${parents.btrfs}`).split("\t")[0]}`);

  const results: [string, number[]][] = [];
  const measure = (what: string, n: number, op: (i: number) => void, undo: (i: number) => void) => {
    const t: number[] = [];
    for (let i = 0; i < n; i++) {
      t.push(time(() => op(i)));
      undo(i);
    }
    results.push([what, t]);
    return median(t);
  };
  const btrfsPrepare = measure("stor -s btrfs prepare", reps, (i) => s("btrfs", "prepare", `k${i}`, "base"), (i) => s("btrfs", "rm", `k${i}`));
  const subvolSnapshot = measure(
    "btrfs subvolume snapshot",
    reps,
    // The snapshot's subvolume is <id>/sv; its tree, the mount's source, is sv/fs inside it.
    (i) => must(["btrfs", "subvolume", "snapshot", dirname(parents.btrfs!), join(loop.mountpoint, `snap${i}`)]),
    (i) => must(["btrfs", "subvolume", "delete", join(loop.mountpoint, `snap${i}`)]),
  );
  const nativePrepare = measure("stor -s native prepare (reflinks)", copies, (i) => s("native", "prepare", `k${i}`, "base"), (i) => s("native", "rm", `k${i}`));
  const reflinkCopy = measure(
    "cp -a --reflink=always",
    copies,
    (i) => must(["cp", "-a", "--reflink=always", parents.native!, join(loop.mountpoint, `cp${i}`)]),
    (i) => shell(`rm -rf ${join(loop.mountpoint, `cp${i}`)}`),
  );
  process.stdout.write(table([["operation", "median", "runs"], ...results.map(([w, t]) => [w, fmtMs(median(t)), t.map(fmtMs).join(" ")])]));
  figures.push({ section: "btrfs", what: "prepare on 1 GB parent", stor: btrfsPrepare, reference: subvolSnapshot, referenceName: "btrfs subvolume snapshot" });
  figures.push({ section: "btrfs", what: "native prepare on 1 GB parent (same btrfs)", stor: nativePrepare, reference: reflinkCopy, referenceName: "cp -a --reflink=always" });

  // A 100-deep chain, one file a layer; prepare on its top.
  const depth = 100;
  const tChain = time(() => {
    for (let i = 0; i < depth; i++) {
      const m = JSON.parse(s("btrfs", "prepare", "--mounts", `c${i}-a`, ...(i ? [`c${i - 1}`] : [])).stdout)[0] as { Source: string };
      shell(`echo ${i} > ${join(m.Source, `layer${i}.txt`)}`);
      s("btrfs", "commit", `c${i}`, `c${i}-a`);
    }
  });
  const top = measure(`prepare on a ${depth}-deep chain`, reps, (i) => s("btrfs", "prepare", `t${i}`, `c${depth - 1}`), (i) => s("btrfs", "rm", `t${i}`));
  const bottom = measure("prepare on its first layer", reps, (i) => s("btrfs", "prepare", `b${i}`, "c0"), (i) => s("btrfs", "rm", `b${i}`));
  console.log(`built a ${depth}-layer btrfs chain in ${fmtMs(tChain)}; prepare on top ${fmtMs(top)}, on the first layer ${fmtMs(bottom)}`);
  figures.push({ section: "btrfs", what: `prepare on a ${depth}-deep chain`, stor: top, reference: bottom, referenceName: "prepare on layer 1" });

  // Removing the 1 GB committed snapshot: a subvolume destroy against native's rm -rf.
  const rmBtrfs = time(() => s("btrfs", "rm", "base"));
  const rmNative = time(() => s("native", "rm", "base"));
  console.log(`rm of the 1 GB snapshot: btrfs ${fmtMs(rmBtrfs)}, native ${fmtMs(rmNative)}`);
  figures.push({ section: "btrfs", what: "rm of a 1 GB snapshot", stor: rmBtrfs, reference: rmNative, referenceName: "native rm" });
}
