/**
 * Section "overlay": prepare and `stor mount` on top of deep overlay chains (100 and 500 layers,
 * each layer adding one file), past the point where the mount options outgrow a page.
 */
import { mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { stor, storOk, type Ctx } from "./context.ts";
import { figures, fmtMs, median, table } from "./stats.ts";
import { unmountBelow } from "./system.ts";

interface MountJson {
  Type: string;
  Source: string;
  Options: string[];
}

/** The directory a new active snapshot's files go in: its upperdir, or the bind source of a base. */
function writableDir(mounts: MountJson[]): string {
  const m = mounts[0]!;
  if (m.Type === "bind") return m.Source;
  const upper = m.Options.find((o) => o.startsWith("upperdir="));
  if (!upper) throw new Error(`no upperdir in ${JSON.stringify(m)}`);
  return upper.slice("upperdir=".length);
}

export function chainsSection(ctx: Ctx): void {
  const depths = ctx.quick ? [100] : [100, 500];
  const reps = ctx.quick ? 5 : 15;
  const max = Math.max(...depths);
  const root = join(ctx.work, "chains");
  const mnt = join(ctx.work, "chains-mnt");
  mkdirSync(root, { recursive: true });
  mkdirSync(mnt, { recursive: true });
  const s = (args: string[]) => storOk(ctx, root, ["snapshot", "-s", "overlay", ...args]);
  console.log(`\n== 3. Overlay deep chains: ${depths.join(" and ")} layers, one file each; ${reps} runs each (median) ==`);

  const t0 = performance.now();
  for (let i = 0; i < max; i++) {
    const mounts = JSON.parse(s(["prepare", "--mounts", `a${i}`, ...(i ? [`L${i - 1}`] : [])]).stdout) as MountJson[];
    writeFileSync(join(writableDir(mounts), `layer${i}.txt`), `${i}\n`);
    s(["commit", `L${i}`, `a${i}`]);
  }
  console.log(`built a ${max}-layer chain in ${fmtMs(performance.now() - t0)} (prepare --mounts + commit per layer)`);

  const rows = [["layers", "prepare", "stor mount", "stor unmount", "files seen", "mount type"]];
  for (const depth of depths) {
    const top = `L${depth - 1}`;
    const t = { prepare: [] as number[], mount: [] as number[], unmount: [] as number[] };
    let seen = "";
    let type = "";
    let failure = "";
    for (let r = 0; r < reps && !failure; r++) {
      const key = `top${depth}-${r}`;
      t.prepare.push(s(["prepare", key, top]).ms);
      const m = stor(ctx, root, ["-s", "overlay", "mount", key, mnt]);
      if (m.code !== 0) {
        failure = m.stderr.trim().split("\n").pop() ?? `exit ${m.code}`;
        break;
      }
      t.mount.push(m.ms);
      if (r === 0) {
        const files = readdirSync(mnt).filter((f) => /^layer\d+\.txt$/.test(f));
        seen = `${files.length}/${depth}`;
        type = JSON.parse(s(["prepare", "--mounts", `${key}-probe`, top]).stdout)[0].Type;
        s(["rm", `${key}-probe`]);
      }
      const u = stor(ctx, root, ["unmount", mnt]);
      if (u.code !== 0) {
        failure = `unmount: ${u.stderr.trim()}`;
        unmountBelow(mnt);
      } else t.unmount.push(u.ms);
      s(["rm", key]);
    }
    if (failure) console.log(`  ${depth} layers: stor mount FAILED: ${failure}`);
    figures.push({ section: "overlay chains", what: `prepare on ${depth} layers`, stor: median(t.prepare) });
    figures.push({ section: "overlay chains", what: `mount on ${depth} layers`, stor: failure ? Number.NaN : median(t.mount), note: failure || undefined });
    rows.push([String(depth), fmtMs(median(t.prepare)), failure ? "FAILED" : fmtMs(median(t.mount)), fmtMs(median(t.unmount)), seen || "—", type || "—"]);
  }
  process.stdout.write(table(rows));
}
