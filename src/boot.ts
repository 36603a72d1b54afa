/**
 * The kernel's boot id: a new random UUID at every boot. What stor records with it (a volume
 * reference, the boot restore last ran in) tells state of this boot, which a live process may
 * hold, from state an earlier boot left, which nothing can.
 */
import { readFileSync } from "./nodeFs.ts";

let cached: string | undefined;

/** This boot's id. */
export function bootId(): string {
  return (cached ??= readFileSync("/proc/sys/kernel/random/boot_id", "utf8").trim());
}

/** When this boot began, in milliseconds since the epoch (`btime` of /proc/stat). */
export function bootedAt(): number {
  const btime = /^btime (\d+)$/m.exec(readFileSync("/proc/stat", "utf8"));
  return btime ? Number(btime[1]) * 1000 : 0;
}
