/**
 * The volume service: Docker's volume service and store for separate processes. Metadata and
 * references live in the {@link VolumeStore}; each volume's storage belongs to its driver.
 * Everything that changes a volume holds the volume's lock ({@link NameLocks}), so two
 * processes never interleave on one volume while different volumes proceed side by side.
 *
 * Multi-step changes are ordered so that a crash leaves what `stor restore` repairs: a create
 * makes the storage before the metadata (a crash leaves a directory that restore adopts), a
 * removal removes the storage before the metadata (a crash leaves metadata that restore drops).
 */
import { utf8ByteLength } from "../fileName.ts";
import type { Config } from "../config.ts";
import type { Access } from "../db.ts";
import { AlreadyExistsError, InvalidArgumentError, NotFoundError, PreconditionError, StorError, describe, exitCodeOf } from "../errors.ts";
import { bootId } from "../boot.ts";
import { failpoint } from "../failpoint.ts";
import { helperThreadsAllowed } from "../fs/helperThreads.ts";
import type { RemoveThreads } from "../fs/removeThread.ts";
import { rootError, volumeDb, volumeLocksDir, volumesDir } from "../layout.ts";
import { log } from "../log.ts";
import type { MountTable } from "../sys/mountNamespaces.ts";
import { chmodPath, makeDirs, pathExists, realPath } from "../sys/pathCalls.ts";
import { rfc3339 } from "../timefmt.ts";
import { Drivers, type ListedVolume, type VolumeDriver } from "./drivers.ts";
import { loadRemoval, type LocalDriver } from "./local.ts";
import { Lazy, mountTables } from "../lazy.ts";
import { boolFilter, matcher, type Filters } from "./filters.ts";
import { isVolumeName, validateName } from "./name.ts";
import { validateOptions } from "./localOptions.ts";
import { migrateLegacyVolumeDb, unmigratedVolumeDb } from "./legacyLayout.ts";
import { BATCH, NameLocks } from "./nameLocks.ts";
import type { RestorePolicy, VolumeRestoreReport } from "./restore.ts";
import { VolumeStore, type VolumeRecord } from "./volumeStore.ts";

// What is mounted and how much data a volume holds are asked by rm, prune and df, never by
// create, inspect or ls: those load it ahead (see src/lazy.ts), the others never.
const sizing = new Lazy(() => import("./usage.ts"), () => require("./usage.ts") as typeof import("./usage.ts"));
const dataSize = (path: string) => sizing.get().dataSize(path);

/** The label Docker (23 and later) puts on a volume created without a name. */
export const ANONYMOUS_LABEL = "com.docker.volume.anonymous";
const LOCAL = "local";
const MAX_REF_BYTES = 4096;

/** A volume as inspect shows it. */
export interface Volume extends VolumeRecord {
  /** The host path of the data ("" when the volume's driver did not tell it). */
  mountpoint: string;
  scope: string;
  /** What a plugin reports of the volume (inspect only, when it does). */
  status?: Record<string, unknown>;
}

/** How a volume service is used. */
export interface ServiceOptions {
  /**
   * Whether listing and inspecting ask plugins (default true): what they list that stor has no
   * record of, what they tell of a volume. False in `stor serve`, whose answers to dockerd come
   * from its records alone, so they never call back into a plugin, itself included.
   */
  askPlugins?: boolean;
}

/** What `create` is asked for besides the name. */
export interface CreateRequest {
  /** The driver; the configured default when not given. */
  driver?: string;
  options?: Record<string, string>;
  labels?: Record<string, string>;
}

/** What prune removed and the space that freed. */
export interface PruneReport {
  deleted: string[];
  reclaimed: number;
}

/** A local volume's data size (undefined when its directory is gone). */
export interface VolumeUsage {
  volume: Volume;
  size: number | undefined;
  /** Referenced, or something mounted on its data: what prune leaves, and df does not count reclaimable. */
  inUse: boolean;
}

const vol = (name: string) => `volume "${name}"`;

function validateRef(ref: string): void {
  if (ref === "" || ref.includes("\0")) throw new InvalidArgumentError(`reference "${ref}"`, "must be non-empty, without NUL");
  if (utf8ByteLength(ref) > MAX_REF_BYTES) throw new InvalidArgumentError("reference", `longer than ${MAX_REF_BYTES} bytes`);
}

