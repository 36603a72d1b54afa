/**
 * `stor restore`, run once at boot: everything an unclean shutdown can leave is put right, the
 * volume side and the snapshot side, and what was done is reported. Running it twice changes
 * nothing the second time.
 */
import { snapshotsDir, snapshotterDir, volumesDir } from "./layout.ts";
import { SNAPSHOTTER_NAMES, type Config } from "./config.ts";
import { unmountBelow } from "./mounting.ts";
import { restoreSnapshots, type SnapshotRestoreReport } from "./snapshot/restore.ts";
import type { VolumeRestoreReport } from "./volume/restore.ts";
import { VolumeService } from "./volume/service.ts";

/** What restore did. */
export interface RestoreReport {
  /** Mounts below the root, outside the volumes, that were left mounted and are now gone. */
  unmounted: string[];
  volumes: VolumeRestoreReport;
  snapshots: SnapshotRestoreReport[];
}

/** Restores everything below `config.root`. */
export async function restore(config: Config): Promise<RestoreReport> {
  const service = new VolumeService(config);
  let volumes: VolumeRestoreReport;
  try {
    volumes = await service.restore(); // unmounts what is left below the volumes root itself
  } finally {
    service.close();
  }
  // The directories an administrator may have put dedicated filesystems on stay mounted.
  const keep = [volumesDir(config.root), snapshotsDir(config.root), ...SNAPSHOTTER_NAMES.map((n) => snapshotterDir(config.root, n))];
  const unmounted = unmountBelow(config.root, keep);
  return { unmounted, volumes, snapshots: restoreSnapshots(config) };
}
