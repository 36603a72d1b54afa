/**
 * Named crash points for the crash-consistency tests: with `STOR_FAILPOINT=<name>` stor kills
 * itself with SIGKILL when it reaches that point, exactly as a power cut or OOM kill would stop it;
 * with `<name>@<n>`, the n-th time it reaches it (counted in each thread). With `+stop` after
 * either, it stops itself there instead (SIGSTOP), for a test to act in the window between two
 * steps and let it go on (SIGCONT): a race made to happen every time.
 */

/** The armed failpoint, the count it fires at and what it does, read when a failpoint is first reached. */
let armed: { name: string; nth: number; signal: "SIGKILL" | "SIGSTOP" } | null | undefined;
let reached = 0;

/** Dies (or stops) here, if the failpoint `name` is armed (and reached its count). */
export function failpoint(name: string): void {
  if (armed === undefined) {
    const spec = process.env.STOR_FAILPOINT;
    const m = spec === undefined ? null : /^(.*?)(?:@(\d+))?(\+stop)?$/.exec(spec);
    armed = m ? { name: m[1]!, nth: m[2] === undefined ? 1 : Number(m[2]), signal: m[3] ? "SIGSTOP" : "SIGKILL" } : null;
  }
  if (armed?.name === name && ++reached === armed.nth) process.kill(process.pid, armed.signal);
}
