/**
 * The one way to open stor's services, for the CLI, `df`, `restore` and serve's threads alike.
 * Each service's code loads when it is first opened, so a volume command does not load the
 * snapshotters and a snapshot command does not load the volume drivers (see src/cli/commands.ts).
 * Loaded with `import()`, not `require()`: a required chunk took twice as long to load.
 *
 * `access` says what the command does. To `write`, the root and the databases are made as needed.
 * To `read` (ls, info, inspect, df…), nothing is created: a missing root is not found, and a store
 * never used lists as empty.
 */
import { makeDirs, pathExists, statPath, touchFile } from "./sys/pathCalls.ts";
import { dirname } from "./path.ts";
import type { Config } from "./config.ts";
import { smallBlocks, type Access as StoreAccess } from "./db.ts";
import { InvalidArgumentError, NotFoundError, PreconditionError } from "./errors.ts";
import { restoreLock, rootError, serveLock, snapshotDb, snapshotsDir, snapshotterDir, volumeDb, volumeMetaDir } from "./layout.ts";
import { log } from "./log.ts";
import { trace } from "./trace.ts";
import type { SnapshotterName } from "./snapshot/registry.ts";
import type { SnapshotService } from "./snapshot/service.ts";
import type { Snapshotter } from "./snapshot/snapshotter.ts";
import type { VolumeService, ServiceOptions } from "./volume/service.ts";
import type { PluginStatus } from "./volume/pluginDriver.ts";

/**
 * What a command does with a service's store: `read` and `write` as src/db.ts opens a database
 * (to write, the root and the store are made as needed), or `change`: it writes only to what is
 * there (rm, commit, label, apply, prune, cleanup, a volume's mount and unmount). A store not made
 * yet is then opened to read: there is nothing in it to change, so a name that is not there is
 * not found, and nothing is made for it, nor a root for a mistyped `--root` (not found, as a read).
 */
export type Access = StoreAccess | "change";

/** What {@link openSnapshots} opens. */
export interface SnapshotsRequest {
  access: Access;
  /** The snapshotter as the user named it; else the configured default, else the first supported. */
  snapshotter?: string;
  /**
   * Refuse to create snapshots with a snapshotter the kernel or filesystem cannot run (default
   * true). restore turns it off: removing leftovers needs no mounts.
   */
  checkSupport?: boolean;
  /**
   * A snapshot the command needs to exist (a prepare's parent): where the snapshotter has no
   * metadata yet it cannot, and it is not found before anything is made.
   */
  needs?: string;
  /** The caller is containerd, through stor serve: keys of containerd's shape are its to make. */
  forContainerd?: boolean;
}

/** Opens the snapshot service of one snapshotter. */
export async function openSnapshots(config: Config, req: SnapshotsRequest): Promise<SnapshotService> {
  const { SNAPSHOTTER_NAMES, SNAPSHOTTERS, snapshotterName } = await import("./snapshot/registry.ts");
  const { SnapshotService, loadForWriting } = await import("./snapshot/service.ts");
  // To write, with the code its writes may run (see src/lazy.ts).
  const open = async (snapshotter: Snapshotter, opts: ConstructorParameters<typeof SnapshotService>[3]) => {
    // A change without -s: the snapshotter chosen may have no store where another has one.
    const as = access === "write" && req.access === "change" && named === undefined && !hasMetadata(config.root, [snapshotter.name]) ? "read" : access;
    if (as === "write") await loadForWriting(snapshotter);
    const service = new SnapshotService(config.root, snapshotter, as, opts);
    if (as === "write" && probe !== snapshotsDir(config.root)) makeRootLocks(config.root);
    return service;
  };
  const chosen = req.snapshotter ?? config.defaultSnapshotter;
  // The name is checked before the root is looked at, or made: an unknown one creates nothing.
  const named = chosen === undefined ? undefined : SNAPSHOTTERS[snapshotterName(chosen)];
  const made = () => hasMetadata(config.root, named ? [named.name] : SNAPSHOTTER_NAMES);
  if (req.needs !== undefined && req.access === "write" && !made()) throw new NotFoundError(`parent snapshot "${req.needs}"`);
  const access = req.access === "change" ? (made() ? "write" : "read") : req.access;
  // The service makes the directories, once the snapshotter is known to run there.
  const probe = prepareRoot(config.root, access, snapshotsDir(config.root));
  trace("root check");
  if (named === undefined) {
    for (const name of SNAPSHOTTER_NAMES) {
      const why = SNAPSHOTTERS[name].unsupported(snapshotterDir(config.root, name), probe);
      if (why !== undefined) {
        log.info(`snapshotter ${name} unusable: ${why}`);
        continue;
      }
      return await open(SNAPSHOTTERS[name], { forContainerd: req.forContainerd });
    }
    throw new PreconditionError(`root ${config.root}`, "no snapshotter can run here");
  }
  // Reading metadata needs no kernel feature: `ls` works wherever the files are. Writing checks
  // when it creates a snapshot (see SnapshotService).
  const check = access === "write" && req.checkSupport !== false;
  return await open(named, { probe: check ? probe : undefined, forContainerd: req.forContainerd });
}

