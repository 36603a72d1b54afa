/**
 * Named crash points for the crash-consistency tests: with `STOR_FAILPOINT=<name>` stor kills
 * itself with SIGKILL when it reaches that point, exactly as a power cut or OOM kill would stop it;
 * with `<name>@<n>`, the n-th time it reaches it (counted in each thread).
 */

/** The armed failpoint and the count it fires at, read when a failpoint is first reached. */
let armed: { name: string; nth: number } | null | undefined;
let reached = 0;

/** Dies here, uncleanly, if the failpoint `name` is armed (and reached its count). */
export function failpoint(name: string): void {
  if (armed === undefined) {
    const spec = process.env.STOR_FAILPOINT;
    const m = spec === undefined ? null : /^(.*)@(\d+)$/.exec(spec);
    armed = spec === undefined ? null : m ? { name: m[1]!, nth: Number(m[2]) } : { name: spec, nth: 1 };
  }
  if (armed?.name === name && ++reached >= armed.nth) process.kill(process.pid, "SIGKILL");
}
