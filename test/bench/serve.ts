/**
 * Section "serve": per-operation latency through `stor serve`'s sockets, each against the
 * daemon's built-in storage on the same daemon: `ctr snapshots --snapshotter stor` (containerd's
 * `[proxy_plugins]` snapshotter on stor's overlay) against `--snapshotter overlayfs`, and
 * `docker volume … -d stor` (Docker's volume plugin protocol) against `-d local`. The section
 * starts its own `stor serve` (own root), containerd and dockerd, and stops them however it ends.
 */
import { existsSync, mkdirSync, readFileSync, rmdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { connectable, Daemon } from "../daemon.ts";
import { storArgv, type Ctx } from "./context.ts";
import { dockerClient, dockerDirs, started, startContainerd, startDockerdCompat } from "./daemons.ts";
import { proxyFloor } from "./floors.ts";
import { ctrTool, makeBase, measure, SNAPSHOT_OPS, type Op, type Tool } from "./latency.ts";
import { must, run } from "./proc.ts";
import { figures, fmtMs, fmtRatio, median, percentile, table } from "./stats.ts";
import { atCleanup, ensurePackages, findBin } from "./system.ts";

const TARGET = 1.2;
/** dockerd finds plugins by name here; the spec file names our socket. */
const PLUGIN_DIR = "/etc/docker/plugins";

/** Adds the rows and figures of `times` (stor's first) to `rows`, `prefix` naming the client. */
function report(rows: string[][], times: ReadonlyMap<string, readonly [number[], number[], ...number[][]]>, prefix: string, referenceName: string, notes: Record<string, string> = {}): void {
  for (const [op, [st, bt]] of times) {
    const f = { section: "serve", what: `${prefix} ${op}`, stor: median(st), reference: median(bt), referenceName, target: TARGET, note: notes[op] };
    figures.push(f);
    rows.push([f.what, fmtMs(f.stor), fmtMs(percentile(st, 90)), fmtMs(f.reference), fmtMs(percentile(bt, 90)), fmtRatio(f.stor / f.reference), `≤${TARGET}×`]);
  }
}

export async function serveSection(ctx: Ctx): Promise<void> {
  console.log(`\n== 6. stor serve: latency through the sockets against the daemons' built-in storage, N=${ctx.n} each (median, p90) ==`);
  ensurePackages([
    { pkg: "containerd", bin: "containerd" },
    { pkg: "docker.io", bin: "dockerd" },
  ]);
  const dockerdBin = findBin("dockerd");
  if (!dockerdBin) throw new Error("dockerd not found after installing docker.io");
  const dockerCli = dockerClient();

  const dir = join(ctx.work, "serve");
  const root = join(dir, "stor");
  const mnt = join(dir, "mnt");
  const snapSocket = join(dir, "run", "snapshots.sock");
  const floorSocket = join(dir, "run", "floor.sock");
  const volSocket = join(dir, "run", "volumes.sock");
  mkdirSync(root, { recursive: true });
  mkdirSync(mnt, { recursive: true });

  // A plugin name of our own, so that neither an installed stor nor a test run is shadowed.
  const plugin = `stor-bench-${process.pid}`;
  const spec = join(PLUGIN_DIR, `${plugin}.spec`);
  const madePluginDir = !existsSync(PLUGIN_DIR);
  const removeSpec = () => {
    rmSync(spec, { force: true });
    try {
      if (madePluginDir) rmdirSync(PLUGIN_DIR); // only if we made it, and only when empty
    } catch {
      /* gone already, or someone else's spec is in it now */
    }
  };

  let serve: Daemon | undefined;
  /** The daemons that call stor: stopped before it. */
  const daemons: Daemon[] = [];
  const rows = [["op", "via stor p50", "p90", "built-in p50", "p90", "ratio", "target"]];
  try {
    const storServe = new Daemon(storArgv(ctx, root, ["-s", "overlay", "serve", "--containerd", snapSocket, "--docker-volume", volSocket]), join(dir, "serve.log"));
    serve = await started(storServe, () => connectable(snapSocket, volSocket), 30_000);
    console.log(`stor serve -s overlay on both sockets: ready in ${fmtMs(serve.startMs)}`);

    // The floor: a minimal proxy snapshotter (grpc-js over a Map), a proxy of the same containerd.
    const floor = new Daemon([proxyFloor(join(dir, "floor")), floorSocket], join(dir, "floor.log"));
    daemons.push(await started(floor, () => connectable(floorSocket), 30_000));

    // containerd: the same daemon, namespace per snapshotter; only the snapshotter differs.
    const containerd = await startContainerd(join(dir, "containerd"), snapSocket, { floor: floorSocket });
    daemons.push(containerd);
    console.log(`${run(["containerd", "--version"]).stdout.trim()}; ready in ${fmtMs(containerd.startMs)}`);
    const collected = { n: 0 };
    const viaStor = ctrTool({ name: "stor", containerd, namespacePrefix: "serve", snapshotter: "stor", collected });
    const builtIn = ctrTool({ name: "overlayfs", containerd, namespacePrefix: "serve", snapshotter: "overlayfs", collected });
    makeBase(viaStor, mnt);
    makeBase(builtIn, mnt);
    const snapTimes = measure(SNAPSHOT_OPS, [viaStor, builtIn], ctx.n);
    // containerd's metadata store lists from its own database, then asks the proxy for a Stat of
    // every snapshot, one call after another: ls costs one round trip per snapshot.
    const listed = 2 * ctx.n + 1;
    const [lsStor, lsBuiltIn] = snapTimes.get("ls")!;
    const perStat = (median(lsStor) - median(lsBuiltIn)) / listed;
    // The same ls through the minimal proxy, holding as many snapshots: stor's, the floor's and the
    // built-in's ls in turns, so that all three are read against the same minutes.
    const viaFloor = ctrTool({ name: "floor", containerd, namespacePrefix: "serve", snapshotter: "floor", collected });
    for (let i = 0; i < listed; i++) must(viaFloor.argv(["prepare", `f${i}`]));
    // As many calls as stor's serve has answered by now, untimed: both JITs as warm.
    for (let i = 0; i < ctx.n; i++) must(viaFloor.argv(["ls"]));
    const lsTools = [viaStor, viaFloor, builtIn];
    const lsTimes = lsTools.map((): number[] => []);
    for (let i = 0; i < ctx.n; i++) for (const k of i % 2 === 0 ? [0, 1, 2] : [2, 1, 0]) lsTimes[k]!.push(must(lsTools[k]!.argv(["ls"])).ms);
    const [lsStorAgain, lsFloor, lsBuiltInAgain] = lsTimes.map(median) as [number, number, number];
    const floorNote =
      `in turns: stor ${fmtRatio(lsStorAgain / lsBuiltInAgain)}, +${(((lsStorAgain - lsBuiltInAgain) / listed) * 1000).toFixed(0)} µs a Stat; ` +
      `a minimal grpc-js proxy ${fmtRatio(lsFloor / lsBuiltInAgain)}, +${(((lsFloor - lsBuiltInAgain) / listed) * 1000).toFixed(0)} µs`;
    report(rows, snapTimes, "ctr", "overlayfs", { ls: `containerd Stats each of ${listed} snapshots over the socket: +${(perStat * 1000).toFixed(0)} µs each; ${floorNote}` });
    figures.push({ section: "serve", what: "floor: ctr ls via a minimal grpc-js proxy", stor: lsFloor, reference: lsBuiltInAgain, referenceName: "overlayfs" });
    rows.push(["floor: ctr ls, minimal proxy", fmtMs(lsFloor), fmtMs(percentile(lsTimes[1]!, 90)), fmtMs(lsBuiltInAgain), fmtMs(percentile(lsTimes[2]!, 90)), fmtRatio(lsFloor / lsBuiltInAgain), "—"]);
    if (collected.n) console.log(`(containerd's GC took ${collected.n} views before they were labelled; made again, untimed)`);

    // dockerd: stor as a plugin found by its spec file, against the local driver.
    mkdirSync(PLUGIN_DIR, { recursive: true });
    writeFileSync(spec, `unix://${volSocket}\n`);
    atCleanup(`remove ${spec}`, removeSpec);
    const dirs = dockerDirs(join(dir, "docker"));
    const dockerd = await startDockerdCompat(dockerdBin, dirs);
    daemons.push(dockerd);
    console.log(`${must([dockerdBin, "--version"]).stdout.trim()}; client ${dockerCli}; ready in ${fmtMs(dockerd.startMs)}`);
    const env = { DOCKER_CONFIG: join(dir, "docker-cli") };
    const docker = (driver: string, prefix: string): Tool => ({
      name: driver,
      env,
      argv: (a) => {
        const [cmd, ...rest] = a;
        const name = rest.map((x) => `${prefix}${x}`);
        if (cmd === "create") return [dockerCli, "-H", `unix://${dirs.socket}`, "volume", "create", "-d", driver, ...name];
        if (cmd === "ls") return [dockerCli, "-H", `unix://${dirs.socket}`, "volume", "ls", "--filter", `driver=${driver}`];
        return [dockerCli, "-H", `unix://${dirs.socket}`, "volume", cmd!, ...name];
      },
    });
    const volStor = docker(plugin, "s");
    const volLocal = docker("local", "l");
    // The first call activates the plugin: once, untimed.
    for (const t of [volStor, volLocal]) {
      must(t.argv(["create", "warm"]), { env });
      must(t.argv(["rm", "warm"]), { env });
    }
    const VOLUME_OPS: Op[] = [
      { op: "create", args: (i) => ["create", `${i}`] },
      { op: "inspect", args: (i) => ["inspect", `${i}`] },
      { op: "ls", args: () => ["ls"] },
      { op: "rm", args: (i) => ["rm", `${i}`] },
    ];
    report(rows, measure(VOLUME_OPS, [volStor, volLocal], ctx.n), "docker", "local");

    console.log(`\nctr snapshots --snapshotter stor vs overlayfs (ls lists ${listed} snapshots); docker volume -d ${plugin} vs local (ls --filter driver=…, ${ctx.n} volumes)`);
    process.stdout.write(table(rows));
    console.log(`note: through a proxy, ctr ls makes containerd call Stat once per snapshot (${listed} calls, +${(perStat * 1000).toFixed(0)} µs each here; ${floorNote}).`);
  } finally {
    // dockerd and containerd first: they call the plugin as they stop; stor serve last.
    for (const d of daemons.reverse()) await d.stop();
    const s0 = performance.now();
    const code = await serve?.stop();
    const stopMs = performance.now() - s0;
    removeSpec();
    if (serve) {
      const errors = readFileSync(serve.log, "utf8").split("\n").filter((l) => /error/i.test(l));
      console.log(
        `stor serve: SIGTERM to exit ${fmtMs(stopMs)}, exit code ${code ?? "none (killed)"}` +
          `${errors.length ? `; ${errors.length} error lines in ${serve.log}, first: ${errors[0]}` : ""}`,
      );
    }
  }
}
