/**
 * What every test needs: the stor binary run as a user runs it, throw-away roots, real loop
 * filesystems, and a loud failure under CI when root or a kernel feature is missing.
 */
import { Database } from "bun:sqlite";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { spawnSync } from "bun";
import { ownConfigCache } from "./ownConfigCache.ts";

// No test finds the host's volume plugins (nor those other test runs put there): a test that
// wants plugins names their directory itself.
process.env.STOR_PLUGIN_DIRS ??= "";
// Nor do they write the host's config cache (see ./ownConfigCache.ts).
const cache = ownConfigCache();
if (cache !== undefined) process.on("exit", () => rmSync(cache, { recursive: true, force: true }));

/** The binary under test: `dist/stor` unless STOR_BIN names another build. */
export const STOR = process.env.STOR_BIN ?? resolve(import.meta.dir, "../dist/stor");
const CI = process.env.CI === "true";

export interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command and returns its exit code and output. */
export function sh(cmd: string[], opts: { env?: Record<string, string>; input?: string | Uint8Array; cwd?: string; timeout?: number } = {}): Result {
  const p = spawnSync({
    cmd,
    env: { ...process.env, ...opts.env },
    stdin: opts.input === undefined ? "ignore" : Buffer.from(opts.input),
    cwd: opts.cwd,
    timeout: opts.timeout,
  });
  return { code: p.exitCode ?? -1, stdout: p.stdout.toString(), stderr: p.stderr.toString() };
}

/**
 * How long `run` takes, start-up included: the median of `times` runs, each followed by `undo`.
 * A crash test spreads its kill instants over it; one run timed alone may be a slow first one (a
 * cold cache, a disk flushing), and then most kills land after the command has finished.
 */
export function typicalSpan(run: () => void, undo: () => void, times = 5): number {
  const spans: number[] = [];
  for (let i = 0; i < times; i++) {
    const t0 = performance.now();
    run();
    spans.push(performance.now() - t0);
    undo();
  }
  return spans.sort((a, b) => a - b)[times >> 1]!;
}

/** Runs a shell command line that must succeed; returns its stdout. */
export function must(line: string): string {
  const r = sh(["sh", "-c", line]);
  if (r.code !== 0) throw new Error(`${line}: exit ${r.code}: ${r.stderr.trim()}`);
  return r.stdout;
}

/**
 * A throw-away stor root with its own config, in `parent` (default /tmp) or on a filesystem of its
 * own ({@link TestRoot.onBtrfs}); {@link TestRoot.close} unmounts and removes it.
 */
export class TestRoot {
  readonly path: string;
  readonly config: string;
  #loop: LoopFs | undefined;
  constructor(prefix = "stor-test-", parent = "/tmp") {
    this.path = mkdtempSync(join(parent, prefix));
    this.config = join(this.path, "stor.ini");
    writeFileSync(this.config, "");
  }

  /** Runs `stor --root ROOT --config CONFIG ARGS`; one still running after `timeout` ms is killed. */
  stor(args: string[], opts: { env?: Record<string, string>; input?: string | Uint8Array; timeout?: number } = {}): Result {
    return sh([STOR, "--root", this.path, "--config", this.config, ...args], opts);
  }

  /** Like {@link stor}, but the command must succeed; returns stdout. */
  ok(args: string[], opts: { env?: Record<string, string>; input?: string | Uint8Array } = {}): string {
    const r = this.stor(args, opts);
    if (r.code !== 0) throw new Error(`stor ${args.join(" ")}: exit ${r.code}: ${r.stderr.trim()}`);
    return r.stdout;
  }

