/**
 * `STOR_TRACE=1`: where one command's time goes. Each {@link trace} call marks the end of a phase;
 * {@link printTrace} writes them to stderr as microseconds, each phase's own and the time since the
 * process started (so the first phase is the runtime's start-up and the bundle's load). Off, a mark
 * costs one comparison.
 */
import { writeAll } from "./sys/pathCalls.ts";

const marks: [string, number][] | undefined = process.env.STOR_TRACE === "1" ? [] : undefined;

/** Marks the end of `phase`. */
export function trace(phase: string): void {
  marks?.push([phase, performance.now()]);
}

/** Writes the marks to stderr, once, when tracing is on. */
export function printTrace(): void {
  if (!marks?.length) return;
  let last = 0;
  let out = "";
  for (const [phase, at] of marks) {
    out += `stor trace: ${phase.padEnd(22)} ${String(Math.round((at - last) * 1000)).padStart(7)} µs  (at ${Math.round(at * 1000)} µs)\n`;
    last = at;
  }
  marks.length = 0;
  writeAll(2, new TextEncoder().encode(out));
}
