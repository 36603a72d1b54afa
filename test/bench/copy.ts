/**
 * Section "copy": `stor snapshot -s native prepare` of a large committed parent against `cp -a`
 * of the same tree on a fresh ext4 loop device, and against `cp -a --reflink=always` on a fresh
 * XFS loop device made with reflink.
 */
import { mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { storOk, type Ctx } from "./context.ts";
import { must, shell } from "./proc.ts";
import { figures, fmtBytes, fmtMs, fmtRatio, median, table } from "./stats.ts";
import { findBin, fsType, makeLoopFs, settle, usedBytes } from "./system.ts";
import { generateTree, type TreeSpec, type TreeStats } from "./tree.ts";

/** The source directory of a native view: the committed snapshot's own directory. */
function committedDir(ctx: Ctx, root: string, name: string): string {
  storOk(ctx, root, ["snapshot", "-s", "native", "view", `${name}-view`, name]);
  const line = storOk(ctx, root, ["snapshot", "-s", "native", "mounts", "/x", `${name}-view`]).stdout.trim();
  const m = /^mount -t bind (\S+) \/x -o /.exec(line);
  if (!m) throw new Error(`unexpected mounts output: ${line}`);
  return m[1]!;
}

/** The parent: prepared empty, filled through its directory, committed as `big`. */
function makeParent(ctx: Ctx, root: string, spec: TreeSpec): { src: string; stats: TreeStats; genMs: number } {
  storOk(ctx, root, ["snapshot", "-s", "native", "prepare", "big-a"]);
  const line = storOk(ctx, root, ["snapshot", "-s", "native", "mounts", "/x", "big-a"]).stdout.trim();
  const m = /^mount -t bind (\S+) \/x -o /.exec(line);
  if (!m) throw new Error(`unexpected mounts output: ${line}`);
  const t0 = performance.now();
  const stats = generateTree(m[1]!, spec);
  shell("sync");
  const genMs = performance.now() - t0;
  storOk(ctx, root, ["snapshot", "-s", "native", "commit", "big", "big-a"]);
  return { src: committedDir(ctx, root, "big"), stats, genMs };
}

/** Entries and apparent bytes of a tree (hardlinked data counted once), to check a copy is whole. */
function census(dir: string): string {
  const entries = shell(`find '${dir}' -mindepth 1 | wc -l`).trim();
  const bytes = shell(`du -s --apparent-size -B1 '${dir}' | cut -f1`).trim();
  return `${entries} entries, ${bytes} bytes`;
}

/** The cp that runs. */
const CP = findBin("cp")!;

interface CopyCase {
  fs: string;
  root: string;
  cpDst: string;
  cpArgs: string[];
  refName: string;
  target: number;
  /** Report space used by each copy (a reflink copy uses almost none). */
  space: boolean;
}

function runCase(ctx: Ctx, c: CopyCase, spec: TreeSpec): void {
  mkdirSync(c.root, { recursive: true });
  mkdirSync(c.cpDst, { recursive: true });
  const { src, stats, genMs } = makeParent(ctx, c.root, spec);
  console.log(
    `\n${c.fs} (${fsType(c.root)} at ${c.root}): parent of ${stats.entries} entries — ${stats.files} files (${stats.largeFiles} large), ` +
      `${stats.dirs} dirs, ${stats.symlinks} symlinks, ${stats.hardlinks} hardlinks, ${stats.special} fifos — ${fmtBytes(stats.bytes)}; built in ${fmtMs(genMs)}`,
  );
  const srcCensus = census(src);
  const t = { stor: [] as number[], cp: [] as number[] };
  const space: Record<string, number> = {};
  for (let r = 0; r < ctx.copyRuns; r++) {
    const order = r % 2 === 0 ? (["stor", "cp"] as const) : (["cp", "stor"] as const);
    for (const tool of order) {
      // The tree out of the cache (unless --warm); both programs in it (see settle).
      settle(ctx.warm, [], [ctx.stor, CP]);
      const before = c.space && r === 0 ? usedBytes(c.root) : 0;
      let copyDir: string;
      if (tool === "stor") {
        t.stor.push(storOk(ctx, c.root, ["snapshot", "-s", "native", "prepare", `copy${r}`, "big"]).ms);
        const line = storOk(ctx, c.root, ["snapshot", "-s", "native", "mounts", "/x", `copy${r}`]).stdout.trim();
        copyDir = /^mount -t bind (\S+) /.exec(line)![1]!;
      } else {
        copyDir = join(c.cpDst, `copy${r}`);
        t.cp.push(must([CP, ...c.cpArgs, src, copyDir]).ms);
      }
      if (c.space && r === 0) space[tool] = usedBytes(c.root) - before;
      if (r === 0) {
        const got = census(copyDir);
        if (got !== srcCensus) console.log(`  WARNING: ${tool} copy differs from the parent: ${got} vs ${srcCensus}`);
      }
    }
  }
  // Removed only now, so every copy is made on a filesystem nothing was removed from. ext4 without
  // a journal, as this VM's root is, does not reuse an inode freed in the last minute (six while
  // its block is unwritten: recently_deleted in its allocator) and steps past each such one: on
  // the root, a copy made right after the removal of one spent 42% of its samples there (stor) or
  // 25% (cp), per perf.
  for (let r = 0; r < ctx.copyRuns; r++) {
    storOk(ctx, c.root, ["snapshot", "-s", "native", "rm", `copy${r}`]);
    rmSync(join(c.cpDst, `copy${r}`), { recursive: true, force: true });
  }
  const f = { section: "copy", what: `native prepare, ${c.fs}`, stor: median(t.stor), reference: median(t.cp), referenceName: c.refName, target: c.target };
  figures.push(f);
  const rows = [
    ["tool", "median", "runs", "ratio", "target"],
    [`stor prepare`, fmtMs(f.stor), t.stor.map(fmtMs).join(", "), fmtRatio(f.stor / f.reference), `≤${c.target}×`],
    [c.refName, fmtMs(f.reference), t.cp.map(fmtMs).join(", "), "", ""],
  ];
  process.stdout.write(table(rows));
  if (c.space) console.log(`  space used by one copy: stor ${fmtBytes(space.stor ?? 0)}, ${c.refName} ${fmtBytes(space.cp ?? 0)} (a shared-extent copy uses almost none)`);
}

export function copySection(ctx: Ctx): void {
  const spec: TreeSpec = ctx.quick ? { smallFiles: 3000, minBytes: 64 << 20 } : { smallFiles: 22000, minBytes: 560 << 20 };
  console.log(
    `\n== 2. Native prepare (full copy of the parent) vs cp, ${ctx.copyRuns} runs each, ${ctx.warm ? "warm page cache" : "page cache dropped before each run"}; writeback after the copy not included ==`,
  );
  // A fresh ext4 of its own, as mkfs.ext4 makes it (with a journal), its inode tables written
  // now rather than by a kernel thread during the runs: the parent and every copy fit, kept until
  // the end (see runCase).
  const ext4Size = Math.max(2 * 2 ** 30, Math.ceil((2 * ctx.copyRuns + 2) * spec.minBytes * 1.25));
  const ext4 = makeLoopFs(join(ctx.work, "ext4.img"), ext4Size, ["mkfs.ext4", "-q", "-F", "-E", "lazy_itable_init=0,lazy_journal_init=0"], join(ctx.work, "ext4"));
  console.log(`\next4: ${fmtBytes(ext4Size)} image on ${ext4.device}, mkfs.ext4 (journaled, inode tables initialized)`);
  runCase(ctx, { fs: "ext4", root: join(ext4.mountpoint, "stor"), cpDst: join(ext4.mountpoint, "cp"), cpArgs: ["-a"], refName: "cp -a", target: 1.1, space: false }, spec);

  const imageSize = Math.max(2 * 2 ** 30, spec.minBytes * 4);
  const loop = makeLoopFs(join(ctx.work, "xfs.img"), imageSize, ["mkfs.xfs", "-q", "-f", "-m", "reflink=1"], join(ctx.work, "xfs"));
  console.log(`\nXFS: ${fmtBytes(imageSize)} image on ${loop.device}, mkfs.xfs -m reflink=1`);
  runCase(
    ctx,
    { fs: "XFS reflink", root: join(loop.mountpoint, "stor"), cpDst: join(loop.mountpoint, "cp"), cpArgs: ["-a", "--reflink=always"], refName: "cp -a --reflink=always", target: 1.1, space: true },
    spec,
  );
}
