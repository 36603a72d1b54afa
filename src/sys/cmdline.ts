/**
 * The arguments this process was given, as the kernel holds them: bytes. Bun decodes argv as
 * UTF-8 with each byte that is not UTF-8 made U+FFFD, so two arguments that differ only there
 * look alike in `process.argv`; /proc/self/cmdline still tells them apart.
 */
import { readBytes } from "./pathCalls.ts";

/** The last `count` arguments of this process (its argv without the program and its runtime's), each as bytes. */
export function lastArguments(count: number): Uint8Array[] {
  const all = readBytes("/proc/self/cmdline") ?? new Uint8Array(0);
  const args: Uint8Array[] = [];
  let start = 0;
  for (let i = 0; i < all.length; i++) {
    if (all[i] !== 0) continue;
    args.push(all.subarray(start, i));
    start = i + 1;
  }
  return args.slice(Math.max(0, args.length - count));
}
