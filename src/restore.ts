/**
 * `stor restore`: everything an unclean shutdown can leave is put right, the volume side and the
 * snapshot side, and what was done (and left) is reported. Running it twice changes nothing the
 * second time.
 *
 * Restore knows whether it runs at boot: it records the kernel's boot id when it has done the
 * boot-time work, so the first run in a new boot unmounts leftovers and releases references of
 * unknown boot, and a later run in the same boot removes only what nothing can hold. It never
 * takes away what a live process holds: references taken in this boot stay (unless `force`), a
 * busy mount is never detached, and while a `stor serve` runs on the root (it holds
 * `serve.lock` shared for its whole life; restore cannot take it exclusively then) nothing
 * boot-time is done and `force` is refused.
 */
import { mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from "./nodeFs.ts";
import { join } from "./path.ts";
import { bootId, bootedAt } from "./boot.ts";
import type { Config } from "./config.ts";
import { PreconditionError } from "./errors.ts";
import { log } from "./log.ts";
import { LEGACY_VOLUME_DB, restoreBootFile, restoreLock, rootError, serveLock, snapshotDb, snapshotsDir, snapshotterDir, volumeDb, volumesDir } from "./layout.ts";
import { unmountBelow, type UnmountReport } from "./mounting.ts";
import { noRoom, withRoom } from "./spaceReserve.ts";
import { openVolumes } from "./services.ts";
import { SNAPSHOTTER_NAMES } from "./snapshot/registry.ts";
import { restoreSnapshots, type SnapshotRestoreReport } from "./snapshot/restore.ts";
import { fsyncDir, lockPath } from "./sys/file.ts";
import { mountsUsing, readMountInfo, treePath } from "./sys/mountinfo.ts";
import type { RestorePolicy, VolumeRestoreReport } from "./volume/restore.ts";

/** What restore did. */
export interface RestoreReport {
  /** Whether this run did the boot-time work (first run in this boot, or forced). */
  atBoot: boolean;
  /** Set when a `stor serve` runs on the root: nothing it may hold was touched. */
  serveRunning: boolean;
  /** Files of an older layout's volume database moved into place. */
  migrated: string[];
  /** Mounts of snapshots below the root, outside the volumes, that were left mounted and are now gone. */
  unmounted: string[];
  /** Such mounts left because a process uses them. */
  busy: string[];
  volumes: VolumeRestoreReport;
  snapshots: SnapshotRestoreReport[];
}

/** What `stor restore` is asked for. */
export interface RestoreOptions {
  /** Do the boot-time work on a live host, releasing this boot's references too. Dangerous. */
  force?: boolean;
}

/** Restores everything below `config.root`. */
export async function restore(config: Config, opts: RestoreOptions = {}): Promise<RestoreReport> {
  const boot = bootId();
  try {
    mkdirSync(config.root, { recursive: true, mode: 0o711 });
  } catch (err) {
    throw rootError(config.root, err);
  }
  // One restore at a time: another holding serve.lock is no serve.
  const turn = lockPath(restoreLock(config.root), { create: true })!;
  // Decided before anything is opened: opening a database may write it.
  const newBoot = isNewBoot(config.root, boot);
  const lock = lockPath(serveLock(config.root), { wait: false, create: true });
  const serveRunning = lock === undefined;
  try {
    if (opts.force && serveRunning) {
      throw new PreconditionError(`restore --force of ${config.root}`, "a stor serve is running on it (it holds serve.lock); stop it first");
    }
    const force = opts.force === true;
    if (force) log.warn("restore --force: references taken in this boot are released and unused volumes unmounted, whatever still relies on them (dangerous on a live host)");
    const policy: RestorePolicy = { boot, atBoot: !serveRunning && (force || newBoot), force };
    // A root without volumes has nothing of theirs to put right, and no volume store is made for it.
    let volumes = NO_VOLUMES;
    let migrated: string[] = [];
    if (statSync(volumesDir(config.root), { throwIfNoEntry: false })) {
      const service = await openVolumes(config, "write");
      try {
        volumes = await service.restore(policy);
        migrated = service.migrated;
      } finally {
        service.close();
      }
    }
    const rest: UnmountReport = policy.atBoot ? unmountSnapshotsBelow(config.root) : { unmounted: [], busy: [] };
    const snapshots = await restoreSnapshots(config);
    if (policy.atBoot) recordBoot(config.root, boot);
    return { atBoot: policy.atBoot, serveRunning, migrated, ...rest, volumes, snapshots };
  } finally {
    lock?.release();
    turn.release();
  }
}

/** The volume side of a root that has no volumes. */
const NO_VOLUMES: VolumeRestoreReport = { unmounted: [], busy: [], leftMounted: [], released: [], kept: [], dropped: [], adopted: [], removed: [], unreachable: [] };

/**
 * Unmounts the mounts of snapshots below `root`, outside the volumes (the volume restore's): what
 * stor mounts there (`stor mount` to a target below the root). Anything else is an
 * administrator's, as are the directories they may have put dedicated filesystems on, and stays.
 */
function unmountSnapshotsBelow(root: string): UnmountReport {
  // Mounts of snapshots (a bind of one's tree, an overlay of their layers): not one an
  // administrator put on a directory inside a snapshot, from elsewhere, which stays as a disk on a
  // volume's data does. Asked as of another namespace's mounts: by source, not by mount point.
  const tree = treePath(snapshotsDir(root));
  const mounts = readMountInfo();
  const snapshotMounts = new Set(tree === undefined ? [] : mountsUsing(tree, mounts, mounts).map((m) => m.mountPoint));
  const own = [snapshotsDir(root), ...SNAPSHOTTER_NAMES.map((n) => snapshotterDir(root, n))];
  const vols = volumesDir(root);
  return unmountBelow(root, (mp) => !snapshotMounts.has(mp) || own.includes(mp) || mp === vols || mp.startsWith(`${vols}/`));
}

/**
 * True when restore has not done its boot-time work in boot `boot`. A root with no record (new,
 * or kept by an older stor) is taken to be at boot only if none of its metadata changed since the
 * kernel booted: otherwise something used it in this boot and may hold what it took.
 */
function isNewBoot(root: string, boot: string): boolean {
  const last = lastBoot(root);
  if (last !== undefined) return last !== boot;
  const booted = bootedAt();
  const databases = [...storeDatabases(root), join(volumesDir(root), LEGACY_VOLUME_DB)];
  return !databases.flatMap((db) => [db, `${db}-wal`]).some((f) => (statSync(f, { throwIfNoEntry: false })?.mtimeMs ?? 0) > booted);
}

/** The boot id restore last did the boot-time work in, if any. */
function lastBoot(root: string): string | undefined {
  try {
    return readFileSync(restoreBootFile(root), "utf8").trim();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
}

/**
 * Records `boot` durably: a crash before it makes the next run do the boot-time work again. On a
 * disk out of inodes or blocks (as a host often boots after filling it), the new file is made in
 * the room of a store's reserve: the volumes', else a snapshotter's.
 */
function recordBoot(root: string, boot: string): void {
  const file = restoreBootFile(root);
  const store = storeDatabases(root).find((db) => statSync(db, { throwIfNoEntry: false })) ?? volumeDb(root);
  withRoom(store, noRoom, () => writeFileSync(`${file}.tmp`, `${boot}\n`, { mode: 0o644, flush: true }));
  renameSync(`${file}.tmp`, file);
  fsyncDir(root);
}

/** The database of every store a root may have: the volumes', then each snapshotter's. */
function storeDatabases(root: string): string[] {
  return [volumeDb(root), ...SNAPSHOTTER_NAMES.map((n) => snapshotDb(root, n))];
}
