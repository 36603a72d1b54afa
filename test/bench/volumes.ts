/**
 * Section "volumes": `stor volume` against `docker volume` on a dockerd of our own — per-process
 * latency of create, inspect, ls and rm; `ls` with many volumes; `stor restore` with many volumes
 * against dockerd's start-up with the same number.
 */
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { stor, storArgv, type Ctx } from "./context.ts";
import { dockerApi, dockerClient, dockerDirs, startDockerdCompat, type Dockerd } from "./daemons.ts";
import { must, parallel, runAsync, type Run } from "./proc.ts";
import { rotated } from "./latency.ts";
import { figures, fmtMs, fmtRatio, median, percentile, table } from "./stats.ts";
import { ensurePackages, findBin, freshCopy } from "./system.ts";
import { createFloor } from "./floors.ts";

const TARGET = 0.5;

const firstLine = (r: Run) => r.stderr.trim().split("\n")[0] || r.stdout.trim().split("\n")[0] || `exit ${r.code}`;

export async function volumesSection(ctx: Ctx): Promise<void> {
  console.log(`\n== 4. Volumes: stor volume vs docker volume (dockerd of our own) ==`);
  const root = join(ctx.work, "volumes-stor");
  mkdirSync(root, { recursive: true });
  const probe = stor(ctx, root, ["volume", "create", "bench-probe"]);
  if (probe.code !== 0) {
    const why = firstLine(probe);
    console.log(`SKIPPED: \`stor volume create\` does not work in ${ctx.stor}: ${why}`);
    figures.push({ section: "volumes", what: "skipped", stor: Number.NaN, note: `stor volume create: ${why}` });
    return;
  }
  stor(ctx, root, ["volume", "rm", "bench-probe"]);

  ensurePackages([{ pkg: "docker.io", bin: "dockerd" }]);
  const dockerd = findBin("dockerd");
  if (!dockerd) throw new Error("dockerd not found after installing docker.io");
  const dockerCli = freshCopy(join(ctx.work, "bin"), dockerClient()); // as stor's (see freshCopy)
  const dirs = dockerDirs(join(ctx.work, "docker"));
  const cliEnv = { DOCKER_CONFIG: join(ctx.work, "docker-cli") };
  const docker = (args: readonly string[]) => [dockerCli, "-H", `unix://${dirs.socket}`, ...args];
  const v = must([dockerd, "--version"]).stdout.trim();

  let daemon: Dockerd = await startDockerdCompat(dockerd, dirs);
  console.log(`${v}; client ${dockerCli}; first start ${fmtMs(daemon.startMs)}`);

  // Per-operation latency, interleaved.
  const ops: { op: string; stor: (i: number) => string[]; docker: (i: number) => string[] }[] = [
    { op: "create", stor: (i) => ["volume", "create", `v${i}`], docker: (i) => ["volume", "create", `v${i}`] },
    { op: "inspect", stor: (i) => ["volume", "inspect", `v${i}`], docker: (i) => ["volume", "inspect", `v${i}`] },
    { op: "ls", stor: () => ["volume", "ls"], docker: () => ["volume", "ls"] },
    { op: "rm", stor: (i) => ["volume", "rm", `v${i}`], docker: (i) => ["volume", "rm", `v${i}`] },
  ];
  const rows = [["op", "stor p50", "stor p90", "docker p50", "docker p90", "ratio", "target"]];
  for (const o of ops) {
    const t = { stor: [] as number[], docker: [] as number[] };
    for (let i = 0; i < ctx.n; i++) {
      const s = () => t.stor.push(must(storArgv(ctx, root, o.stor(i))).ms);
      const d = () => t.docker.push(must(docker(o.docker(i)), { env: cliEnv }).ms);
      if (i % 2 === 0) (s(), d());
      else (d(), s());
    }
    const f = { section: "volumes", what: o.op, stor: median(t.stor), reference: median(t.docker), referenceName: "docker", target: TARGET };
    figures.push(f);
    rows.push([o.op, fmtMs(f.stor), fmtMs(percentile(t.stor, 90)), fmtMs(f.reference), fmtMs(percentile(t.docker, 90)), fmtRatio(f.stor / f.reference), `≤${TARGET}×`]);
  }
  console.log(`\nper process, N=${ctx.n} each (ls lists ${ctx.n} volumes)`);
  process.stdout.write(table(rows));

  // The floor under create (see floors.ts): a crash-safe create and nothing else, against stor and docker.
  const floor = createFloor(join(ctx.work, "floors"), "volume-create", ["_data"], true);
  const t = { floor: [] as number[], stor: [] as number[], docker: [] as number[] };
  const steps = [
    (i: number) => t.floor.push(must(floor(i)).ms),
    (i: number) => t.stor.push(must(storArgv(ctx, root, ["volume", "create", `floor-${i}`])).ms),
    (i: number) => t.docker.push(must(docker(["volume", "create", `floor-${i}`]), { env: cliEnv }).ms),
  ];
  rotated(ctx.n, steps);
  const [floorMs, storMs, dockerMs] = [median(t.floor), median(t.stor), median(t.docker)];
  console.log(
    `floor: a minimal crash-safe create ${fmtMs(floorMs)} (${fmtRatio(floorMs / dockerMs)} of docker's ${fmtMs(dockerMs)}); ` +
      `stor volume create ${fmtMs(storMs)} (${fmtRatio(storMs / dockerMs)}), N=${ctx.n} each, interleaved`,
  );
  figures.push({ section: "floors", what: "minimal volume create program", stor: floorMs, reference: dockerMs, referenceName: "docker" });
  for (let i = 0; i < ctx.n; i++) {
    must(storArgv(ctx, root, ["volume", "rm", `floor-${i}`]));
    must(docker(["volume", "rm", `floor-${i}`]), { env: cliEnv });
  }

  // dockerd start-up with no volumes, for reference.
  const restarts = ctx.quick ? 1 : 3;
  const startEmpty: number[] = [];
  for (let i = 0; i < restarts; i++) {
    await daemon.stop();
    daemon = await startDockerdCompat(dockerd, dirs);
    startEmpty.push(daemon.startMs);
  }

  // Many volumes. stor: a sample through parallel `stor volume create` processes (its throughput
  // is a figure of its own), the rest as the local driver's directories adopted by one `stor
  // restore` (processes at ~25 ms of CPU each would take minutes on two shared cores).
  // docker: every volume through its API, 16 requests in flight.
  const M = ctx.manyVolumes;
  const names = Array.from({ length: M }, (_, i) => `bulk-${String(i).padStart(6, "0")}`);
  const sample = names.slice(0, Math.min(M, ctx.quick ? 100 : 400));
  let storFailures = 0;
  let firstFailure = "";
  let t0 = performance.now();
  await parallel(sample, 4, async (name) => {
    const r = await runAsync(storArgv(ctx, root, ["volume", "create", name]));
    if (r.code !== 0) {
      storFailures++;
      firstFailure ||= firstLine(r);
    }
  });
  const sampleMs = performance.now() - t0;
  const rest = names.slice(sample.length);
  for (const name of rest) {
    mkdirSync(join(root, "volumes", name), { mode: 0o701 });
    mkdirSync(join(root, "volumes", name, "_data"), { mode: 0o755 });
  }
  const adopt = stor(ctx, root, ["restore"]);
  const adoptNote = adopt.code === 0 ? "" : firstLine(adopt);
  t0 = performance.now();
  await parallel(names, 16, async (name) => {
    await dockerApi(daemon.socket, "POST", "/volumes/create", { Name: name });
  });
  const dockerBulkMs = performance.now() - t0;
  console.log(
    `\n${M} volumes: stor created ${sample.length} with 4 parallel processes in ${fmtMs(sampleMs)} (${((sample.length / sampleMs) * 1000).toFixed(0)}/s)` +
      `${storFailures ? `, ${storFailures} FAILED (first: ${firstFailure})` : ""}, then adopted ${rest.length} directories ` +
      `with one stor restore in ${adoptNote ? `— FAILED: ${adoptNote}` : fmtMs(adopt.ms)}; docker API: ${fmtMs(dockerBulkMs)} (16 in flight, ${((M / dockerBulkMs) * 1000).toFixed(0)}/s)`,
  );
  figures.push({ section: "volumes", what: "create, 4 parallel processes (per second)", stor: (sample.length / sampleMs) * 1000, unit: "/s" });
  if (!adoptNote) figures.push({ section: "volumes", what: `restore adopting ${rest.length} directories`, stor: adopt.ms });
  const storCount = must(storArgv(ctx, root, ["volume", "ls", "-q"])).stdout.trim().split("\n").filter(Boolean).length;
  const dockerCount = must(docker(["volume", "ls", "-q"]), { env: cliEnv }).stdout.trim().split("\n").filter(Boolean).length;
  if (storCount !== M || dockerCount !== M) console.log(`  WARNING: stor lists ${storCount} volumes, docker ${dockerCount}; expected ${M}`);

  const reps = ctx.quick ? 5 : 11;
  const ls = { stor: [] as number[], docker: [] as number[] };
  for (let i = 0; i < reps; i++) {
    ls.stor.push(must(storArgv(ctx, root, ["volume", "ls"])).ms);
    ls.docker.push(must(docker(["volume", "ls"]), { env: cliEnv }).ms);
  }
  figures.push({ section: "volumes", what: `ls, ${M} volumes`, stor: median(ls.stor), reference: median(ls.docker), referenceName: "docker" });

  // stor restore with M volumes against dockerd's start-up with the same M volumes.
  const restore: number[] = [];
  let restoreNote = "";
  for (let i = 0; i < (ctx.quick ? 3 : 5) && !restoreNote; i++) {
    const r = stor(ctx, root, ["restore"]);
    if (r.code !== 0) restoreNote = firstLine(r);
    else restore.push(r.ms);
  }
  const startFull: number[] = [];
  for (let i = 0; i < restarts; i++) {
    await daemon.stop();
    daemon = await startDockerdCompat(dockerd, dirs);
    startFull.push(daemon.startMs);
  }
  await daemon.stop();
  if (restoreNote) console.log(`  stor restore FAILED: ${restoreNote}`);
  // Last, as it empties the root: every volume is unused and plain, so all go. Under it, the
  // floor: as many volume directories (each NAME/_data) removed by rm -rf on the same filesystem,
  // in one process and one thread. Both start with nothing dirty.
  must(["sync"]);
  const prune = stor(ctx, root, ["volume", "prune", "-a", "-f"]);
  const pruneNote = prune.code === 0 ? "" : firstLine(prune);
  const rmFloorDir = join(ctx.work, "prune-floor");
  for (const name of names) mkdirSync(join(rmFloorDir, name, "_data"), { recursive: true });
  must(["sync"]);
  const rmFloor = must(["rm", "-rf", rmFloorDir]);
  figures.push({
    section: "volumes",
    what: `prune -a, ${M} volumes`,
    stor: pruneNote ? Number.NaN : prune.ms,
    reference: rmFloor.ms,
    referenceName: "rm -rf of as many",
    note: pruneNote || undefined,
  });
  figures.push({
    section: "volumes",
    what: `restore vs dockerd start, ${M} volumes`,
    stor: restoreNote ? Number.NaN : median(restore),
    reference: median(startFull),
    referenceName: "dockerd start",
    note: restoreNote || undefined,
  });
  const rows2 = [
    ["with many volumes", "stor", "docker", "ratio"],
    [`ls, ${M} volumes`, fmtMs(median(ls.stor)), fmtMs(median(ls.docker)), fmtRatio(median(ls.stor) / median(ls.docker))],
    [`restore vs dockerd start-up, ${M} volumes`, restoreNote ? "FAILED" : fmtMs(median(restore)), fmtMs(median(startFull)), fmtRatio(median(restore) / median(startFull))],
    [`(dockerd start-up, no volumes)`, "", fmtMs(median(startEmpty)), ""],
    [`prune -a, ${M} volumes (docker: rm -rf of as many NAME/_data)`, pruneNote ? "FAILED" : fmtMs(prune.ms), fmtMs(rmFloor.ms), fmtRatio(prune.ms / rmFloor.ms)],
  ];
  process.stdout.write(table(rows2));
}
