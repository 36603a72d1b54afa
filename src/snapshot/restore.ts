/**
 * The snapshot half of `stor restore`: after a crash or a reboot, bring every snapshotter's
 * directories back in line with its metadata, and say plainly when a database is damaged.
 */
import type { Config } from "../config.ts";
import { causedBy } from "../db.ts";
import { describe, exitCodeOf, type ExitCode } from "../errors.ts";
import { isAbandonedExtract, removeOrphanClaims } from "../layer/extractKey.ts";
import { APPLY_TRASH_PREFIX } from "../layout.ts";
import { basename } from "../path.ts";
import { openSnapshots, usedSnapshotters } from "../services.ts";
import type { SnapshotService } from "./service.ts";

/** What restore found and did for one snapshotter. */
export interface SnapshotRestoreReport {
  snapshotter: string;
  /** Snapshots listed in the metadata. */
  snapshots: number;
  /** Directories removed because no snapshot owns them. */
  removed: string[];
  /** Snapshots removed because the unpack that made them is gone. */
  abandoned: string[];
  /** The trash directories of killed applies, whose changes were undone from them. */
  undone: string[];
  /** Set when the metadata database is damaged: nothing was removed then. */
  damaged?: string;
  /** Set when the snapshotter could not be restored for another reason (its database busy, a disk error): nothing was removed then either. */
  failed?: { why: string; code: ExitCode };
}

/** Restores every snapshotter that has metadata below `config.root`. */
export async function restoreSnapshots(config: Config): Promise<SnapshotRestoreReport[]> {
  const reports: SnapshotRestoreReport[] = [];
  for (const name of await usedSnapshotters(config)) {
    let service: SnapshotService | undefined;
    try {
      service = await openSnapshots(config, { access: "write", snapshotter: name, checkSupport: false });
      const check = service.checkMetadata();
      if (check !== "ok") {
        // Removing directories on the word of a damaged database could destroy good snapshots.
        reports.push({ snapshotter: name, snapshots: 0, removed: [], abandoned: [], undone: [], damaged: check });
        continue;
      }
      const { abandoned, removed, undone } = removeLeftovers(service);
      reports.push({ snapshotter: name, snapshots: service.summaries().length, removed, abandoned, undone });
    } catch (err) {
      // Damaged only when SQLite says so: a database another stor holds the write lock of (one
      // stopped in its transaction) is busy, and an operator told "damaged" might restore a backup.
      const why = describe(err);
      if (causedBy(err, "SQLITE_CORRUPT", "SQLITE_NOTADB")) reports.push({ snapshotter: name, snapshots: 0, removed: [], abandoned: [], undone: [], damaged: why });
      else reports.push({ snapshotter: name, snapshots: 0, removed: [], abandoned: [], undone: [], failed: { why, code: exitCodeOf(err) } });
    } finally {
      service?.close();
    }
  }
  return reports;
}


/**
 * Removes what interrupted work left of `service`'s snapshots: the snapshots of unpacks that are
 * gone (their keys) and the claims of those killed before they made one, then the directories no
 * snapshot owns and the trash of killed applies, whose changes are undone first (their names).
 * `snapshot cleanup`, restore and serve's start alike.
 */
export function removeLeftovers(service: SnapshotService): { abandoned: string[]; removed: string[]; undone: string[] } {
  const abandoned = service.removeAbandoned((key) => isAbandonedExtract(service.home, key));
  removeOrphanClaims(service.home, (key) => service.has(key));
  const removed: string[] = [];
  const undone: string[] = [];
  for (const name of service.cleanup()) (basename(name).startsWith(APPLY_TRASH_PREFIX) ? undone : removed).push(name);
  return { abandoned, removed, undone };
}
