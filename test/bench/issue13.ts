/**
 * The table of issue 13 ("Speed to the floor"): its rows as measured before (stor c5b84b5, quiet
 * machine, load 0.6) next to this run's figures, each against the issue's target. Rows whose
 * figures this run did not measure (a section left out) say so.
 */
import { figures, fmtMs, fmtRatio, ratioOf, table, type Figure } from "./stats.ts";
import { loadLine } from "./system.ts";

const find = (section: string, what: string | RegExp): Figure | undefined =>
  figures.find((f) => f.section === section && (typeof what === "string" ? f.what === what : what.test(f.what)) && Number.isFinite(f.stor));

/** `lo–hi` of the ratios of `fs`, or "—". */
function ratioRange(fs: (Figure | undefined)[]): { text: string; max: number } {
  const rs = fs.filter((f): f is Figure => f !== undefined).map(ratioOf).filter(Number.isFinite);
  if (rs.length === 0) return { text: "—", max: Number.NaN };
  const lo = Math.min(...rs);
  const hi = Math.max(...rs);
  return { text: lo === hi ? fmtRatio(lo) : `${lo.toFixed(2)}–${hi.toFixed(2)}×`, max: hi };
}

const verdict = (value: number, limit: number) => (!Number.isFinite(value) ? "not measured" : value <= limit ? "meets" : "MISSES");

