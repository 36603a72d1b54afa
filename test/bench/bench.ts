/**
 * stor's benchmark (`bun run bench`): prints figures against containerd's `ctr snapshots`, `cp`
 * and `docker volume`, and a closing summary of every ratio against its target. It never asserts
 * timings. It installs the Debian packages it needs, starts its own daemons under a temporary
 * directory and removes everything (mounts, loop devices, daemons, files) however it ends.
 *
 *   bun test/bench/bench.ts [--quick] [--only snapshots,copy,overlay,volumes,serve,layers,btrfs] [--n N]
 *       [--runs N] [--volumes N] [--snapshots N] [--warm] [--dir DIR] [--keep] [--json FILE]
 *
 * The binary measured is STOR_BIN, else dist/stor.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { btrfsSection } from "./btrfs.ts";
import { chainsSection } from "./chains.ts";
import type { Ctx } from "./context.ts";
import { copySection } from "./copy.ts";
import { startContainerd } from "./daemons.ts";
import { issue13Table } from "./issue13.ts";
import { layersSection } from "./layers.ts";
import { must, run, shell } from "./proc.ts";
import { serveSection } from "./serve.ts";
import { snapshotsSection } from "./snapshots.ts";
import { figures, fmtMs, fmtRatio, fmtValue, ratioOf, table, verdict } from "./stats.ts";
import { atCleanup, cleanup, cleanupOnSignals, ensurePackages, findBin, freshCopy, fsType, loadLine, pageFaultMicros, unmountBelow } from "./system.ts";
import { volumesSection } from "./volumes.ts";

const SECTIONS = ["snapshots", "copy", "overlay", "volumes", "serve", "layers", "btrfs"] as const;
type Section = (typeof SECTIONS)[number];

const USAGE = `usage: bun test/bench/bench.ts [options]   (binary: STOR_BIN, default dist/stor)
  --quick            fewer iterations and smaller trees (a few minutes)
  --only LIST        sections, comma-separated: ${SECTIONS.join(",")}
  --n N              processes per operation in the latency sections (default 50, quick 20)
  --runs N           copy runs per tool and filesystem (default 3, quick 2)
  --volumes N        volumes for the "many volumes" figures (default 10000, quick 1000)
  --snapshots N      snapshots for the "ls of many snapshots" figure (default 10000, quick 1000)
  --warm             keep the page cache between copy runs (default: drop it before each)
  --dir DIR          where the work directory goes (default /var/tmp; must be the ext4 root)
  --keep             leave the work directory (daemons and mounts are still stopped)
  --json FILE        also write the figures as JSON
`;

interface Options {
  quick: boolean;
  only: Set<Section>;
  n?: number;
  runs?: number;
  volumes?: number;
  snapshots?: number;
  warm: boolean;
  dir: string;
  keep: boolean;
  json?: string;
}

function parseArgs(argv: readonly string[]): Options {
  const o: Options = { quick: false, only: new Set(SECTIONS), warm: false, dir: "/var/tmp", keep: false };
  const num = (flag: string, v: string | undefined) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw new Error(`${flag} needs a positive integer`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i]!.includes("=") ? (argv[i]!.split(/=(.*)/s) as [string, string]) : [argv[i]!, undefined];
    const value = () => inline ?? argv[++i];
    switch (flag) {
      case "--quick":
        o.quick = true;
        break;
      case "--only": {
        const list = (value() ?? "").split(",").filter(Boolean);
        const bad = list.filter((s) => !(SECTIONS as readonly string[]).includes(s));
        if (bad.length || !list.length) throw new Error(`--only: unknown section ${bad.join(",") || "(none)"}; sections: ${SECTIONS.join(",")}`);
        o.only = new Set(list as Section[]);
        break;
      }
      case "--n":
        o.n = num(flag, value());
        break;
      case "--runs":
        o.runs = num(flag, value());
        break;
      case "--volumes":
        o.volumes = num(flag, value());
        break;
      case "--snapshots":
        o.snapshots = num(flag, value());
        break;
      case "--warm":
        o.warm = true;
        break;
      case "--dir":
        o.dir = value() ?? "";
        break;
      case "--keep":
        o.keep = true;
        break;
      case "--json":
        o.json = value();
        break;
      case "-h":
      case "--help":
        process.stdout.write(USAGE);
        process.exit(0);
      default:
        throw new Error(`unknown option ${flag}\n${USAGE}`);
    }
  }
  return o;
}

function summary(): void {
  console.log("\n== Summary: stor against its reference (ratio = stor / reference; target = the most stor may take) ==");
  const rows = [["section", "figure", "stor", "reference", "ratio", "target", "verdict"]];
  for (const f of figures) {
    const ref = f.reference === undefined ? "—" : `${fmtMs(f.reference)} (${f.referenceName})`;
    rows.push([
      f.section,
      f.what,
      fmtValue(f),
      ref,
      fmtRatio(ratioOf(f)),
      f.target === undefined ? "—" : `≤${f.target}×`,
      f.note ? `${verdict(f)}: ${f.note.length > 90 ? `${f.note.slice(0, 87)}...` : f.note}` : verdict(f),
    ]);
  }
  process.stdout.write(table(rows));
  const withTarget = figures.filter((f) => f.target !== undefined && Number.isFinite(ratioOf(f)));
  const met = withTarget.filter((f) => verdict(f) === "meets").length;
  console.log(`${met} of ${withTarget.length} targets met. ${loadLine()}.`);
}

async function main(): Promise<number> {
  cleanupOnSignals();
  const opts = parseArgs(process.argv.slice(2));
  if (process.getuid?.() !== 0) throw new Error("the benchmark mounts filesystems and starts daemons: run it as root");
  const storBin = resolve(process.env.STOR_BIN ?? join(import.meta.dir, "../../dist/stor"));
  if (!existsSync(storBin)) throw new Error(`${storBin} does not exist (bun run build, or set STOR_BIN)`);

  const ctx: Ctx = {
    stor: storBin,
    config: "",
    work: "",
    quick: opts.quick,
    n: opts.n ?? (opts.quick ? 20 : 50),
    copyRuns: opts.runs ?? (opts.quick ? 2 : 3),
    warm: opts.warm,
    manyVolumes: opts.volumes ?? (opts.quick ? 1000 : 10_000),
    manySnapshots: opts.snapshots ?? (opts.quick ? 1000 : 10_000),
  };

  const need: { pkg: string; bin: string }[] = [];
  if (opts.only.has("snapshots")) need.push({ pkg: "containerd", bin: "containerd" });
  if (opts.only.has("copy")) need.push({ pkg: "xfsprogs", bin: "mkfs.xfs" });
  if (opts.only.has("btrfs")) need.push({ pkg: "btrfs-progs", bin: "mkfs.btrfs" });
  ensurePackages(need); // docker.io only once the volume section knows stor has volumes

  mkdirSync(opts.dir, { recursive: true });
  ctx.work = mkdtempSync(join(opts.dir, "stor-bench-"));
  atCleanup(`remove ${ctx.work}`, () => {
    unmountBelow(ctx.work);
    if (opts.keep) console.log(`bench: kept ${ctx.work}`);
    else rmSync(ctx.work, { recursive: true, force: true });
  });
  ctx.config = join(ctx.work, "stor.ini");
  writeFileSync(ctx.config, "");
  // stor and ctr run from fresh copies, so neither starts with the other's page-cache state (see
  // freshCopy); made again before each section, as a section may drop the caches (copy, layers).
  const bin = join(ctx.work, "bin");
  const ctrBin = findBin("ctr"); // the installed one, found before PATH names the copy
  const freshBinaries = () => {
    ctx.stor = freshCopy(bin, storBin);
    if (ctrBin) freshCopy(bin, ctrBin);
  };
  freshBinaries();
  if (ctrBin) process.env.PATH = `${bin}:${process.env.PATH}`;

  const started = performance.now();
  console.log(`stor benchmark — ${new Date().toISOString()}${ctx.quick ? " (quick)" : ""}`);
  console.log(`binary ${storBin}: ${must([storBin, "--version"]).stdout.trim()}; bun ${Bun.version}; stor, ctr and docker run from fresh copies in ${bin}`);
  console.log(
    `kernel ${must(["uname", "-r"]).stdout.trim()}, ${navigator.hardwareConcurrency} CPUs; a page's first touch ${pageFaultMicros().toFixed(2)} µs; work dir ${ctx.work} (${fsType(ctx.work)}); ${loadLine()}`,
  );
  if (opts.only.has("snapshots")) console.log(run(["containerd", "--version"]).stdout.trim());

  const sections: [Section, () => Promise<void> | void][] = [
    [
      "snapshots",
      async () => {
        const containerd = await startContainerd(join(ctx.work, "containerd"));
        try {
          await snapshotsSection(ctx, containerd);
        } finally {
          await containerd.stop();
        }
      },
    ],
    ["copy", () => copySection(ctx)],
    ["overlay", () => chainsSection(ctx)],
    ["volumes", () => volumesSection(ctx)],
    ["serve", () => serveSection(ctx)],
    ["layers", () => layersSection(ctx)],
    ["btrfs", () => btrfsSection(ctx)],
  ];
  let failed = 0;
  try {
    for (const [name, fn] of sections) {
      if (!opts.only.has(name)) continue;
      freshBinaries();
      // What the section before left dirty is written out first (the copies too): a latency section
      // after the copy section otherwise measured fsyncs queued behind hundreds of MiB of writeback.
      shell("sync");
      await Bun.sleep(2000);
      console.log(`\n(section ${name} starts: ${loadLine()})`);
      const t0 = performance.now();
      try {
        await fn();
      } catch (err) {
        failed++;
        const msg = err instanceof Error ? err.message : String(err);
        console.log(`\nsection ${name} FAILED: ${msg}`);
        figures.push({ section: name, what: "section failed", stor: Number.NaN, note: msg.split("\n")[0] });
      }
      console.log(`(section ${name}: ${fmtMs(performance.now() - t0)})`);
    }
  } finally {
    summary();
    issue13Table();
    if (opts.json) writeFileSync(opts.json, JSON.stringify({ date: new Date().toISOString(), quick: ctx.quick, figures }, null, 2) + "\n");
    console.log(`total ${fmtMs(performance.now() - started)}`);
    await cleanup();
  }
  return failed ? 1 : 0;
}

try {
  process.exitCode = await main();
} catch (err) {
  console.error(`bench: ${err instanceof Error ? err.message : String(err)}`);
  await cleanup();
  process.exitCode = 2;
}
