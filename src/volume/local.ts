/**
 * The local driver, as Docker's: volume `<name>` is the directory `<home>/<name>` (mode 0701,
 * so other users reach nothing but what they are given a path to) holding the data in `_data`,
 * its options in `opts.json` and, where it has any, the labels it was created with in
 * `labels.json` (Docker keeps labels in its database only; stor keeps them with the storage too,
 * so a volume adopted after a create cut short has them). With a type or device, the first
 * active mount mounts the device on `_data` and the last unmounts it. `size` without a mount is a project quota on
 * `_data` where the backing filesystem enforces project quotas.
 */
import { readdirSync, statSync } from "../nodeFs.ts";
import { utf8Bytes } from "../fileName.ts";
import { join } from "../path.ts";
import { PreconditionError, StorError, describe, exitCodeOf } from "../errors.ts";
import { log } from "../log.ts";
import { failpoint } from "../failpoint.ts";
import type { RemoveThreads } from "../fs/removeThread.ts";
import { listDir } from "../sys/dirent.ts";
import { fsyncDir, lockPath } from "../sys/file.ts";
import { chmodPath, makeDir as makeDirectory, makeTempDir, pathExists, readText, removeDir, removeFile, renameAway, renamePath, statPath, writeNewFile } from "../sys/pathCalls.ts";
import { Errno, SysError, errnoCode } from "../sys/libc.ts";
import { redactOptionList } from "../redact.ts";
import { rfc3339 } from "../timefmt.ts";
import { stringMap } from "../stringMap.ts";
import type { DiscoveredVolume, DriverContext, ListedVolume, OwnStorageDriver } from "./drivers.ts";
import { fromOptsConfig, mountOf, needsMount, toOptsConfig, validateOptions, type OptsConfig } from "./localOptions.ts";
import { isVolumeName } from "./name.ts";
import type { VolumeStore } from "./volumeStore.ts";
import { Lazy, treeRemoval } from "../lazy.ts";

// Loaded when first used: the create, inspect or ls of a volume without options needs none of
// them. What needs them loads them ahead (see src/lazy.ts): a removal (loadRemoval), a create
// with options, a mount.
const mounts = new Lazy(() => import("../sys/mount.ts"), () => require("../sys/mount.ts") as typeof import("../sys/mount.ts"));
const mountinfo = new Lazy(() => import("../sys/mountinfo.ts"), () => require("../sys/mountinfo.ts") as typeof import("../sys/mountinfo.ts"));
const quota = new Lazy(() => import("../sys/quota.ts"), () => require("../sys/quota.ts") as typeof import("../sys/quota.ts"));

/** Loads ahead, with `import()`, what removing a local volume runs: the service does, before an rm or a prune. */
export async function loadRemoval(): Promise<void> {
  await Promise.all([treeRemoval.load(), mounts.load()]);
}

const DATA = "_data";
const OPTS_FILE = "opts.json";
const LABELS_FILE = "labels.json";
/** Where a removed volume's directory goes before it is deleted; never a valid volume name. */
const TRASH_PREFIX = ".rm-";
/** Where a new volume's directory is built before it takes its name; never a valid volume name. */
const NEW_PREFIX = ".new-";

/** The local driver over the volumes root `home`. */
export class LocalDriver implements OwnStorageDriver {
  readonly name = "local";
  readonly scope = "local";
  readonly ownsStorage = true as const;
  readonly #home: string;
  readonly #store: VolumeStore;

  constructor(ctx: DriverContext) {
    this.#home = ctx.home;
    this.#store = ctx.store;
  }

  path(name: string): string {
    return join(this.storage(name), DATA);
  }

