/**
 * The volume part of `stor restore`, run once at boot: what an unclean shutdown left is put
 * right, as dockerd's volume store does when it starts. Running it again changes nothing.
 *
 * 1. Whatever is mounted under the volumes root is unmounted: after a boot no reference holds a
 *    volume, and a mount left by a crash would otherwise be taken for an active one.
 * 2. Every reference and active-mount count is dropped, for the same reason.
 * 3. Each driver's storage is compared with the metadata: a volume whose storage is gone loses
 *    its metadata; storage without metadata (a create cut short) is adopted as a volume, as
 *    Docker's local driver discovers its directories.
 * 4. What interrupted removals left is removed.
 */
import { unmountBelow } from "../mounting.ts";
import type { Drivers } from "./drivers.ts";
import type { NameLocks } from "./nameLocks.ts";
import type { VolumeStore } from "./volumeStore.ts";

/** What the volume restore did. Empty lists when there was nothing to do. */
export interface VolumeRestoreReport {
  /** Mount points unmounted. */
  unmounted: string[];
  /** References dropped, by volume (no refs: only an active-mount count was reset). */
  released: { volume: string; refs: string[] }[];
  /** Volumes forgotten because their storage is gone. */
  dropped: string[];
  /** Volumes found on storage without metadata, now known. */
  adopted: string[];
  /** Leftovers of interrupted removals, removed. */
  removed: string[];
}

/** What restore works on: the volume service's parts. */
export interface RestoreContext {
  home: string;
  store: VolumeStore;
  drivers: Drivers;
  locks: NameLocks;
}

/** Restores the volumes below `ctx.home`; see the module comment. */
export function restoreVolumes(ctx: RestoreContext): VolumeRestoreReport {
  const { home, store, drivers, locks } = ctx;
  const report: VolumeRestoreReport = { unmounted: [], released: [], dropped: [], adopted: [], removed: [] };

  report.unmounted = unmountBelow(home);

  const released = store.write(() => store.clearRefs());
  report.released = [...released].map(([volume, refs]) => ({ volume, refs })).sort((a, b) => (a.volume < b.volume ? -1 : 1));

  const known = new Map(store.read(() => store.all()).map((v) => [v.name, v.driver]));
  for (const driver of drivers.all()) {
    const found = new Set(driver.list());
    for (const [name, driverName] of known) {
      if (driverName !== driver.name || found.has(name)) continue;
      // Under the lock, a removal in progress has finished (or not begun) and no create makes
      // storage for a volume that has metadata.
      withLock(locks, name, () => {
        if (store.write(() => store.delete(name))) report.dropped.push(name);
      });
    }
    for (const name of found) {
      if (known.has(name)) continue;
      withLock(locks, name, () => {
        const d = driver.discovered(name);
        const adopted = store.write(() => {
          if (store.get(name)) return false; // a create finished meanwhile
          store.insert({ name, driver: driver.name, created: d.created, labels: {}, options: d.options });
          return true;
        });
        if (adopted) report.adopted.push(name);
      });
    }
    report.removed.push(...driver.cleanup());
  }
  report.dropped.sort();
  report.adopted.sort();
  return report;
}

/** Runs `fn` holding the lock of `name`; skips it when another process holds the lock. */
function withLock(locks: NameLocks, name: string, fn: () => void): void {
  const lock = locks.tryLock(name);
  if (!lock) return;
  try {
    fn();
  } finally {
    lock.release();
  }
}