/**
 * A local volume without mount options: the only kind whose data is on this host's disk, so
 * the only kind `docker system df` measures and prune removes.
 */
function isPlainLocal(v: VolumeRecord): boolean {
  return v.driver === LOCAL && Object.keys(v.options).length === 0;
}

/**
 * 64 random hex digits, as Docker names an anonymous volume. Web Crypto, a global, and no
 * Buffer: node:crypto or node:buffer would cost the command their loading.
 */
function randomName(): string {
  let hex = "";
  for (const b of crypto.getRandomValues(new Uint8Array(32))) hex += (b < 16 ? "0" : "") + b.toString(16);
  return hex;
}

/**
 * Checks what a create asks before anything is opened or made (bad input makes nothing, not even
 * the root): the name; and where no volume can exist yet (no database), a local volume's options as
 * far as they can be without the root (the size's quota support is asked at the create). Where one
 * may, its options are not checked: a create of an existing volume returns it, whatever they say,
 * as Docker's does.
 */
export function checkCreateRequest(config: Config, name: string | undefined, req: CreateRequest): void {
  if (name) validateName(name);
  let fresh = false;
  try {
    fresh = !pathExists(volumeDb(config.root)) && unmigratedVolumeDb(config.root) === undefined;
  } catch {
    // A root that cannot be looked into (a file where it should be): opening it says why.
  }
  if (fresh && (req.driver ?? config.defaultVolumeDriver) === "local") validateOptions(name ? `volume "${name}"` : "volume", req.options ?? {}, () => true);
}

/** The volumes below `<root>/volumes`. */
export class VolumeService {
  /** `<root>/volumes`, symlinks resolved (mount points are compared with mountinfo). */
  readonly home: string;
  /** Files of an older layout's database that opening this root moved into place. */
  readonly migrated: string[];
  readonly #store: VolumeStore;
  readonly #drivers: Drivers;
  readonly #locks: NameLocks;
  readonly #defaultDriver: string;
  readonly #askPlugins: boolean;
  readonly #access: Access;

  /** Opened through {@link ../services.ts}; to `read`, nothing is created, not even the database. */
  constructor(config: Config, access: Access, opts: ServiceOptions = {}) {
    const home = volumesDir(config.root);
    let db = volumeDb(config.root);
    try {
      if (access === "write") {
        makeDirs(config.root, 0o711);
        // 0701, as Docker's: other users may pass through to a path they are given, no more.
        if (makeDirs(home, 0o701) !== undefined) chmodPath(home, 0o701);
        this.migrated = migrateLegacyVolumeDb(config.root);
        makeDirs(volumeLocksDir(config.root), 0o700);
      } else {
        this.migrated = [];
        db = unmigratedVolumeDb(config.root) ?? db; // read where it is: moving it would be a write
      }
      this.home = pathExists(home) ? realPath(home) : home;
    } catch (err) {
      throw rootError(config.root, err);
    }
    this.#locks = new NameLocks(volumeLocksDir(config.root), volumeDb(config.root));
    this.#store = new VolumeStore(db, access);
    this.#drivers = new Drivers({ home: this.home, store: this.#store, plugins: config.plugins });
    this.#defaultDriver = config.defaultVolumeDriver;
    this.#askPlugins = opts.askPlugins ?? true;
    this.#access = access;
  }