  storage(name: string): string {
    return join(this.#home, name);
  }

  async create(name: string, options: Record<string, string>, labels: Record<string, string>): Promise<void> {
    const given = Object.keys(options).length > 0;
    if (given) await quota.load();
    validateOptions(`volume "${name}"`, options, () => quota.get().projectQuotaEnforced(this.#home));
    const config = given ? toOptsConfig(options) : undefined;
    const root = join(this.#home, name);
    // A directory already there has no metadata (the service checked): a leftover no create of
    // this stor makes. It becomes the volume, data and all, as Docker's, its options written in it.
    if (directoryThere(root)) return this.#build(root, name, config, labels, false);
    // Held (shared) while the new volume is unfinished, so cleanup never takes it for a leftover.
    const building = lockPath(this.#home, { shared: true })!;
    try {
      // Built whole under a name no volume has, then renamed to its own: a crash leaves either
      // no volume or the volume with its options and labels, never one restore would adopt without.
      const temp = makeTempDir(join(this.#home, NEW_PREFIX));
      try {
        chmodPath(temp, 0o701);
        this.#build(temp, name, config, labels, true);
        failpoint("volume-create:built");
        renamePath(temp, root);
      } catch (err) {
        treeRemoval.get().removeTree(temp);
        // Nothing holds the project reserved for it now. (A directory already there keeps its own.)
        if (config && config.Quota.Size > 0) this.#store.freeing(() => this.#store.releaseProject(name));
        throw err;
      }
      fsyncDir(this.#home); // the directory is durable before the metadata that names it
    } finally {
      building.release();
    }
  }

  /**
   * Makes volume directory `dir` hold `name`'s data, its options and labels, and puts the data
   * under its size limit; `fresh`: `dir` is a new one, built under a temporary name.
   */
  #build(dir: string, name: string, config: OptsConfig | undefined, labels: Record<string, string>, fresh: boolean): void {
    const data = join(dir, DATA);
    makeDir(data, 0o755);
    failpoint("volume-create:data");
    writeVolumeFile(dir, OPTS_FILE, config && JSON.stringify(config), fresh);
    writeVolumeFile(dir, LABELS_FILE, Object.keys(labels).length > 0 ? JSON.stringify(labels) : undefined, fresh);
    const bytes = config?.Quota.Size ?? 0;
    if (bytes > 0 || !fresh) this.#project(name, data, bytes);
  }

  /**
   * Puts `data`, volume `name`'s data, in a project of its own limited to `bytes` (0: none). Data
   * that has a project already (a directory taken over: a killed create's) keeps it, limited as
   * now asked; without a size it leaves it, so no limit stays hidden. New data takes an id that
   * this root gave no volume and that nothing on the filesystem is in: another root's volumes, a
   * volume restore adopted, a removal's trash still holding files.
   */
  #project(name: string, data: string, bytes: number): void {
    const { projectId, projectIdIfAny, projectInUse, setProjectId, setProjectLimit } = quota.get();
    // Project ids above the root's own, as Docker does: an administrator may give the root one.
    const home = projectId(this.#home);
    const own = bytes > 0 ? projectId(data) : projectIdIfAny(data);
    if (own !== undefined && own !== home) {
      if (bytes === 0) {
        // What is in it already stays counted in that project, now unlimited: the id is not
        // handed out again while it is there.
        setProjectId(data, home, false);
        setProjectLimit(this.#home, own, 0);
        this.#store.write(() => this.#store.releaseProject(name));
        return;
      }
      if (this.#store.write(() => this.#store.claimProject(name, own))) return setProjectLimit(this.#home, own, bytes);
    }
    if (bytes === 0) return;
    for (let min = home + 1; ; ) {
      const id = this.#store.write(() => this.#store.reserveProject(name, min));
      if (!projectInUse(this.#home, id)) {
        setProjectId(data, id);
        setProjectLimit(this.#home, id, bytes);
        return;
      }
      this.#store.write(() => this.#store.releaseProject(name));
      min = id + 1;
    }
  }

  remove(name: string): void {
    const { failed } = this.removeAll([name]);
    if (failed.length > 0) throw failed[0]![1];
  }

  /**
   * Removes the storage of volumes `names` as one: each renamed into one trash directory, then
   * one sync of the volumes root for all (prune of thousands costs one, not one each), then the
   * trash deleted, by `remover` when given (`gone` resolves when it has). Returns the names whose
   * storage is gone for good and, for the others, why not.
   */
  removeAll(names: readonly string[], remover?: RemoveThreads): { removed: string[]; failed: [string, unknown][]; gone: Promise<void> } {
    const removed: string[] = [];
    const failed: [string, unknown][] = [];
    const quotas: string[] = [];
    // Held (shared) while the trash exists, so cleanup never takes a removal in progress for a leftover.
    const removing = lockPath(this.#home, { shared: true })!;
    let gone = Promise.resolve();
    try {
      // One trash for all: a directory of its own per volume would be made and freed again, and
      // freeing a block is a synchronous discard on a filesystem mounted with -o discard. Made when
      // the first volume goes into it: a batch with nothing to remove makes none. A volume removed
      // alone is renamed to be the trash itself, which makes and frees no directory at all.
      let trash: string | undefined;
      let renamed = false;
      let inPlace = false;
      for (const name of names) {
        try {
          const root = join(this.#home, name);
          const config = readOpts(root);
          unmountIfMounted(this.path(name));
          // Renamed away first, so a crash never leaves half a volume under its name.
          try {
            if (names.length === 1) trash = renameAway(root, join(this.#home, TRASH_PREFIX));
            else {
              trash ??= makeTempDir(join(this.#home, TRASH_PREFIX));
              renamePath(root, join(trash, name));
            }
            renamed = true;
          } catch (err) {
            const code = errnoCode(err);
            if (code === "ENOSPC") {
              // No room for a name (btrfs with its metadata full, where removing frees room and
              // renaming needs it): removed where it is. A crash or a failure meanwhile leaves the
              // volume, its record kept, with part of its data: removed again, it goes.
              try {
                treeRemoval.get().removeTree(root);
              } catch (inner) {
                throw new StorError(`volume "${name}"`, `partly removed (no room to rename it away first, so removed in place): ${describe(inner)}; remove it again`, exitCodeOf(inner), { cause: inner });
              }
              inPlace = true;
            } else if (code !== "ENOENT") throw err;
          }
          removed.push(name);
          if (config && config.Quota.Size > 0) quotas.push(name);
        } catch (err) {
          failed.push([name, err]);
        }
      }
      if (inPlace && !renamed) fsyncDir(this.#home); // as a trash's rename is, below
      if (trash !== undefined && !renamed) removeDir(trash);
      else if (trash !== undefined) {
        fsyncDir(this.#home); // gone for good before the metadata goes, or restore would adopt them again
        failpoint("volume-rm:renamed");
        // Renamed away for good: a volume whose trash cannot go now is removed all the same, its trash left to cleanup.
        if (remover) gone = remover.remove(trash).then((why) => void (why && leftForCleanup(trash, why)));
        else removeTrash(trash);
      }
    } finally {
      void gone.finally(() => removing.release());
    }
    if (quotas.length > 0) this.#store.freeing(() => quotas.forEach((name) => this.#store.releaseProject(name)));
    return { removed, failed, gone };
  }

  async mount(name: string, _ref: string, active: number): Promise<number> {
    const config = readOpts(join(this.#home, name));
    if (!config || !needsMount(config)) return active;
    await Promise.all([mountinfo.load(), mounts.load()]);
    const data = this.path(name);
    // Mounted whatever the count says, not by the count: mounted with no active mount (a mount
    // killed before its record) is used as it is, as Docker does; not mounted with some (an
    // unmount killed before its record) is mounted, or what the reference writes would go to
    // the root's disk instead of the device.
    if (!mountinfo.get().isMountPoint(data)) {
      const m = await mountOf(config);
      log.debug(`volume "${name}": mount -t ${m.Type} ${m.Source} ${data} -o ${redactOptionList(m.Options.join(","))}`);
      mounts.get().mount(m, data);
    }
    return active + 1;
  }

  mountsDevice(name: string): boolean {
    const config = readOpts(join(this.#home, name));
    return config !== undefined && needsMount(config);
  }

  unmountUnreferenced(name: string): void {
    if (this.mountsDevice(name)) unmountIfMounted(this.path(name));
  }

  unmount(name: string, _ref: string, active: number): number {
    const config = readOpts(join(this.#home, name));
    if (!config || !needsMount(config)) return active;
    const next = Math.max(0, active - 1);
    if (next === 0) unmountIfMounted(this.path(name));
    return next;
  }

  list(only?: readonly string[]): ListedVolume[] {
    const dirs = only
      ? only.filter((name) => isVolumeName(name) && statPath(join(this.#home, name), false)?.isDirectory)
      : listDir(this.#home)
          .filter((e) => e.isDirectory && isVolumeName(e.name))
          .map((e) => e.name);
    return dirs.filter((name) => pathExists(this.path(name)) || pathExists(join(this.#home, name, OPTS_FILE))).map((name) => ({ name }));
  }

  discovered(name: string): DiscoveredVolume {
    const root = join(this.#home, name);
    const config = readOpts(root);
    // Docker's CreatedAt of a local volume is its directory's change time.
    return { name, options: config ? fromOptsConfig(config) : {}, labels: readLabels(root), created: rfc3339(statSync(root).ctime) };
  }

  /**
   * Removes the trash of interrupted removals and the unfinished directories of interrupted
   * creates; none while another removal or create is under way.
   */
  cleanup(): string[] {
    const alone = lockPath(this.#home, { wait: false });
    if (!alone) return [];
    try {
      const leftovers = readdirSync(this.#home)
        .filter((n) => n.startsWith(TRASH_PREFIX) || n.startsWith(NEW_PREFIX))
        .map((n) => join(this.#home, n));
      return leftovers.filter(removeTrash);
    } finally {
      alone.release();
    }
  }
}

/** Removes a volume's trash; what cannot go (an immutable file…) stays for a later cleanup, with a warning. */
function removeTrash(trash: string): boolean {
  try {
    treeRemoval.get().removeTree(trash);
    return true;
  } catch (err) {
    leftForCleanup(trash, describe(err));
    return false;
  }
}

function leftForCleanup(trash: string, why: string): void {
  log.warn(`${trash} is left for a later cleanup: ${why}`);
}

/** Makes directory `path` with exactly `mode`, unless a directory is there. */
function makeDir(path: string, mode: number): void {
  if (makeDirectory(path, mode)) chmodPath(path, mode); // not left to the umask
  else directoryThere(path);
}

/** True when a directory is at `path`, false when nothing is; anything else there is an error. */
function directoryThere(path: string): boolean {
  const st = statPath(path, false);
  // Never a symlink: whatever is written below must stay inside the volumes root.
  if (st && !st.isDirectory) throw new StorError(`volume directory ${path}`, "exists and is not a directory");
  return st !== undefined;
}

/** What JSON file `<root>/<file>` holds (`what` it is, for errors), or undefined when there is none. */
function readJson(root: string, file: string, what: string): unknown {
  const path = join(root, file);
  const text = readText(path);
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new StorError(`${what} ${path}`, (err as Error).message);
  }
}

/** The options in `<root>/opts.json`, or undefined when it has none (Docker ignores an empty one). */
function readOpts(root: string): OptsConfig | undefined {
  const raw = readJson(root, OPTS_FILE, "volume options") as Partial<OptsConfig> | undefined;
  if (raw === undefined) return undefined;
  // Missing fields are Go's zero values, as Docker reads the file.
  const c = { MountType: raw.MountType ?? "", MountOpts: raw.MountOpts ?? "", MountDevice: raw.MountDevice ?? "", Quota: { Size: raw.Quota?.Size ?? 0 } };
  return needsMount(c) || c.MountOpts || c.Quota.Size ? c : undefined;
}

/** The labels in `<root>/labels.json`: none when there is no such file. */
function readLabels(root: string): Record<string, string> {
  const raw = readJson(root, LABELS_FILE, "volume labels");
  const labels = stringMap();
  if (raw === undefined) return labels;
  const bad = (why: string) => new StorError(`volume labels ${join(root, LABELS_FILE)}`, why);
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) throw bad("not a JSON object");
  for (const [k, v] of Object.entries(raw)) {
    if (typeof v !== "string") throw bad(`label "${k}" is not a string`);
    labels[k] = v;
  }
  return labels;
}

/**
 * Writes `text` to `<root>/<file>` durably (mode 0600: options may carry passwords), or removes
 * the file when `text` is undefined. In a `fresh` directory, which nothing sees before it is
 * whole and renamed, in place with nothing to remove; else atomically, through a temporary file.
 */
function writeVolumeFile(root: string, file: string, text: string | undefined, fresh: boolean): void {
  const path = join(root, file);
  if (text === undefined) return void (fresh || removeFile(path));
  if (fresh) return writeNewFile(path, utf8Bytes(text), 0o600);
  const temp = `${path}.tmp`;
  removeFile(temp);
  writeNewFile(temp, utf8Bytes(text), 0o600);
  renamePath(temp, path);
}

/**
 * Unmounts what is mounted on `path`; nothing when nothing is, or `path` is gone. An `rbind`
 * brings the mounts below its source along, and while they are there the volume's own mount is
 * busy: they go first, deepest first, never detached (a busy one keeps the volume mounted, as a
 * process using the volume does).
 */
function unmountIfMounted(path: string): void {
  try {
    mounts.get().unmount(path);
  } catch (err) {
    if (err instanceof SysError && err.errno === Errno.ENOENT) return;
    if (!(err instanceof SysError && err.errno === Errno.EBUSY)) throw err;
    const { unmountBelow } = require("../mounting.ts") as typeof import("../mounting.ts");
    try {
      if (unmountBelow(path).unmounted.length === 0) throw err;
      mounts.get().unmount(path);
    } catch (again) {
      // Busy still: a process has a file open or its working directory there. In use, as for a snapshot.
      if (again instanceof SysError && again.errno === Errno.EBUSY) throw new PreconditionError(`unmount ${path}`, "in use: device or resource busy");
      throw again;
    }
  }
}
