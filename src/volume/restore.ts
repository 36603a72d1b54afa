/**
 * The volume part of `stor restore`, run once at boot: what an unclean shutdown left is put
 * right, as dockerd's volume store does when it starts. Running it again changes nothing.
 *
 * 1. Whatever is mounted under the volumes root is unmounted: after a boot no reference holds a
 *    volume, and a mount left by a crash would otherwise be taken for an active one.
 * 2. Every reference and active-mount count is dropped, for the same reason.
 * 3. Each driver's storage is compared with the metadata: a volume whose storage is gone loses
 *    its metadata; storage of stor's own without metadata (a create cut short) is adopted as a
 *    volume, as Docker's local driver discovers its directories. A plugin that cannot be asked
 *    keeps its volumes' metadata untouched, and is reported.
 * 4. What interrupted removals left is removed.
 */
import { describe } from "../errors.ts";
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
  /** Drivers that could not be asked, with why: their volumes' metadata is kept as it is. */
  unreachable: { driver: string; error: string }[];
}

/** What restore works on: the volume service's parts. */
export interface RestoreContext {
  home: string;
  store: VolumeStore;
  drivers: Drivers;
  locks: NameLocks;
}

/** Restores the volumes below `ctx.home`; see the module comment. */
export async function restoreVolumes(ctx: RestoreContext): Promise<VolumeRestoreReport> {
  const { home, store, drivers, locks } = ctx;
  const report: VolumeRestoreReport = { unmounted: [], released: [], dropped: [], adopted: [], removed: [], unreachable: [] };

  report.unmounted = unmountBelow(home);

  const released = store.write(() => store.clearRefs());
  report.released = [...released].map(([volume, refs]) => ({ volume, refs })).sort((a, b) => (a.volume < b.volume ? -1 : 1));

  const known = new Map(store.read(() => store.all()).map((v) => [v.name, v.driver]));
  for (const driverName of new Set([...drivers.all().map((d) => d.name), ...known.values()])) {
    let driver;
    let found;
    try {
      driver = await drivers.get(driverName);
      found = new Set((await driver.list()).map((l) => l.name));
    } catch (err) {
      report.unreachable.push({ driver: driverName, error: describe(err) });
      continue;
    }
    for (const [name, owner] of known) {
      if (owner !== driver.name || found.has(name)) continue;
      // Under the lock, a removal in progress has finished (or not begun) and no create makes
      // storage for a volume that has metadata.
      await withLock(locks, name, () => {
        if (store.write(() => store.delete(name))) report.dropped.push(name);
      });
    }
    for (const name of found) {
      if (known.has(name) || !driver.ownsStorage) continue;
      await withLock(locks, name, async () => {
        const d = await driver.discovered(name);
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
async function withLock(locks: NameLocks, name: string, fn: () => void | Promise<void>): Promise<void> {
  const lock = locks.tryLock(name);
  if (!lock) return;
  try {
    await fn();
  } finally {
    lock.release();
  }
}
