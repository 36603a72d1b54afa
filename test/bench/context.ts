/** What every benchmark section gets: the binary, the work directory, the run's size. */
import { must, type Run, run } from "./proc.ts";

export interface Ctx {
  /** The stor binary measured (STOR_BIN, default dist/stor). */
  stor: string;
  /** An empty ini file, so the host's /etc/stor/stor.ini does not apply. */
  config: string;
  /** The temporary work directory (ext4 root filesystem) that clean-up removes. */
  work: string;
  quick: boolean;
  /** Whole-process invocations per operation in the latency sections. */
  n: number;
  /** Copy runs per tool and filesystem. */
  copyRuns: number;
  /** Keep the page cache between copy runs instead of dropping it. */
  warm: boolean;
  /** Volumes for the "many volumes" figures. */
  manyVolumes: number;
  /** Snapshots for the "ls of many snapshots" figure. */
  manySnapshots: number;
}

/** `stor --root ROOT --config CONFIG ARGS…` as argv. */
export function storArgv(ctx: Ctx, root: string, args: readonly string[]): string[] {
  return [ctx.stor, "--root", root, "--config", ctx.config, ...args];
}

/** Runs stor against `root`. */
export function stor(ctx: Ctx, root: string, args: readonly string[]): Run {
  return run(storArgv(ctx, root, args));
}

/** Runs stor against `root`; it must succeed. */
export function storOk(ctx: Ctx, root: string, args: readonly string[]): Run {
  return must(storArgv(ctx, root, args));
}
