/** Running processes for the benchmark: plain runs, runs that must succeed, timed runs, parallel runs. */

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
  /** Wall-clock milliseconds from spawn to exit. */
  ms: number;
}

export interface RunOptions {
  env?: Record<string, string>;
  cwd?: string;
  input?: string;
}

/** Runs `cmd` to completion and returns its exit code, output and wall time. */
export function run(cmd: readonly string[], opts: RunOptions = {}): Run {
  const t0 = performance.now();
  const p = Bun.spawnSync({
    cmd: [...cmd],
    env: { ...process.env, ...opts.env },
    cwd: opts.cwd,
    stdin: opts.input === undefined ? "ignore" : Buffer.from(opts.input),
    stdout: "pipe",
    stderr: "pipe",
  });
  const ms = performance.now() - t0;
  return { code: p.exitCode ?? -1, stdout: p.stdout?.toString() ?? "", stderr: p.stderr?.toString() ?? "", ms };
}

export class CommandError extends Error {
  constructor(
    readonly cmd: readonly string[],
    readonly result: Run,
  ) {
    const err = result.stderr.trim().split("\n").slice(-3).join(" | ");
    super(`${cmd.join(" ")}: exit ${result.code}${err ? `: ${err}` : ""}`);
  }
}

/** Runs `cmd`, which must exit 0; returns the run (stdout, wall time). */
export function must(cmd: readonly string[], opts: RunOptions = {}): Run {
  const r = run(cmd, opts);
  if (r.code !== 0) throw new CommandError(cmd, r);
  return r;
}

/** Runs a shell command line that must succeed; returns its stdout. */
export function shell(line: string): string {
  return must(["sh", "-c", line]).stdout;
}

/** Runs `cmd` asynchronously; resolves with its exit code and output. */
export async function runAsync(cmd: readonly string[], opts: RunOptions = {}): Promise<Run> {
  const t0 = performance.now();
  const p = Bun.spawn({
    cmd: [...cmd],
    env: { ...process.env, ...opts.env },
    cwd: opts.cwd,
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  const [stdout, stderr, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  return { code, stdout, stderr, ms: performance.now() - t0 };
}

/** Calls `fn` on every item with at most `limit` calls in flight. */
export async function parallel<T>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      await fn(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

/** Is `bin` on PATH (or an existing path)? */
export function which(bin: string): string | undefined {
  return Bun.which(bin) ?? undefined;
}
