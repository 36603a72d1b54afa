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
import { chmodSync, existsSync, mkdirSync, realpathSync } from "node:fs";
import type { Config } from "../config.ts";
import type { Access } from "../db.ts";
import { AlreadyExistsError, InvalidArgumentError, NotFoundError, PreconditionError, StorError, describe } from "../errors.ts";
import { bootId } from "../boot.ts";
import { failpoint } from "../failpoint.ts";
import { volumeDb, volumeLocksDir, volumesDir } from "../layout.ts";
import { log } from "../log.ts";
import { mountsUsing } from "../sys/mountinfo.ts";
import { rfc3339 } from "../timefmt.ts";
import { Drivers, type VolumeDriver } from "./drivers.ts";
import { boolFilter, matcher, type Filters } from "./filters.ts";
import { isVolumeName, validateName } from "./name.ts";
import { migrateLegacyVolumeDb, unmigratedVolumeDb } from "./legacyLayout.ts";
import { NameLocks } from "./nameLocks.ts";
import { restoreVolumes, type RestorePolicy, type VolumeRestoreReport } from "./restore.ts";
import { dataSize } from "./usage.ts";
import { VolumeStore, type VolumeRecord } from "./volumeStore.ts";

/** The label Docker (23 and later) puts on a volume created without a name. */
export const ANONYMOUS_LABEL = "com.docker.volume.anonymous";
const LOCAL = "local";
const MAX_REF_BYTES = 4096;

/** A volume as inspect shows it. */
export interface Volume extends VolumeRecord {
  /** The host path of the data ("" when the volume's driver is not registered). */
  mountpoint: string;
  scope: string;
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
}

const vol = (name: string) => `volume "${name}"`;

function validateRef(ref: string): void {
  if (ref === "" || ref.includes("\0")) throw new InvalidArgumentError(`reference "${ref}"`, "must be non-empty, without NUL");
  if (Buffer.byteLength(ref) > MAX_REF_BYTES) throw new InvalidArgumentError("reference", `longer than ${MAX_REF_BYTES} bytes`);
}

/**
 * A local volume without mount options: the only kind whose data is on this host's disk, so
 * the only kind `docker system df` measures and prune removes.
 */
function isPlainLocal(v: VolumeRecord): boolean {
  return v.driver === LOCAL && Object.keys(v.options).length === 0;
}

