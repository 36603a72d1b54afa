/** Timestamps as Go formats them, so output matches ctr and docker. */

const wall0 = BigInt(Date.now()) * 1_000_000n;
const mono0 = process.hrtime.bigint();

/** Wall-clock time now, in nanoseconds since the epoch. */
export function nowNs(): bigint {
  return wall0 + (process.hrtime.bigint() - mono0);
}

/** RFC 3339 with nanoseconds, trailing zeros dropped (Go's time.RFC3339Nano). */
export function rfc3339Nano(ns: bigint): string {
  const secs = ns / 1_000_000_000n;
  const digits = (ns % 1_000_000_000n).toString().padStart(9, "0");
  let end = digits.length;
  while (end > 0 && digits.charCodeAt(end - 1) === 48) end--; // trailing zeros, without a RegExp
  const frac = digits.slice(0, end);
  const base = new Date(Number(secs) * 1000).toISOString().slice(0, 19);
  return frac ? `${base}.${frac}Z` : `${base}Z`;
}

/** RFC 3339 to the second (Go's time.RFC3339 in UTC), as docker prints CreatedAt. */
export function rfc3339(date: Date): string {
  return `${date.toISOString().slice(0, 19)}Z`;
}