/**
 * How a command that changes volumes opens their store: to write where it is made (in an older
 * layout too, or where that cannot be told), or where a plugin is there, whose volumes Docker
 * records when they are used; else to read.
 */
async function volumeChangeAccess(config: Config, opts?: ServiceOptions): Promise<StoreAccess> {
  try {
    if (statPath(config.root)?.isDirectory === false || pathExists(volumeDb(config.root))) return "write";
    if ((await import("./volume/legacyLayout.ts")).unmigratedVolumeDb(config.root) !== undefined) return "write";
  } catch {
    return "write";
  }
  const asksPlugins = opts?.askPlugins !== false;
  return asksPlugins && (await import("./volume/pluginDiscovery.ts")).scanPlugins(config.plugins.dirs).length > 0 ? "write" : "read";
}

/**
 * Whether any of snapshotters `names` has metadata below `root`; true where that cannot be told (a
 * file where the root should be), for the opening to say why.
 */
function hasMetadata(root: string, names: readonly string[]): boolean {
  try {
    if (statPath(root)?.isDirectory === false) return true;
    let made = false;
    for (const name of names) made ||= pathExists(snapshotDb(root, name));
    return made;
  } catch {
    return true;
  }
}

/** The snapshotters that have metadata below the root: the ones restore repairs. */
export async function usedSnapshotters(config: Config): Promise<SnapshotterName[]> {
  const { SNAPSHOTTER_NAMES } = await import("./snapshot/registry.ts");
  return SNAPSHOTTER_NAMES.filter((name) => pathExists(snapshotDb(config.root, name)));
}

/** Opens the volume service. */
export async function openVolumes(config: Config, asked: Access, opts?: ServiceOptions): Promise<VolumeService> {
  const access = asked === "change" ? await volumeChangeAccess(config, opts) : asked;
  const probe = prepareRoot(config.root, access, volumeMetaDir(config.root));
  trace("root check");
  const { VolumeService } = await import("./volume/service.ts");
  const service = new VolumeService(config, access, opts);
  if (access === "write" && probe !== volumeMetaDir(config.root)) makeRootLocks(config.root);
  return service;
}

/**
 * Makes the root's lock files, with its first store, where missing: the first `stor restore` then
 * finds them, on a disk out of inodes too (the store's reserve gives back one inode, and restore
 * would need two).
 */
function makeRootLocks(root: string): void {
  try {
    for (const lock of [serveLock(root), restoreLock(root)]) touchFile(lock, 0o600);
  } catch (err) {
    throw rootError(root, err);
  }
}

/**
 * The volume plugins in the configured plugin directories, and whether each answers now (one
 * attempt each). Asks no store: listing plugins reads and makes nothing below the root.
 */
export async function volumePlugins(config: Config): Promise<PluginStatus[]> {
  return (await import("./volume/pluginDriver.ts")).pluginStatuses({ ...config.plugins, retryMs: 0 });
}

/**
 * Checks the root for `access` and returns where to probe the filesystem: `dir` when it exists;
 * else, to read, the root, and to write, the nearest of its parents that exists, on the
 * filesystem `dir` will be made on. Nothing is made: a snapshotter refused there leaves nothing,
 * and neither does a store refused for its filesystem's blocks (see smallBlocks).
 */
function prepareRoot(root: string, access: StoreAccess, dir: string): string {
  if (access === "write") {
    try {
      let probe = dir;
      let st = statPath(probe);
      for (; st === undefined; st = statPath(probe)) probe = dirname(probe);
      if (!st.isDirectory) makeDirs(dir, 0o711); // fails, saying why: a file where a directory goes
      // A store to be made: refused here, before anything is (openDatabase checks again).
      const why = probe === dir ? undefined : smallBlocks(probe);
      if (why) throw new PreconditionError(`root ${root}`, why);
      return probe;
    } catch (err) {
      if (err instanceof PreconditionError) throw err;
      throw rootError(root, err);
    }
  }
  let st;
  try {
    st = statPath(root);
  } catch (err) {
    throw rootError(root, err); // a file above the root
  }
  if (!st) throw new NotFoundError(`root ${root}`);
  if (!st.isDirectory) throw new InvalidArgumentError(`root ${root}`, "is not a directory");
  return pathExists(dir) ? dir : root;
}