/** Prints the issue's table with this run's figures. */
export function issue13Table(): void {
  const rows = [["row", "before (c5b84b5)", "now", "target", "verdict"]];
  const startup = find("snapshots", "start-up: --version");
  rows.push(["start-up (stor --version / ctr -v)", "0.98×", startup ? fmtRatio(ratioOf(startup)) : "—", "—", "info"]);
  // The floors (floors.ts): what the runtime alone, and the least an info, a crash-safe prepare,
  // rm and volume create must do, cost against ctr's and docker's.
  for (const [what, label] of [
    ["Bun start-up (hello)", "floor: compiled Bun hello vs ctr --version"],
    ["minimal info program", "floor: minimal info (bun:sqlite, libc) vs ctr info"],
    ["minimal info program with cac and the config file", "floor: the same with cac's parse and the config file vs ctr info"],
    ["minimal prepare program", "floor: minimal crash-safe prepare vs ctr prepare"],
    // ctr rm deletes metadata only (containerd's GC removes the directory later); stor rm, and this floor, remove it in the call.
    ["minimal rm program", "floor: minimal crash-safe rm (mount check, directory removed) vs ctr rm"],
    ["minimal volume create program", "floor: minimal crash-safe volume create vs docker"],
  ] as const) {
    const f = find("floors", what);
    rows.push([label, "—", f ? `${fmtRatio(ratioOf(f))} (${fmtMs(f.stor)})` : "—", "—", "info"]);
  }
  // The least a read and a write can take after start-up: the minimal programs over hello.
  const hello = find("floors", "Bun start-up (hello)");
  const floorOver = (what: string) => {
    const f = find("floors", what);
    return f && hello ? `+${fmtMs(f.stor - hello.stor)}` : "—";
  };
  // A cost of the runtime that stor's heap size brings on (see floors in snapshots.ts).
  const warmUp = find("floors", "stor info, heap warm-up thread off (against on)");
  if (warmUp?.reference !== undefined) rows.push(["stor info: JSC's heap warm-up thread costs it", "—", fmtMs(warmUp.reference - warmUp.stor), "—", "info"]);
  rows.push(["floor: minimal info / prepare / rm over hello", "—", `${floorOver("minimal info program")} / ${floorOver("minimal prepare program")} / ${floorOver("minimal rm program")}`, "—", "info"]);

  const READS = ["info", "ls", "mounts", "usage"];
  const WRITES = ["prepare", "commit", "view", "rm", "label"];
  for (const s of ["overlay", "native"]) {
    for (const [ops, before, plus] of [
      [READS, s === "overlay" ? "1.34–1.46×" : "—", 2],
      [WRITES, s === "overlay" ? "1.26–1.41×" : "1.20–1.38×", 4],
    ] as const) {
      const fs = ops.map((op) => find(`snapshots ${s}`, op));
      const r = ratioRange(fs);
      rows.push([`snapshot ${ops.join("/")} (${s}) vs ctr`, before, r.text, "≤1.00×", verdict(r.max, 1)]);
      // Over start-up: what the command costs after the runtime has started, against --version
      // timed in the same loop as the command.
      const overs = ops.map((op) => find(`snapshots ${s} over --version`, op)).filter((f): f is Figure => f !== undefined);
      const worst = overs.reduce<Figure | undefined>((w, f) => (w === undefined || f.stor > w.stor ? f : w), undefined);
      const over = worst?.stor ?? Number.NaN;
      rows.push([`  the same, over stor --version (worst)`, "4–8 ms", worst ? `+${fmtMs(over)} (${worst.what})` : "—", `≤+${plus} ms`, verdict(over, plus)]);
    }
  }
  const lsSnaps = find("snapshots", /^ls, \d+ snapshots$/);
  rows.push([`snapshot ${lsSnaps?.what ?? "ls, 10000 snapshots"} vs ctr`, "—", lsSnaps ? fmtRatio(ratioOf(lsSnaps)) : "—", "≤0.50×", verdict(lsSnaps ? ratioOf(lsSnaps) : Number.NaN, 0.5)]);
  const vols = ratioRange(["create", "inspect", "ls", "rm"].map((op) => find("volumes", op)));
  rows.push(["volume create/inspect/ls/rm vs docker", "0.55–0.64×", vols.text, "≤0.50×", verdict(vols.max, 0.5)]);
  const lsMany = find("volumes", /^ls, \d+ volumes$/);
  rows.push([`volume ${lsMany?.what ?? "ls, 10000 volumes"} vs docker`, "—", lsMany ? fmtRatio(ratioOf(lsMany)) : "—", "≤0.50×", verdict(lsMany ? ratioOf(lsMany) : Number.NaN, 0.5)]);
  const ext4 = find("copy", "native prepare, ext4");
  rows.push(["native prepare, ext4, vs cp -a", "1.47×", ext4 ? fmtRatio(ratioOf(ext4)) : "—", "≤1.10×", verdict(ext4 ? ratioOf(ext4) : Number.NaN, 1.1)]);
  const xfs = find("copy", "native prepare, XFS reflink");
  rows.push(["native prepare, XFS, vs cp -a --reflink=always", "1.19×", xfs ? fmtRatio(ratioOf(xfs)) : "—", "≤1.10×", verdict(xfs ? ratioOf(xfs) : Number.NaN, 1.1)]);
  const apply = figures.filter((f) => f.section === "layers" && f.what.startsWith("apply,") && Number.isFinite(f.stor));
  const ar = ratioRange(apply);
  rows.push(["apply vs GNU tar -xf", "1.24×", ar.text, "≤1.10×", verdict(ar.max, 1.1)]);
  // What any apply in Bun must take (applyFloor.ts): the layers' extraction and diffID, nothing else.
  const floors = figures.filter((f) => f.section === "layers" && f.what.startsWith("minimal apply,") && Number.isFinite(f.stor));
  rows.push(["  floor: minimal apply (Bun, diffID on a second thread) vs tar -xf", "—", ratioRange(floors).text, "—", "info"]);
  for (const [re, label, before] of [
    [/^restore adopting \d+ directories$/, "restore adopting the orphaned volumes", "30 s"],
    [/^restore vs dockerd start, \d+ volumes$/, "restore with the volumes", "—"],
    [/^prune -a, \d+ volumes$/, "volume prune -a of the volumes", "97 s"],
  ] as const) {
    const f = find("volumes", re);
    rows.push([f ? `${label} (${f.what.match(/\d+/)![0]})` : label, before, f ? fmtMs(f.stor) : "—", "<2 s", verdict(f ? f.stor / 1000 : Number.NaN, 2)]);
  }
  // What removing that many directories takes on this filesystem at all (-o discard makes each freed block a discard).
  const prune = find("volumes", /^prune -a, \d+ volumes$/);
  if (prune?.reference !== undefined) rows.push(["  floor: rm -rf of as many volume directories", "—", `${fmtMs(prune.reference)} (prune ${fmtRatio(ratioOf(prune))})`, "—", "info"]);
  console.log("\n== Issue 13: speed to the floor — before (c5b84b5, quiet, load 0.6) and now ==");
  process.stdout.write(table(rows));
  console.log(`${loadLine()}.`);
}