  /**
   * Runs `stor ARGS`, stopped at failpoint `point` (`NAME` or `NAME@N`); runs `act` in that window,
   * as another process would, then lets the command go on and returns what it ended with.
   */
  async stoppedAt(args: string[], point: string, act: () => void): Promise<Result> {
    const p = Bun.spawn([STOR, "--root", this.path, "--config", this.config, ...args], {
      env: { ...process.env, STOR_FAILPOINT: `${point}+stop` },
      stdin: "ignore",
      stdout: "pipe",
      stderr: "pipe",
    });
    try {
      await stopped(p.pid);
      act();
    } finally {
      p.kill("SIGCONT");
    }
    const [stdout, stderr, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
    return { code, stdout, stderr };
  }

  /** Runs one `stor` per argument list, all at once, as separate processes; results in order. */
  async parallel(argvs: string[][]): Promise<Result[]> {
    const procs = argvs.map((a) =>
      Bun.spawn([STOR, "--root", this.path, "--config", this.config, ...a], { stdin: "ignore", stdout: "pipe", stderr: "pipe" }),
    );
    return Promise.all(
      procs.map(async (p) => {
        const [stdout, stderr, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
        return { code, stdout, stderr };
      }),
    );
  }

  /** A fresh directory inside the root's parent, e.g. a mount target. */
  dir(name: string): string {
    const d = join(this.path, "..", `${this.path.split("/").pop()}-${name}`);
    mkdirSync(d, { recursive: true });
    return d;
  }

  /**
   * A root on a new btrfs filesystem of its own, which {@link close} unmounts and deletes whole
   * (read-only subvolumes and all). Throws when btrfs cannot be had: the tests that need it fail,
   * as they must under CI.
   */
  static onBtrfs(prefix?: string, sizeMiB = 2048): TestRoot {
    if (!have("mkfs.btrfs")) throw new Error("btrfs tests need mkfs.btrfs (btrfs-progs; test/setup.sh installs it)");
    const loop = new LoopFs("btrfs", sizeMiB);
    const root = new TestRoot(prefix, loop.mountPoint);
    root.#loop = loop;
    return root;
  }

  /** A root where snapshotter `name` can run: on a btrfs filesystem of its own for btrfs. */
  static for(name: string, prefix?: string): TestRoot {
    return name === "btrfs" ? TestRoot.onBtrfs(prefix) : new TestRoot(prefix);
  }

  /** The filesystem of a root made by {@link onBtrfs}. */
  get loop(): LoopFs | undefined {
    return this.#loop;
  }

  close(): void {
    unmountBelow(this.path);
    unmountBelow(`${this.path}-`);
    if (this.#loop) return this.#loop.close();
    rmSync(this.path, { recursive: true, force: true });
    sh(["sh", "-c", `rm -rf '${this.path}'-*`]);
  }
}


/**
 * Makes `root` look to `stor restore` as after a reboot: every volume reference, and restore's
 * record, of an earlier boot. Mounts stay (a real reboot would take them), for restore to find.
 */
export function simulateReboot(root: string): void {
  const earlier = "00000000-0000-4000-8000-000000000000";
  const db = join(root, "volumes/.meta/metadata.db");
  if (existsSync(db)) {
    const d = new Database(db);
    d.run("UPDATE refs SET boot = ?", [earlier]);
    d.close();
  }
  writeFileSync(join(root, "restore.boot"), `${earlier}\n`);
}

/** Unmounts everything whose mount point starts with `prefix`, deepest first. */
export function unmountBelow(prefix: string): void {
  for (let i = 0; i < 10; i++) {
    const points = readFileSync("/proc/self/mountinfo", "utf8")
      .split("\n")
      .map((line) => line.split(" ")[4]?.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8))))
      .filter((p): p is string => p !== undefined && p.startsWith(prefix))
      .sort((a, b) => b.length - a.length);
    if (points.length === 0) return;
    for (const p of points) sh(["umount", "-l", p]);
  }
}

/**
 * Whether a requirement (root, a kernel feature, a tool) is met, for `test.skipIf(!need(…))` and
 * `describe.skipIf`: outside CI an unmet one says why and the test shows as skipped (counted in
 * the final line); under CI (CI=true) it throws while the file loads, so the run fails loudly.
 * Never a reason to return early from a test that then passes without asserting.
 */
export function need(ok: boolean, why: string): boolean {
  if (ok) return true;
  if (CI) throw new Error(`required under CI: ${why}`);
  console.warn(`skipped: ${why}`);
  return false;
}

