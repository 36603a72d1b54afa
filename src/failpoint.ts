/**
 * Named crash points for the crash-consistency tests: with `STOR_FAILPOINT=<name>` stor kills
 * itself with SIGKILL when it reaches that point, exactly as a power cut or OOM kill would stop it.
 */

const armed = process.env.STOR_FAILPOINT;

/** Dies here, uncleanly, if the failpoint `name` is armed. */
export function failpoint(name: string): void {
  if (armed === name) process.kill(process.pid, "SIGKILL");
}
