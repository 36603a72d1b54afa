/**
 * Builds the single executable, dist/stor (`bun run build`): `bun build --compile` with its
 * options as flags (ESM, split into chunks loaded when used, minified, compiled to bytecode), and
 * changes to a dependency, which only this API can make. Not part of the executable.
 *
 * cac is compiled as src/cacSource.ts changes it: without node:events, and without RegExps and
 * JavaScript-implemented builtins on the path every command's parse takes.
 *
 * A compiled Bun program reads `.env` and `bunfig.toml` from the working directory unless told
 * not to. stor runs as root wherever an operator stands: a `.env` there would move its root and
 * a bunfig's `preload` would run any script as root. So it reads neither (and each cost start-up).
 *
 * The bytecode is laid out by profile (Bun's `bytecodeOrder`): the first build runs the everyday
 * commands once each in a scratch root, recording which functions each uses, and the second puts
 * those first in the executable, so a command reads and decodes less of it (0.1–0.2 ms less a
 * command, measured on fresh copies). Only the layout changes, never what the program does. Only
 * the profiles of commands that succeeded are used: a failure's are its error path. The scratch
 * root is in /dev/shm where there is one, a tmpfs, as /tmp may be on overlayfs (in a container),
 * where the overlay snapshotter cannot work.
 *
 * The JIT starts reluctant (see src/jitPolicy.ts): start-up code runs a few dozen times at most.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { START_UP_JIT_SCALE } from "./jitPolicy.ts";
import { CAC_SOURCE_PATH, leanCac } from "./cacSource.ts";

const OUTFILE = new URL("../dist/stor", import.meta.url).pathname;

/** The commands whose start-up is recorded, most common first (a profile's order is its weight). */
const RECORDED: readonly (readonly string[])[] = [
  ["snapshot", "-s", "overlay", "prepare", "work"],
  ["snapshot", "-s", "overlay", "commit", "base", "work"],
  ["snapshot", "-s", "overlay", "info", "base"],
  ["snapshot", "-s", "overlay", "ls"],
  ["snapshot", "-s", "overlay", "prepare", "-l", "app=web", "--mounts", "child", "base"],
  ["snapshot", "-s", "overlay", "view", "look", "base"],
  ["snapshot", "-s", "overlay", "mounts", "/mnt", "child"],
  ["snapshot", "-s", "overlay", "usage", "child"],
  ["snapshot", "-s", "overlay", "label", "child", "app=db"],
  ["snapshot", "-s", "overlay", "rm", "look", "child"],
  ["snapshot", "-s", "native", "prepare", "native"],
  ["volume", "create", "data"],
  ["volume", "inspect", "data"],
  ["volume", "ls"],
  ["volume", "rm", "data"],
  ["df"],
  ["--version"],
];

/** Builds dist/stor, its bytecode laid out by the profiles `order` names (none: as compiled). */
async function build(order: string[]): Promise<void> {
  let leaned = false;
  const result = await Bun.build({
    entrypoints: [new URL("main.ts", import.meta.url).pathname],
    compile: {
      outfile: OUTFILE,
      autoloadDotenv: false,
      autoloadBunfig: false,
      autoloadTsconfig: false,
      autoloadPackageJson: false,
      bytecodeOrder: order.length > 0 && order,
      jitPolicy: START_UP_JIT_SCALE,
    },
    format: "esm",
    splitting: true,
    minify: true,
    bytecode: true,
    plugins: [
      {
        name: "lean cac",
        setup(build) {
          build.onLoad({ filter: CAC_SOURCE_PATH }, ({ path }) => {
            leaned = true;
            return { contents: leanCac(readFileSync(path, "utf8")), loader: "js" };
          });
        },
      },
    ],
  });
  // Bun.build throws on a failed build: the scratch directory is removed on the way out.
  if (!result.success) throw new Error(`build failed: ${result.logs.join("\n")}`);
  // A cac whose file moved would be compiled as published, RegExps and node:events and all.
  if (!leaned) throw new Error(`build: no file of cac matched ${CAC_SOURCE_PATH} (has cac changed?)`);
}

/**
 * Runs each of {@link RECORDED} with dist/stor in a scratch root under `dir`, and returns the
 * profiles of those that succeeded, in their order. Nothing of this machine's environment,
 * configuration, cache or plugins reaches them: only PATH is passed on.
 */
function record(dir: string): string[] {
  const root = join(dir, "root");
  const profiles: string[] = [];
  for (const [i, argv] of RECORDED.entries()) {
    const profile = join(dir, `${i}.order`);
    const run = Bun.spawnSync([OUTFILE, "--root", root, "--config", "/dev/null", ...argv], {
      env: { PATH: process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin", BUN_BYTECODE_ORDER_OUT: profile, STOR_CONFIG_CACHE_DIR: dir, STOR_PLUGIN_DIRS: "" },
      stdout: "ignore",
      stderr: "pipe",
    });
    if (run.exitCode === 0 && existsSync(profile)) profiles.push(profile);
    else console.warn(`build: recording stor ${argv.join(" ")}: ${run.stderr.toString().trim() || `exit ${run.exitCode}`} (its profile is not used)`);
  }
  return profiles;
}

await build([]);
const scratch = mkdtempSync(join(existsSync("/dev/shm") ? "/dev/shm" : tmpdir(), "stor-build-"));
try {
  const profiles = record(scratch);
  if (profiles.length === 0) console.warn("build: no bytecode profile was recorded; dist/stor keeps the compiled layout");
  else await build(profiles);
} finally {
  rmSync(scratch, { recursive: true, force: true });
}