export const isRoot = () => process.getuid?.() === 0;

/**
 * A filesystem of `type` on a loop device, mounted on a fresh directory. An ext4 has blocks of
 * 4 KiB unless `mkfsArgs` say (`-b`): mkfs.ext4 makes a small one of 1 KiB, on which stor refuses
 * to make its metadata (see smallBlocks in src/db.ts).
 */
export class LoopFs {
  readonly image: string;
  readonly mountPoint: string;
  constructor(type: "ext4" | "xfs" | "btrfs", sizeMiB: number, mkfsArgs: string[] = [], mountOpts = "") {
    if (type === "ext4" && !mkfsArgs.includes("-b")) mkfsArgs = ["-b", "4096", ...mkfsArgs];
    const base = mkdtempSync(join("/tmp", `stor-loop-${type}-`));
    this.image = join(base, "image");
    this.mountPoint = join(base, "mnt");
    mkdirSync(this.mountPoint);
    must(`truncate -s ${sizeMiB}M ${this.image}`);
    must(`mkfs.${type} -q ${mkfsArgs.join(" ")} ${this.image} </dev/null >/dev/null 2>&1 || mkfs.${type} ${mkfsArgs.join(" ")} ${this.image} </dev/null`);
    must(`mount -o loop${mountOpts ? `,${mountOpts}` : ""} ${this.image} ${this.mountPoint}`);
  }

  close(): void {
    sh(["umount", "-l", this.mountPoint]);
    rmSync(resolve(this.image, ".."), { recursive: true, force: true });
  }
}

/** Fills every block root may write of the filesystem mounted at `mountPoint`, with its file `filler`. */
export function fillUp(mountPoint: string): void {
  must(`dd if=/dev/zero of=${mountPoint}/filler bs=1M 2>/dev/null; dd if=/dev/zero of=${mountPoint}/filler bs=4k oflag=append conv=notrunc 2>/dev/null; true`);
}

/**
 * Takes every inode of the filesystem mounted at `mountPoint` but the ones root may not, with empty
 * files in its directory `fill` (made if missing); returns that directory.
 */
export function fillInodes(mountPoint: string): string {
  const fill = join(mountPoint, "fill");
  must(`mkdir -p ${fill} && cd ${fill} && i=0 && while true 2>/dev/null > $i; do i=$((i+1)); done`);
  return fill;
}

/** True when `cmd` is on PATH. */
export function have(cmd: string): boolean {
  return sh(["sh", "-c", `command -v ${cmd}`]).code === 0;
}

/** True when process `pid` is stopped (as a `+stop` failpoint leaves it); false when it runs or is gone. */
function isStopped(pid: number): boolean {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return false;
  }
  // The state is the field after the command's closing parenthesis.
  return stat.slice(stat.lastIndexOf(")") + 2).startsWith("T");
}

/** Waits (up to 10 s) until process `pid` is stopped, as a `+stop` failpoint leaves it. */
export async function stopped(pid: number): Promise<void> {
  for (let i = 0; i < 1000; i++) {
    if (isStopped(pid)) return;
    await Bun.sleep(10);
  }
  throw new Error(`process ${pid} never stopped`);
}

/**
 * The environment that arms failpoint `point` (`NAME` or `NAME@N`) to hold the thread that reaches
 * it: that thread makes file `held` and waits until it is removed, while the others go on.
 */
export function holdAt(point: string, held: string): Record<string, string> {
  return { STOR_FAILPOINT: `${point}+hold`, STOR_FAILPOINT_HOLD: held };
}

/**
 * Waits (up to 10 s) until a thread held by {@link holdAt} has made file `held`: true then, false
 * when `ended()` says the command ended first, without reaching its failpoint.
 */
export async function untilHeld(held: string, ended: () => boolean): Promise<boolean> {
  for (let i = 0; i < 1000; i++) {
    if (existsSync(held)) return true;
    if (ended()) return false;
    await Bun.sleep(10);
  }
  throw new Error(`nothing made ${held} in 10 s: no thread held at its failpoint`);
}
