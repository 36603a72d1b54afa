/**
 * `STOR_TRACE=1`: where one command's time goes. Each {@link trace} call marks the end of a phase;
 * {@link printTrace} writes them to stderr as microseconds, each phase's own and the time since the
 * process started (so the first phase is the runtime's start-up and the bundle's load). A cost
 * inside a phase ({@link traceWithin}: node:fs loaded on use) is a line of its own, in brackets.
 * A last line says how much of the code the command loaded the build's bytecode layout had put
 * first (src/build.ts): "0 not" when the command is one the build recorded. Off, a mark costs
 * one comparison. Each phase also says how many page faults it took: where first touching a page
 * costs a VM 10–16 µs (this one's), they are much of a phase's time.
 */
import { writeText } from "./sys/pathCalls.ts";

/**
 * Each mark: what, when it ended, and either the process's minor page faults then (a phase's end)
 * or when it began (a cost inside a phase, whose faults are the phase's).
 */
const marks: { what: string; at: number; faults?: number; start?: number }[] | undefined = process.env.STOR_TRACE === "1" ? [] : undefined;

/** Marks the end of `phase`. */
export function trace(phase: string): void {
  if (marks) marks.push({ what: phase, at: performance.now(), faults: process.resourceUsage().minorPageFault });
}

/** Records that `what`, inside the phase under way, took the time since `start` (a performance.now()). */
export function traceWithin(what: string, start: number): void {
  marks?.push({ what: `(${what})`, at: performance.now(), start });
}

/** Writes the marks to stderr, once, when tracing is on. */
export function printTrace(): void {
  if (!marks?.length) return;
  let last = 0;
  let lastFaults = 0;
  let out = "";
  for (const { what, at, faults, start } of marks) {
    const own = faults === undefined ? " ".repeat(12) : `${String(faults - lastFaults).padStart(5)} faults`;
    out += `stor trace: ${what.padEnd(22)} ${String(Math.round((at - (start ?? last)) * 1000)).padStart(7)} µs ${own}  (at ${Math.round(at * 1000)} µs)\n`;
    if (faults !== undefined) [last, lastFaults] = [at, faults];
  }
  marks.length = 0;
  // Asked only when tracing: bun:jsc is loaded for nothing else.
  const layout = (require("bun:jsc") as typeof import("bun:jsc")).bytecodeOrderStats();
  out += layout
    ? `stor trace: bytecode layout: ${layout.hot} functions from the profile, ${layout.cold + layout.unknown} not\n`
    : "stor trace: bytecode layout: none (not a profiled build)\n";
  writeText(2, out);
}
