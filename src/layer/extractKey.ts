/**
 * The key of the active snapshot an unpack applies a layer into before committing it under its
 * chain ID: `extract-PID-MS-CHAINID`, unique among concurrent unpacks. An unpack killed (Ctrl-C,
 * SIGKILL, a crash) leaves it; stor has no garbage collector, so restore and cleanup remove one
 * whose unpack is gone.
 *
 * Whether it is gone is asked of a lock, not of the pid: the unpack holds a lock file named by the
 * key (layout.ts: `unpacks/`) from before the snapshot is made until it is committed or removed,
 * and the kernel lets go of it when the process dies, zombie or not. A pid says nothing from
 * another pid namespace (an unpack in a container sharing the root), nor once reused.
 */
import { extractClaimsDir } from "../layout.ts";
import { join } from "../path.ts";
import { lockEphemeral, type FileLock } from "../sys/file.ts";
import { listDir } from "../sys/dirent.ts";
import { errnoCode } from "../sys/libc.ts";
import { makeDirs, pathExists } from "../sys/pathCalls.ts";

const PATTERN = /^extract-\d+-\d+-/;

/** The key for the layer of `chainID`, for this process. */
export function extractKey(chainID: string): string {
  return `extract-${process.pid}-${Date.now()}-${chainID}`;
}

/**
 * Claims extract key `key` of the snapshotter at `home` for this process: held until released,
 * after the snapshot is committed or removed. Taken before the snapshot is made, so no cleanup
 * ever sees the snapshot unclaimed while its unpack runs.
 */
export function claimExtract(home: string, key: string): FileLock {
  const dir = extractClaimsDir(home);
  makeDirs(dir, 0o700);
  return lockEphemeral(claimPath(home, key)!)!;
}

/**
 * Where the claim of extract key `key` is: a file named by the key, in the claims' directory and
 * nowhere else. A key that holds a `/` is no unpack's (a chain ID has none) and has no claim: as a
 * path, `extract-1-2-x/../../metadata.db` would have named the snapshotter's database.
 */
function claimPath(home: string, key: string): string | undefined {
  return key.includes("/") ? undefined : join(extractClaimsDir(home), key);
}

/**
 * True when `key` is an unpack's and no live process claims it (see {@link claimExtract}). A key
 * is an unpack's by its claim file, not by its shape alone: `snapshot prepare extract-2024-01-work`
 * is a user's snapshot, which no cleanup may take. An unpack killed leaves its claim file (only
 * its release unlinks it); one whose file a power cut lost before it reached the disk leaves a
 * snapshot kept, never one taken.
 */
export function isAbandonedExtract(home: string, key: string): boolean {
  const path = PATTERN.test(key) ? claimPath(home, key) : undefined;
  if (path === undefined || !pathExists(path)) return false;
  const claim = lockEphemeral(path, false);
  if (!claim) return false; // held: its unpack runs
  claim.release(); // a dead unpack's file goes with it
  return true;
}

/**
 * Removes the claims no snapshot has and no live unpack holds, of the snapshotter at `home`: an
 * unpack killed after it claimed its key and before it made the snapshot leaves one, which
 * nothing else would ever remove. A lock file, as a volume's lock a killed process left: removed
 * without a word.
 */
export function removeOrphanClaims(home: string, has: (key: string) => boolean): void {
  let names;
  try {
    names = listDir(extractClaimsDir(home));
  } catch (err) {
    if (errnoCode(err) === "ENOENT") return;
    throw err;
  }
  for (const { name } of names) {
    const path = claimPath(home, name)!;
    if (!PATTERN.test(name) || has(name) || !pathExists(path)) continue;
    lockEphemeral(path, false)?.release(); // not held: its unpack is gone, and the release unlinks it
  }
}
