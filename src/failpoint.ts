/**
 * Named crash points for the crash-consistency tests: with `STOR_FAILPOINT=<name>` stor kills
 * itself with SIGKILL when it reaches that point, exactly as a power cut or OOM kill would stop it;
 * with `<name>@<n>`, the n-th time it reaches it (counted in each thread). With `+stop` after
 * either, it stops itself there instead (SIGSTOP), for a test to act in the window between two
 * steps and let it go on (SIGCONT): a race made to happen every time. With `+hold`, only the thread
 * that reaches it waits there, while the others go on (serve's), until the test lets it go: it
 * makes the file `STOR_FAILPOINT_HOLD` names, and waits until that file is removed.
 */
import { InvalidArgumentError } from "./errors.ts";
import { pathExists, touchFile } from "./sys/pathCalls.ts";

/** What an armed failpoint does when it fires. */
type Action = "SIGKILL" | "SIGSTOP" | "hold";

/** The armed failpoint, the count it fires at and what it does, read when a failpoint is first reached. */
let armed: { name: string; nth: number; action: Action } | null | undefined;
let reached = 0;

/** How long a held thread waits at most: a test that died leaves no thread held for good. */
const HOLD_MS = 60_000;

/** Dies (or stops, or holds this thread) here, if the failpoint `name` is armed (and reached its count). */
export function failpoint(name: string): void {
  if (armed === undefined) {
    const spec = process.env.STOR_FAILPOINT;
    const m = spec === undefined ? null : /^(.*?)(?:@(\d+))?(\+stop|\+hold)?$/.exec(spec);
    const action: Action = m?.[3] === "+stop" ? "SIGSTOP" : m?.[3] === "+hold" ? "hold" : "SIGKILL";
    armed = m ? { name: m[1]!, nth: m[2] === undefined ? 1 : Number(m[2]), action } : null;
  }
  if (armed?.name !== name || ++reached !== armed.nth) return;
  if (armed.action === "hold") hold();
  else process.kill(process.pid, armed.action);
}

/** Makes the file STOR_FAILPOINT_HOLD names, then waits, this thread only, until it is gone. */
function hold(): void {
  const path = process.env.STOR_FAILPOINT_HOLD;
  if (!path) throw new InvalidArgumentError("environment variable STOR_FAILPOINT", "+hold needs STOR_FAILPOINT_HOLD, the file that says the thread is held");
  touchFile(path, 0o600);
  const pause = new Int32Array(new SharedArrayBuffer(4));
  for (const end = Date.now() + HOLD_MS; pathExists(path) && Date.now() < end; ) Atomics.wait(pause, 0, 0, 5);
}
