/**
 * Named crash points for the crash-consistency tests: with `STOR_FAILPOINT=<name>` stor kills
 * itself with SIGKILL when it reaches that point, exactly as a power cut or OOM kill would stop it;
 * with `<name>@<n>`, the n-th time it reaches it (counted in each thread).
 */

const [armed, nth] = ((spec) => {
  const m = /^(.*)@(\d+)$/.exec(spec ?? "");
  return m ? [m[1], Number(m[2])] : [spec, 1];
})(process.env.STOR_FAILPOINT);
let reached = 0;

/** Dies here, uncleanly, if the failpoint `name` is armed (and reached its count). */
export function failpoint(name: string): void {
  if (armed === name && ++reached >= nth) process.kill(process.pid, "SIGKILL");
}