  /**
   * Creates volume `name` (a random 64-hex name, labelled anonymous, when not given) and returns
   * its name. An existing volume of the same driver is returned as it is, as Docker does.
   */
  async create(name: string | undefined, req: CreateRequest = {}): Promise<string> {
    const anonymous = !name;
    const volume = name || randomName();
    validateName(volume);
    const driver = await this.#drivers.get(req.driver ?? this.#defaultDriver);
    const options = req.options ?? {};
    const labels = anonymous ? { ...req.labels, [ANONYMOUS_LABEL]: "" } : (req.labels ?? {});
    const lock = this.#locks.lock(volume);
    try {
      let existing = this.#store.read(() => this.#store.get(volume));
      // A removal cut short once the storage was gone for good: it is finished, and the volume made anew.
      if (existing && existing.refs.length === 0 && existing.driver === driver.name && storageGone(driver, volume)) {
        this.#store.freeing(() => this.#store.delete(volume));
        existing = undefined;
      }
      if (existing) {
        if (existing.driver !== driver.name) throw new AlreadyExistsError(vol(volume), `exists with driver "${existing.driver}"`);
        return volume;
      }
      await driver.create(volume, options, labels);
      failpoint("volume-create:made");
      try {
        this.#store.write(() => this.#store.insert({ name: volume, driver: driver.name, created: rfc3339(new Date()), labels, options }));
      } catch (err) {
        await driver.remove(volume);
        throw err;
      }
      return volume;
    } finally {
      lock.release();
    }
  }

