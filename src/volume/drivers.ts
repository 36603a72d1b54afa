/**
 * Volume drivers and their registry by name, as Docker's volume drivers: `local` is built in,
 * another built-in driver registers a factory under its name with {@link registerDriver}, and
 * any other name is a Docker volume plugin (./pluginDriver.ts), found as Docker finds it.
 */
import { isEmptyDir } from "../sys/dirent.ts";
import { statPath } from "../sys/pathCalls.ts";
import type { PluginSettings } from "../config.ts";
import { LocalDriver } from "./local.ts";
import type { VolumeStore } from "./volumeStore.ts";

/** A volume as a driver finds it on its own storage: what restore adopts when metadata lacks it. */
export interface DiscoveredVolume {
  name: string;
  options: Record<string, string>;
  /** The labels it was created with, where the driver keeps them with the storage (local). */
  labels?: Record<string, string>;
  /** RFC 3339, to the second; "" when the driver does not say. */
  created: string;
  /** The host path of the data, when the driver told it. */
  mountpoint?: string;
  /** What a plugin reports of the volume (Docker's `Status`), when it does. */
  status?: Record<string, unknown>;
}

/** A volume in a driver's list, with what the listing told of it. */
export interface ListedVolume {
  name: string;
  /** The host path of the data, when the listing told it. */
  mountpoint?: string;
  /** When the driver says it was made, when the listing told it. */
  created?: string;
}

/**
 * What the volume service asks of a driver. The service serialises calls per volume name and
 * keeps metadata and references; a driver keeps only the volume's storage.
 */
interface DriverCalls {
  readonly name: string;
  /** Docker's Scope: `local` (this host) or `global`. */
  readonly scope: "local" | "global";
  /**
   * Makes the storage of volume `name`. Bad options are an InvalidArgumentError before anything
   * is made; on a later failure nothing of what it made is left. A driver whose storage is stor's
   * own keeps `labels` in it, so that a volume adopted after a crash has them (see discovered).
   */
  create(name: string, options: Record<string, string>, labels: Record<string, string>): void | Promise<void>;
  /** Removes the storage and data of volume `name`. */
  remove(name: string): void | Promise<void>;
  /** Makes `name` usable for reference `ref`, given its active-mount count; returns the new count. */
  mount(name: string, ref: string, active: number): Promise<number>;
  /** Gives up reference `ref`'s use of `name`, given its active-mount count; returns the new count. */
  unmount(name: string, ref: string, active: number): number | Promise<number>;
  /** The volumes found on the driver's storage; with `only`, those of its names (a driver may list others too). */
  list(only?: readonly string[]): ListedVolume[] | Promise<ListedVolume[]>;
  /** What the driver's storage tells of volume `name`. */
  discovered(name: string): DiscoveredVolume | Promise<DiscoveredVolume>;
  /** Removes what interrupted operations left on the driver's storage; returns the paths removed. */
  cleanup(): string[];
}

/**
 * A driver whose storage is stor's own, below its root (`local`): it answers at once, and a
 * volume found there without metadata is a create cut short, which restore adopts.
 */
export interface OwnStorageDriver extends DriverCalls {
  readonly ownsStorage: true;
  /** The host path of the volume's data. */
  path(name: string): string;
  /** The directory holding the volume's data and the driver's files of it: what its removal takes. */
  storage(name: string): string;
  /** Whether the driver mounts a device of its own on `name`'s data: a mount there is then its. */
  mountsDevice(name: string): boolean;
  /**
   * Unmounts here the device of volume `name`, which nothing references: one a mount killed
   * before its reference was recorded left mounted. Busy, it is in use (PreconditionError).
   */
  unmountUnreferenced(name: string): void;
}

/** A driver whose storage is another's (a volume plugin): it answers over a socket. */
export interface ForeignStorageDriver extends DriverCalls {
  readonly ownsStorage: false;
  /** The host path of the volume's data, as the driver tells it. */
  path(name: string): Promise<string>;
}

export type VolumeDriver = OwnStorageDriver | ForeignStorageDriver;

/** What a driver is made with: the volumes root, the metadata store, where plugins are found. */
export interface DriverContext {
  home: string;
  store: VolumeStore;
  plugins: PluginSettings;
}

export type DriverFactory = (ctx: DriverContext) => VolumeDriver;

