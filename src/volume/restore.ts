/**
 * The volume part of `stor restore`. What an unclean shutdown left is put right, as dockerd's
 * volume store does when it starts; what a live process may hold is left alone. Running it again
 * changes nothing.
 *
 * 1. References: one taken in an earlier boot is held by nothing alive, and goes; one of unknown
 *    boot (taken by an older stor) goes only at boot time; one of this boot only with `force`;
 *    and neither while a process uses the volume's data.
 * 2. A driver's mount of a volume's data: a volume that keeps a reference keeps it; the others
 *    are unmounted at boot time (else reported), under the volume's lock; a busy one is never
 *    taken away. Mounts that are not a driver's own stay.
 * 3. Each driver's storage is compared with the metadata: a volume whose storage is gone loses
 *    its metadata; storage of stor's own without metadata (a create cut short) is adopted as a
 *    volume, with the labels its driver kept, as Docker's local driver discovers its
 *    directories. A plugin is told of each reference released (its Unmount); one that cannot be
 *    asked keeps its volumes' metadata untouched, and is reported.
 * 4. What interrupted creates and removals left is removed, and the lock files of processes
 *    killed while they held them.
 */
import { existsSync, realpathSync } from "../nodeFs.ts";
import { describe } from "../errors.ts";
import { failpoint } from "../failpoint.ts";
import { Errno, SysError } from "../sys/libc.ts";
import { ProcessTable, type ProcessUse } from "../sys/processes.ts";
import { mountsUnder } from "../sys/mountinfo.ts";
import type { DiscoveredVolume, Drivers } from "./drivers.ts";
import type { NameLocks } from "./nameLocks.ts";
import type { VolumeStore } from "./volumeStore.ts";

/** How far restore may go; decided once for the whole root. */
export interface RestorePolicy {
  /** This boot's id. */
  boot: string;
  /** Boot-time work: unmount leftovers, release references of unknown boot. */
  atBoot: boolean;
  /** Release this boot's references too (`restore --force`). */
  force: boolean;
}

/** References by volume. */
export interface VolumeRefs {
  volume: string;
  refs: string[];
}

/** References kept, and the processes found using the volume's data (none: taken in this boot). */
export interface KeptRefs extends VolumeRefs {
  users: ProcessUse[];
}

/** What the volume restore did and left. Empty lists when there was nothing to do. */
export interface VolumeRestoreReport {
  /** Mount points unmounted. */
  unmounted: string[];
  /** Mount points left because a process uses them. */
  busy: string[];
  /** Mount points of unreferenced volumes, left because this is not boot time. */
  leftMounted: string[];
  /** References dropped, by volume (no refs: only an active-mount count was reset). */
  released: VolumeRefs[];
  /** References kept, by volume: taken in this boot, of unknown boot outside boot time, or in use. */
  kept: KeptRefs[];
  /** Volumes forgotten because their storage is gone. */
  dropped: string[];
  /** Volumes found on storage without metadata, now known. */
  adopted: string[];
  /** Leftovers of interrupted creates and removals, removed. */
  removed: string[];
  /** Plugins that could not be asked (or failed an Unmount), with why: their volumes' metadata is kept as it is. */
  unreachable: { driver: string; error: string }[];
}

/** What restore works on: the volume service's parts. */
export interface RestoreContext {
  home: string;
  store: VolumeStore;
  drivers: Drivers;
  locks: NameLocks;
}

const byVolume = (m: Map<string, string[]>): VolumeRefs[] => [...m].map(([volume, refs]) => ({ volume, refs })).sort((a, b) => (a.volume < b.volume ? -1 : 1));