  /**
   * Volume `name`; a plugin's volume with what the plugin tells of it now. When the plugin does
   * not answer, the volume is as stor recorded it, with a warning.
   */
  async inspect(name: string): Promise<Volume> {
    const v = this.#find(name) ?? (await this.#probe(name));
    if (!v) throw new NotFoundError(vol(name));
    if (!this.#askPlugins || this.#drivers.builtin(v.driver)) return this.#view(v);
    try {
      const driver = await this.#drivers.get(v.driver);
      const found = await driver.discovered(name);
      return { ...v, mountpoint: found.mountpoint ?? "", scope: driver.scope, ...(found.status && { status: found.status }) };
    } catch (err) {
      log.warn(`${describe(err)} (${vol(name)} shown as stor recorded it)`);
      return this.#view(v);
    }
  }

  /**
   * The volumes that pass `filters`, ordered by name: those stor has a record of, and those the
   * plugins found list that it has none of, as Docker lists every driver's volumes. A plugin
   * that does not answer leaves its recorded volumes listed, with a warning.
   */
  async list(filters: Filters = new Map()): Promise<Volume[]> {
    const test = matcher(filters);
    const records = this.#store.read(() => this.#store.all());
    const listings = await this.#pluginListings(records, filters.get("driver"));
    const recorded = new Set(records.map((v) => v.name));
    const unrecorded: VolumeRecord[] = [];
    for (const [driver, listed] of listings) {
      for (const l of listed.values()) {
        if (!recorded.has(l.name)) unrecorded.push({ name: l.name, id: 0, driver, created: l.created ?? "", labels: {}, options: {}, refs: [], active: 0 });
      }
    }
    return [...records, ...unrecorded]
      .filter(test)
      .map((v) => this.#view(v, listings.get(v.driver)?.get(v.name)?.mountpoint))
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  /**
   * What each plugin that `records` name, and each plugin found, lists, by driver; only drivers
   * in `only`, when given. Asked all at once.
   */
  async #pluginListings(records: readonly VolumeRecord[], only?: readonly string[]): Promise<Map<string, Map<string, ListedVolume>>> {
    const out = new Map<string, Map<string, ListedVolume>>();
    if (!this.#askPlugins) return out;
    const withRecords = new Set(records.map((v) => v.driver));
    const names = new Set([...withRecords, ...(await this.#plugins(only))]);
    const ask = [...names].filter((n) => !this.#drivers.builtin(n) && (!only || only.includes(n)));
    if (ask.length === 0) return out; // most hosts: no Promise.all, a builtin compiled on its first call
    await Promise.all(
      ask.map(async (n) => {
        try {
          const listed = await (await this.#drivers.get(n, withRecords.has(n))).list();
          out.set(n, new Map(listed.map((l) => [l.name, l])));
        } catch (err) {
          // A plugin found that is none of stor's (it implements something else, say) is no news.
          if (withRecords.has(n)) log.warn(`${describe(err)} (its volumes are listed as stor recorded them)`);
          else log.debug(describe(err));
        }
      }),
    );
    return out;
  }

  /** The plugins in the plugin directories, none when `only` names built-in drivers alone (no module is loaded then). */
  async #plugins(only?: readonly string[]): Promise<string[]> {
    if (only?.every((n) => this.#drivers.builtin(n))) return [];
    return this.#drivers.plugins();
  }

  /** Removes volume `name` and its data; one in use cannot be. With `force`, a missing one is no error. */
  async remove(name: string, force = false): Promise<void> {
    await Promise.all([mountTables.load(), loadRemoval()]);
    await this.#locked(
      name,
      (v, driver) => {
        // As Docker's local driver does before a removal: with no reference, a device still
        // mounted on the data is a mount killed before its record, and is unmounted.
        if (v.refs.length === 0 && driver.ownsStorage) driver.unmountUnreferenced(v.name);
        const why = inUse(v, driver);
        if (why) throw new PreconditionError(vol(name), why);
        return this.#removeLocked(v, driver);
      },
      force ? () => undefined : undefined,
    );
  }

  async #removeLocked(v: VolumeRecord, driver: VolumeDriver): Promise<void> {
    await driver.remove(v.name);
    failpoint("volume-rm:removed");
    this.#dropRecords([v.name], "rm");
  }

  /**
   * Drops the records of volumes `names`, whose data `command` (rm of one, or prune) removed. A
   * failure (a full disk) says that the data is gone and what drops the records: read as a plain
   * failure, it passed for the data being kept. A record left so is dropped by the next removal,
   * or by restore.
   */
  #dropRecords(names: readonly string[], command: "rm" | "prune"): void {
    try {
      this.#store.freeing(() => {
        for (const name of names) this.#store.delete(name);
      });
    } catch (err) {
      // rm's message is about its volume; prune's names the volumes.
      const one = names.length === 1;
      const whose = command === "rm" ? "its data" : one ? `the data of ${vol(names[0]!)}` : `the data of ${names.length} volumes (${names.slice(0, 3).join(", ")}${names.length > 3 ? ", …" : ""})`;
      const again = command === "rm" ? "remove it again" : "prune again";
      const why = `${whose} is removed, but not ${one ? "its record" : "their records"} (${describe(err)}): ${again}, or stor restore drops ${one ? "it" : "them"}`;
      throw new StorError(command === "rm" ? vol(names[0]!) : "prune", why, exitCodeOf(err), { cause: err });
    }
  }

  /**
   * Removes local volumes without mount options that nothing references and that pass `filters`
   * (label, label!, all): anonymous ones only, unless `all` (or the filter all=true).
   */
  async prune(filters: Filters, all = false): Promise<PruneReport> {
    if (all && filters.has("all")) throw new InvalidArgumentError("prune", "conflicting options: cannot specify both --all and --filter all=1");
    const everything = all || boolFilter(filters, "all") === true;
    // Local volumes only, so no plugin is asked anything.
    const test = matcher(filters);
    const prunable = (v: VolumeRecord) => test(v) && isPlainLocal(v) && v.refs.length === 0 && (everything || Object.hasOwn(v.labels, ANONYMOUS_LABEL));
    const candidates = new Map(
      this.#store
        .read(() => this.#store.all())
        .filter(prunable)
        .map((v) => [v.name, v.id]),
    );
    // Chosen before their locks are taken: under them, a volume goes only if it is still the one
    // chosen (not removed and made again under its name) and still all that made it a candidate.
    const chosen = (v: VolumeRecord) => candidates.get(v.name) === v.id && prunable(v);
    const report: PruneReport = { deleted: [], reclaimed: 0 };
    await Promise.all([mountTables.load(), sizing.load(), loadRemoval()]);
    const local = this.#drivers.builtin(LOCAL) as LocalDriver;
    // Over several batches, a batch's trash goes on a helper thread while the next is pruned.
    const remover = candidates.size > BATCH && helperThreadsAllowed() ? new (await import("../fs/removeThread.ts")).RemoveThreads() : undefined;
    const gone: Promise<void>[] = [];
    try {
      await this.#locks.inBatches([...candidates.keys()], true, (names) => this.#pruneBatch(names, chosen, local, report, gone, remover));
    } finally {
      await Promise.all(gone);
      remover?.close();
    }
    return report;
  }

  /**
   * Prunes those of `names`, whose locks the caller holds, that are still `chosen` and not in
   * use, as one: their storage removed with one directory sync, their metadata in one
   * transaction. A crash in between leaves metadata whose storage is gone, which restore
   * forgets, as after a single removal. The trash's removal (on `remover`'s threads) goes into
   * `gone` at once, so it is waited for even when the metadata's transaction fails.
   */
  #pruneBatch(names: readonly string[], chosen: (v: VolumeRecord) => boolean, local: LocalDriver, report: PruneReport, gone: Promise<void>[], remover?: RemoveThreads): void {
    const mounts = mountTables.get().readMountTable(); // under the locks, which may have waited: what is mounted now
    const sizes = new Map<string, number>();
    // Looked at again under the locks, in one read: taken, changed or made again while pruning?
    const now = this.#store.read(() => this.#store.all(names));
    for (const v of now) {
      if (!chosen(v) || inUse(v, local, mounts)) continue;
      sizes.set(v.name, dataSize(local.path(v.name)) ?? 0);
    }
    const { removed, failed, gone: trashGone } = local.removeAll([...sizes.keys()], remover);
    gone.push(trashGone);
    // As Docker: a volume that cannot be removed is skipped, the rest are pruned.
    for (const [name, err] of failed) log.warn(`prune ${vol(name)}: ${describe(err)}`);
    failpoint("volume-rm:removed");
    this.#dropRecords(removed, "prune");
    report.deleted.push(...removed);
    for (const name of removed) report.reclaimed += sizes.get(name)!;
  }

  /**
   * Takes reference `ref` on volume `name` (the first one mounts its device); returns the host
   * path. Taking a reference it has again changes nothing, unless `counted`: then each call is a
   * use of its own, and it takes as many {@link unmount}s to drop it. Docker's plugin protocol
   * is so: dockerd sends one mount ID for a container and again for each `docker cp` into it
   * while it runs, and an Unmount when each ends, as its own local driver counts them.
   */
  async mount(name: string, ref: string, { counted = false } = {}): Promise<string> {
    validateRef(ref);
    return this.#locked(name, async (v, driver) => {
      if (v.refs.includes(ref)) {
        if (counted) this.#store.write(() => this.#store.addUse(name, ref));
      } else {
        // Its removal was cut short once its storage was gone for good (restore forgets it): nothing to use.
        if (storageGone(driver, name)) throw new NotFoundError(vol(name), "not found: its removal was cut short (stor restore forgets it)");
        const active = await driver.mount(name, ref, v.active);
        failpoint("volume-mount:mounted");
        try {
          this.#store.write(() => this.#store.addRef(name, ref, active, bootId()));
        } catch (err) {
          await driver.unmount(name, ref, active);
          throw err;
        }
      }
      return await driver.path(name);
    });
  }

  /**
   * Drops reference `ref` from volume `name` (the last one unmounts its device); `counted`, one
   * use of it (see {@link mount}). Unlike Docker, a failed unmount keeps the reference, so the
   * command can be repeated once the device is free.
   */
  async unmount(name: string, ref: string, { counted = false } = {}): Promise<void> {
    validateRef(ref);
    await this.#locked(name, async (v, driver) => {
      if (!v.refs.includes(ref)) return;
      // Freeing: a reference released lets the volume be removed, on a full disk too.
      if (counted && this.#store.freeing(() => this.#store.dropUse(name, ref))) return;
      const active = await driver.unmount(name, ref, v.active);
      failpoint("volume-unmount:unmounted");
      this.#store.freeing(() => this.#store.removeRef(name, ref, active));
    });
  }

  /** The local volumes without mount options and the size of their data, as `docker system df` counts them. */
  async usage(): Promise<VolumeUsage[]> {
    await Promise.all([mountTables.load(), sizing.load()]);
    const local = this.#drivers.builtin(LOCAL) as LocalDriver;
    const mounts = mountTables.get().readMountTable();
    return this.#store
      .read(() => this.#store.all())
      .filter(isPlainLocal)
      .map((v) => {
        const volume = this.#view(v);
        return { volume, size: dataSize(volume.mountpoint), inUse: inUse(v, local, mounts) !== undefined };
      });
  }

  /** Removes what interrupted creates and removals left on every driver's storage; returns the paths removed. */
  cleanup(): string[] {
    return this.#drivers.all().flatMap((d) => d.cleanup());
  }

  /**
   * The volume part of `stor restore`: see restoreVolumes. Its code (and prune's remover threads)
   * loads when used: every other volume command loaded it for nothing.
   */
  async restore(policy: RestorePolicy): Promise<VolumeRestoreReport> {
    const { restoreVolumes } = await import("./restore.ts");
    return restoreVolumes({ home: this.home, store: this.#store, drivers: this.#drivers, locks: this.#locks }, policy);
  }

  /** Closes the metadata database: for a process that goes on (serve). */
  close(): void {
    this.#store.close();
  }

  /** Ends a command's use of the service: its process ends next (see releaseDatabase in src/db.ts). */
  release(): void {
    this.#store.release();
  }

  /** Volume `name`, or undefined; a name no volume can have is not looked up. */
  #find(name: string): VolumeRecord | undefined {
    return isVolumeName(name) ? this.#store.read(() => this.#store.get(name)) : undefined;
  }

  /**
   * Volume `name` as a plugin found knows it, now recorded as Docker records a volume it finds
   * by probing its drivers; undefined when none has it (or this service does not ask plugins).
   */
  async #probe(name: string): Promise<VolumeRecord | undefined> {
    if (!this.#askPlugins || !isVolumeName(name)) return undefined;
    for (const plugin of await this.#drivers.plugins()) {
      let created: string;
      try {
        created = (await (await this.#drivers.get(plugin, false)).discovered(name)).created;
      } catch (err) {
        log.debug(describe(err));
        continue;
      }
      const when = new Date(created);
      const found = { name, driver: plugin, created: rfc3339(isNaN(when.getTime()) ? new Date() : when), labels: {}, options: {} };
      // A command that only reads shows it as found, and records nothing.
      if (this.#access === "read") return { ...found, id: 0, refs: [], active: 0 };
      const lock = this.#locks.lock(name);
      try {
        this.#store.write(() => {
          if (!this.#store.get(name)) this.#store.insert(found); // else recorded meanwhile
        });
      } finally {
        lock.release();
      }
      return this.#find(name);
    }
    return undefined;
  }

  /** `v` as shown: a built-in driver's path, else `mountpoint` (what its plugin last told). */
  #view(v: VolumeRecord, mountpoint?: string): Volume {
    const builtin = this.#drivers.builtin(v.driver);
    const d = builtin ?? this.#drivers.find(v.driver);
    return { ...v, mountpoint: (builtin?.ownsStorage ? builtin.path(v.name) : mountpoint) ?? "", scope: d?.scope ?? "local" };
  }

  /**
   * Runs `fn` on volume `name` and its driver under the volume's lock. A missing volume is not
   * found, or whatever `missing` returns.
   */
  async #locked<T>(name: string, fn: (v: VolumeRecord, driver: VolumeDriver) => T | Promise<T>, missing?: () => T): Promise<T> {
    const absent = () => {
      if (missing) return missing();
      throw new NotFoundError(vol(name));
    };
    // Looked up before locking, so that a name that is no volume never gets a lock file.
    if (!this.#find(name) && !(await this.#probe(name))) return absent();
    const lock = this.#locks.lock(name);
    try {
      const v = this.#find(name); // again: it may have gone meanwhile
      return v ? await fn(v, await this.#drivers.get(v.driver)) : absent();
    } finally {
      lock.release();
    }
  }
}

/**
 * Why volume `v` cannot be removed now: referenced, or its storage mounted (seen on this host
 * only where the storage is stor's own); undefined when it can. The whole of the storage, not
 * only the data: a bind of the volume's own directory shows the data too.
 */
function inUse(v: VolumeRecord, driver: VolumeDriver, mounts?: MountTable): string | undefined {
  if (v.refs.length > 0) return `in use - [${v.refs.join(", ")}]`;
  const mounted = driver.ownsStorage ? mountTables.get().whereMounted(driver.storage(v.name), mounts) : [];
  return mounted.length > 0 ? `is mounted at ${mounted.join(", ")}` : undefined;
}

/** Whether volume `name`'s storage, where stor keeps it, is gone: renamed away by a removal a crash cut short. */
function storageGone(driver: VolumeDriver, name: string): boolean {
  return driver.ownsStorage && !pathExists(driver.storage(name));
}