const FACTORIES = new Map<string, DriverFactory>();

/** Makes driver `name` available to every volume service made afterwards. */
export function registerDriver(name: string, factory: DriverFactory): void {
  FACTORIES.set(name, factory);
}

registerDriver("local", (ctx) => new LocalDriver(ctx));

/**
 * Whether a volume driver named `name` exists, so a config naming one that does not can be
 * refused when it is loaded: a registered driver, or a volume plugin found in `pluginDirs`
 * (discovery is loaded only for a name that is not built in).
 */
export function knownDriver(name: string, pluginDirs: readonly string[]): boolean {
  if (FACTORIES.has(name)) return true;
  const { pluginExists } = require("./pluginDiscovery.ts") as typeof import("./pluginDiscovery.ts");
  return pluginExists(name, pluginDirs);
}

/** The names of the drivers {@link knownDriver} knows, for messages. */
export function driverNames(): string[] {
  return [...FACTORIES.keys()];
}

/** True when `dir` exists and has something in it. */
function hasEntries(dir: string): boolean {
  try {
    // Most of the directories do not exist: asked so without an error, which costs more to make.
    // Anything else wrong with one (not a directory, unreadable) means no plugins there too.
    if (!statPath(dir)?.isDirectory) return false;
    return !isEmptyDir(dir);
  } catch {
    return false;
  }
}

/**
 * The drivers of one volume service, each made on first use: the registered ones, and any
 * volume plugin by its name, as Docker's plugin getter finds them. The plugin modules are
 * loaded only when a plugin is asked for, so commands on local volumes never pay for them.
 */
export class Drivers {
  readonly #ctx: DriverContext;
  readonly #made = new Map<string, VolumeDriver>();
  readonly #plugins = new Map<string, VolumeDriver>();
  readonly #opening = new Map<string, Promise<VolumeDriver>>();

  constructor(ctx: DriverContext) {
    this.#ctx = ctx;
  }

  /** Registered driver `name`, or undefined when none is registered under it; never a plugin. */
  builtin(name: string): VolumeDriver | undefined {
    let d = this.#made.get(name);
    if (!d) {
      const factory = FACTORIES.get(name);
      if (!factory) return undefined;
      this.#made.set(name, (d = factory(this.#ctx)));
    }
    return d;
  }

  /** Driver `name` if it is registered or a plugin already activated here; never looks for one. */
  find(name: string): VolumeDriver | undefined {
    return this.builtin(name) ?? this.#plugins.get(name);
  }

  /** Every registered driver. */
  all(): VolumeDriver[] {
    return [...FACTORIES.keys()].map((n) => this.builtin(n)!);
  }

  /**
   * Driver `name`: a registered one, else the plugin of that name, activated; none is not found
   * (exit 3). A plugin that does not answer is retried for the configured window, unless
   * `retry` is false: a plugin merely found (no volume of stor's names it) gets one attempt, so
   * a socket or spec file left behind by a plugin long gone never holds up a listing.
   */
  get(name: string, retry = true): Promise<VolumeDriver> {
    const d = this.builtin(name);
    if (d) return Promise.resolve(d);
    let opening = this.#opening.get(name);
    if (!opening) {
      const settings = retry ? this.#ctx.plugins : { ...this.#ctx.plugins, retryMs: 0 };
      opening = import("./pluginDriver.ts").then(async (m) => {
        const plugin = await m.openPlugin(name, settings);
        this.#plugins.set(name, plugin);
        return plugin;
      });
      this.#opening.set(name, opening);
      // A failed activation is tried afresh next time, as Docker forgets a plugin that failed.
      opening.catch(() => this.#opening.delete(name));
    }
    return opening;
  }

  /** The names of the volume plugins in the plugin directories (not asked whether they answer). */
  async plugins(): Promise<string[]> {
    // Most hosts have no plugin: a glance at the directories spares loading discovery at all.
    let any = false;
    for (const dir of this.#ctx.plugins.dirs) any ||= hasEntries(dir); // a loop: Array.prototype.some compiles on its first call
    if (!any) return [];
    const { scanPlugins } = await import("./pluginDiscovery.ts");
    return scanPlugins(this.#ctx.plugins.dirs).filter((n) => !FACTORIES.has(n));
  }
}