/** Restores the volumes below `ctx.home` as `policy` allows; see the module comment. */
export async function restoreVolumes(ctx: RestoreContext, policy: RestorePolicy): Promise<VolumeRestoreReport> {
  const { home, store, drivers, locks } = ctx;
  const report: VolumeRestoreReport = { unmounted: [], busy: [], leftMounted: [], released: [], kept: [], dropped: [], adopted: [], removed: [], unreachable: [] };

  // References that may be live (of unknown boot, or this boot's) stay while a process uses the
  // volume's data, whatever restore was asked: /proc says so, not the reference's name.
  // Only the references looked at here may go: one taken after the look (a `volume mount`
  // meanwhile, whose process /proc did not show yet) stays.
  const inUse = new Map<string, ProcessUse[]>();
  const stale = store.read(() => store.staleRefs(policy.boot, policy.atBoot, policy.force));
  if (policy.atBoot || policy.force) {
    const processes = new ProcessTable();
    const all = new Map(store.read(() => store.all()).map((v) => [v.name, v]));
    for (const name of stale.keys()) {
      const driver = drivers.find(all.get(name)!.driver);
      // A plugin's data is the plugin's to watch over.
      const data = driver?.ownsStorage ? driver.path(name) : undefined;
      const users = data && existsSync(data) ? processes.usersOf(realpathSync(data)) : [];
      if (users.length > 0) inUse.set(name, users);
    }
  }
  failpoint("restore:refs-looked");
  report.released = byVolume(store.write(() => store.releaseRefs(policy.boot, policy.atBoot, policy.force, stale, [...inUse.keys()])));
  const known = store.read(() => store.all());
  report.kept = known.filter((v) => v.refs.length > 0).map((v) => ({ volume: v.name, refs: v.refs, users: inUse.get(v.name) ?? [] }));

  // A driver's own mount of a volume without references: a process killed between its mount and
  // its reference left it (nothing mounted outlives a boot). Any other mount below the volumes, a
  // disk an administrator put on a volume's data, is not stor's, and stays.
  const mountPoints = new Set(mountsUnder(home).map((m) => m.mountPoint));
  const leftovers = new Map<string, string>();
  for (const v of known) {
    const driver = v.refs.length === 0 ? drivers.find(v.driver) : undefined;
    if (driver?.ownsStorage && mountPoints.has(driver.path(v.name)) && driver.mountsDevice(v.name)) leftovers.set(v.name, driver.path(v.name));
  }
  if (policy.atBoot) {
    // Under each volume's lock: a `volume mount` under way has mounted but not yet recorded its reference.
    await locks.inBatches([...leftovers.keys()], false, async (names) => {
      for (const name of names) {
        const v = store.read(() => store.get(name));
        const path = leftovers.get(name)!;
        leftovers.delete(name);
        if (!v || v.refs.length > 0) continue; // a mount finished meanwhile: its reference holds it
        try {
          await drivers.find(v.driver)!.unmount(name, "", 1);
          report.unmounted.push(path);
        } catch (err) {
          if (!(err instanceof SysError && err.errno === Errno.EBUSY)) throw err;
          report.busy.push(path);
        }
      }
    });
    // What is left was locked: a command is at work on the volume.
    report.busy.push(...leftovers.values());
  } else {
    report.leftMounted = [...leftovers.values()];
  }
  const held = new Set(report.kept.map((k) => k.volume));

  const driverOf = new Map(known.map((v) => [v.name, v.driver]));
  // A plugin counts references of its own: each one released is its Unmount (never a Remove,
  // whatever its scope), as when the reference ends. One failure is enough to report a plugin.
  const failed = new Map<string, string>();
  for (const { volume, refs } of report.released) {
    const owner = driverOf.get(volume)!;
    if (drivers.builtin(owner) || failed.has(owner)) continue;
    try {
      const driver = await drivers.get(owner);
      for (const ref of refs) await driver.unmount(volume, ref, 0);
    } catch (err) {
      failed.set(owner, describe(err));
    }
  }
  for (const driverName of new Set([...drivers.all().map((d) => d.name), ...driverOf.values()])) {
    let driver;
    let found;
    try {
      if (failed.has(driverName)) continue;
      driver = await drivers.get(driverName);
      found = new Set((await driver.list()).map((l) => l.name));
    } catch (err) {
      failed.set(driverName, describe(err));
      continue;
    }
    // A volume with references stays whatever its driver lists: something holds it.
    const gone = [...driverOf].filter(([name, owner]) => owner === driver.name && !found.has(name) && !held.has(name)).map(([name]) => name);
    // Under the lock, a removal in progress has finished (or not begun) and no create makes
    // storage for a volume that has metadata. The listing and the records read before are looked
    // at again there: a volume removed and made again (and mounted) since then has storage, or
    // references, or another driver, and stays.
    await locks.inBatches(gone, false, async (names) => {
      let there: Set<string>;
      try {
        there = new Set((await driver.list(names)).map((l) => l.name));
      } catch (err) {
        return void failed.set(driver.name, describe(err)); // its volumes' records stay as they are
      }
      report.dropped.push(
        ...store.write(() =>
          store
            .all(names)
            .filter((v) => v.driver === driver.name && v.refs.length === 0 && !there.has(v.name) && store.delete(v.name))
            .map((v) => v.name),
        ),
      );
    });
    // Storage without metadata is a create cut short only where the storage is stor's own.
    const orphans = driver.ownsStorage ? [...found].filter((name) => !driverOf.has(name)) : [];
    await locks.inBatches(orphans, false, async (names) => {
      const discovered: DiscoveredVolume[] = [];
      // Listed again under the locks: a volume made and removed since the listing has no storage to adopt.
      for (const { name } of await driver.list(names)) discovered.push(await driver.discovered(name));
      // One transaction a batch: a crash before it commits leaves the same orphans to adopt again.
      report.adopted.push(
        ...store.write(() =>
          discovered
            .filter((d) => !store.get(d.name)) // a create finished meanwhile
            .map((d) => {
              store.insert({ name: d.name, driver: driver.name, created: d.created, labels: d.labels ?? {}, options: d.options });
              return d.name;
            }),
        ),
      );
    });
    report.removed.push(...driver.cleanup());
  }
  locks.sweep();
  report.unreachable = [...failed].map(([driver, error]) => ({ driver, error }));
  report.dropped.sort();
  report.adopted.sort();
  report.removed.sort();
  return report;
}
