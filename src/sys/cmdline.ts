/**
 * The arguments and environment this process was given, as the kernel holds them: bytes. Bun
 * decodes argv and the environment as UTF-8 with each byte that is not UTF-8 made U+FFFD, so two
 * values that differ only there look alike in `process.argv` and `process.env`;
 * /proc/self/cmdline and /proc/self/environ still tell them apart.
 */
import { readBytes } from "./pathCalls.ts";

/** The last `count` arguments of this process (its argv without the program and its runtime's), each as bytes. */
export function lastArguments(count: number): Uint8Array[] {
  const args = nulSeparated("/proc/self/cmdline");
  return args.slice(Math.max(0, args.length - count));
}

/** Environment variable `name`'s value as bytes, or undefined when it is not set. */
export function environmentBytes(name: string): Uint8Array | undefined {
  const prefix = `${name}=`;
  for (const entry of nulSeparated("/proc/self/environ")) {
    let match = entry.length >= prefix.length;
    for (let i = 0; match && i < prefix.length; i++) match = entry[i] === prefix.charCodeAt(i);
    if (match) return entry.subarray(prefix.length);
  }
  return undefined;
}

/** The NUL-terminated strings of /proc file `path`. */
function nulSeparated(path: string): Uint8Array[] {
  const all = readBytes(path) ?? new Uint8Array(0);
  const out: Uint8Array[] = [];
  let start = 0;
  for (let i = 0; i < all.length; i++) {
    if (all[i] !== 0) continue;
    out.push(all.subarray(start, i));
    start = i + 1;
  }
  return out;
}