/** Mount points of the mounts that use a volume's data at `path` (which may be gone). */
function mountedAt(path: string): string[] {
  return existsSync(path) ? mountsUsing(realpathSync(path)).map((m) => m.mountPoint) : [];
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

  /** Opened through {@link ../services.ts}; to `read`, nothing is created, not even the database. */
  constructor(config: Config, access: Access) {
    const home = volumesDir(config.root);
    let db = volumeDb(config.root);
    try {
      if (access === "write") {
        mkdirSync(config.root, { recursive: true, mode: 0o711 });
        // 0701, as Docker's: other users may pass through to a path they are given, no more.
        if (mkdirSync(home, { recursive: true, mode: 0o701 }) !== undefined) chmodSync(home, 0o701);
        this.migrated = migrateLegacyVolumeDb(config.root);
        mkdirSync(volumeLocksDir(config.root), { recursive: true, mode: 0o700 });
      } else {
        this.migrated = [];
        db = unmigratedVolumeDb(config.root) ?? db; // read where it is: moving it would be a write
      }
      this.home = existsSync(home) ? realpathSync(home) : home;
    } catch (err) {
      throw new StorError(`root ${config.root}`, describe(err));
    }
    this.#locks = new NameLocks(volumeLocksDir(config.root));
    this.#store = new VolumeStore(db, access);
    this.#drivers = new Drivers({ home: this.home, store: this.#store });
    this.#defaultDriver = config.defaultVolumeDriver;
  }

  /**
   * Creates volume `name` (a random 64-hex name, labelled anonymous, when not given) and returns
   * its name. An existing volume of the same driver is returned as it is, as Docker does.
   */
  create(name: string | undefined, req: CreateRequest = {}): string {
    const anonymous = !name;
    // Web Crypto, a global: node:crypto would cost every volume command its loading.
    const volume = name || Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString("hex");
    validateName(volume);
    const driver = this.#drivers.get(req.driver ?? this.#defaultDriver);
    const options = req.options ?? {};
    const labels = anonymous ? { ...req.labels, [ANONYMOUS_LABEL]: "" } : (req.labels ?? {});
    const lock = this.#locks.lock(volume);
    try {
      const existing = this.#store.read(() => this.#store.get(volume));
      if (existing) {
        if (existing.driver !== driver.name) throw new AlreadyExistsError(vol(volume), `exists with driver "${existing.driver}"`);
        return volume;
      }
      driver.create(volume, options);
      failpoint("volume-create:made");
      try {
        this.#store.write(() => this.#store.insert({ name: volume, driver: driver.name, created: rfc3339(new Date()), labels, options }));
      } catch (err) {
        driver.remove(volume);
        throw err;
      }
      return volume;
    } finally {
      lock.release();
    }
  }

  /** Volume `name`. */
  inspect(name: string): Volume {
    return this.#view(this.#get(name));
  }

  /** The volumes that pass `filters`, ordered by name. */
  list(filters: Filters = new Map()): Volume[] {
    const test = matcher(filters);
    return this.#store
      .read(() => this.#store.all())
      .filter(test)
      .map((v) => this.#view(v));
  }

  /** Removes volume `name` and its data; one in use cannot be. With `force`, a missing one is no error. */
  async remove(name: string, force = false): Promise<void> {
    await this.#locked(
      name,
      (v, driver) => {
        if (v.refs.length > 0) throw new PreconditionError(vol(name), `in use - [${v.refs.join(", ")}]`);
        const mounted = mountedAt(driver.path(name));
        if (mounted.length > 0) throw new PreconditionError(vol(name), `is mounted at ${mounted.join(", ")}`);
        this.#removeLocked(v, driver);
      },
      force ? () => undefined : undefined,
    );
  }

  #removeLocked(v: VolumeRecord, driver: VolumeDriver): void {
    driver.remove(v.name);
    failpoint("volume-rm:removed");
    this.#store.write(() => this.#store.delete(v.name));
  }

  /**
   * Removes local volumes without mount options that nothing references and that pass `filters`
   * (label, label!, all): anonymous ones only, unless `all` (or the filter all=true).
   */
  async prune(filters: Filters, all = false): Promise<PruneReport> {
    if (all && filters.has("all")) throw new InvalidArgumentError("prune", "conflicting options: cannot specify both --all and --filter all=1");
    const everything = all || boolFilter(filters, "all") === true;
    const candidates = this.list(filters).filter((v) => isPlainLocal(v) && v.refs.length === 0 && (everything || ANONYMOUS_LABEL in v.labels));
    const report: PruneReport = { deleted: [], reclaimed: 0 };
    for (const c of candidates) {
      try {
        await this.#locked(
          c.name,
          (v, driver) => {
            if (v.refs.length > 0 || mountedAt(driver.path(v.name)).length > 0) return; // taken while pruning
            const size = dataSize(driver.path(v.name)) ?? 0;
            this.#removeLocked(v, driver);
            report.deleted.push(v.name);
            report.reclaimed += size;
          },
          () => undefined,
        );
      } catch (err) {
        // As Docker: a volume that cannot be removed is skipped, the rest are pruned.
        log.warn(`prune ${vol(c.name)}: ${describe(err)}`);
      }
    }
    return report;
  }

  /** Takes reference `ref` on volume `name` (the first one mounts its device); returns the host path. */
  async mount(name: string, ref: string): Promise<string> {
    validateRef(ref);
    return this.#locked(name, async (v, driver) => {
      if (!v.refs.includes(ref)) {
        const active = await driver.mount(name, v.active);
        failpoint("volume-mount:mounted");
        try {
          this.#store.write(() => this.#store.addRef(name, ref, active, bootId()));
        } catch (err) {
          driver.unmount(name, active);
          throw err;
        }
      }
      return driver.path(name);
    });
  }

  /**
   * Drops reference `ref` from volume `name` (the last one unmounts its device). Unlike Docker, a
   * failed unmount keeps the reference, so the command can be repeated once the device is free.
   */
  async unmount(name: string, ref: string): Promise<void> {
    validateRef(ref);
    await this.#locked(name, (v, driver) => {
      if (!v.refs.includes(ref)) return;
      const active = driver.unmount(name, v.active);
      failpoint("volume-unmount:unmounted");
      this.#store.write(() => this.#store.removeRef(name, ref, active));
    });
  }

  /** The local volumes without mount options and the size of their data, as `docker system df` counts them. */
  usage(): VolumeUsage[] {
    return this.list()
      .filter(isPlainLocal)
      .map((v) => ({ volume: v, size: dataSize(v.mountpoint) }));
  }

  /** Removes what interrupted removals left on every driver's storage; returns the paths removed. */
  cleanup(): string[] {
    return this.#drivers.all().flatMap((d) => d.cleanup());
  }

  /** The volume part of `stor restore`: see {@link restoreVolumes}. */
  restore(policy: RestorePolicy): VolumeRestoreReport {
    return restoreVolumes({ home: this.home, store: this.#store, drivers: this.#drivers, locks: this.#locks }, policy);
  }

  close(): void {
    this.#store.close();
  }

  /** Volume `name`, or undefined; a name no volume can have is not looked up. */
  #find(name: string): VolumeRecord | undefined {
    return isVolumeName(name) ? this.#store.read(() => this.#store.get(name)) : undefined;
  }

  #get(name: string): VolumeRecord {
    const v = this.#find(name);
    if (!v) throw new NotFoundError(vol(name));
    return v;
  }

  #view(v: VolumeRecord): Volume {
    const d = this.#drivers.find(v.driver);
    return { ...v, mountpoint: d?.path(v.name) ?? "", scope: d?.scope ?? "local" };
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
    if (!this.#find(name)) return absent();
    const lock = this.#locks.lock(name);
    try {
      const v = this.#find(name); // again: it may have gone meanwhile
      return v ? await fn(v, this.#drivers.get(v.driver)) : absent();
    } finally {
      lock.release();
    }
  }
}
