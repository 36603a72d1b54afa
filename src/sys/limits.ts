/** The process's resource limits (getrlimit(2)). */
import { check, libc } from "./libc.ts";

const RLIMIT_NOFILE = 7;

/** The most descriptors this process may have open (the soft RLIMIT_NOFILE; the runtime raises it to the hard one). */
export function openFileLimit(): number {
  const limits = new BigUint64Array(2); // rlim_cur, rlim_max
  check(libc.getrlimit(RLIMIT_NOFILE, limits), () => "getrlimit RLIMIT_NOFILE");
  return Number(limits[0]! > BigInt(Number.MAX_SAFE_INTEGER) ? BigInt(Number.MAX_SAFE_INTEGER) : limits[0]!);
}
