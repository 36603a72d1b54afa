/**
 * The key of the active snapshot an unpack applies a layer into before committing it under its
 * chain ID: `extract-PID-MS-CHAINID`, unique among concurrent unpacks, and telling whose it is.
 * An unpack killed (Ctrl-C, SIGKILL, a crash) leaves it; stor has no garbage collector, so
 * restore and cleanup remove one whose process is gone.
 */
import { bootedAt } from "../boot.ts";
import { processStartedAfterBoot } from "../sys/processes.ts";

const PATTERN = /^extract-(\d+)-(\d+)-/;

/** The key for the layer of `chainID`, for this process. */
export function extractKey(chainID: string): string {
  return `extract-${process.pid}-${Date.now()}-${chainID}`;
}

/**
 * True when `key` is an unpack's and that unpack is gone: made before this boot, or its process
 * is not running, or a process of that pid started after the key was made (the pid reused).
 */
export function isAbandonedExtract(key: string): boolean {
  const m = PATTERN.exec(key);
  if (!m) return false;
  const made = Number(m[2]);
  const booted = bootedAt(); // to the second, at or before the boot: a start seen so is never late
  if (made < booted) return true;
  const started = processStartedAfterBoot(Number(m[1]));
  // In clock ticks (10 ms): a process started in the tick the key was made may be its maker.
  return started === undefined || booted + started > made + 10;
}
