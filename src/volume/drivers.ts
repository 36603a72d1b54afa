/**
 * Volume drivers and their registry by name, as Docker's volume drivers: `local` is built in;
 * another driver (a volume plugin, say) registers a factory under its name with
 * {@link registerDriver} and is then found like `local`.
 */
import { NotFoundError } from "../errors.ts";
import { LocalDriver } from "./local.ts";
import type { VolumeStore } from "./volumeStore.ts";

/** A volume as a driver finds it on its own storage: what restore adopts when metadata lacks it. */
export interface DiscoveredVolume {
  name: string;
  options: Record<string, string>;
  /** RFC 3339, to the second. */
  created: string;
}

/**
 * What the volume service asks of a driver. The service serialises calls per volume name and
 * keeps metadata and references; a driver keeps only the volume's storage.
 */
export interface VolumeDriver {
  readonly name: string;
  /** Docker's Scope: `local` (this host) or `global`. */
  readonly scope: "local" | "global";
  /**
   * Makes the storage of volume `name`. Bad options are an InvalidArgumentError before anything
   * is made; on a later failure nothing of what it made is left.
   */
  create(name: string, options: Record<string, string>): void;
  /** Removes the storage and data of volume `name`. */
  remove(name: string): void;
  /** The host path of the volume's data. */
  path(name: string): string;
  /** Makes `name` usable for one more reference, given its active-mount count; returns the new count. */
  mount(name: string, active: number): Promise<number>;
  /** Gives up one reference's use of `name`, given its active-mount count; returns the new count. */
  unmount(name: string, active: number): number;
  /** Names of the volumes found on the driver's storage. */
  list(): string[];
  /** What the driver's storage tells of volume `name` (one of {@link list}). */
  discovered(name: string): DiscoveredVolume;
  /** Removes what interrupted operations left on the driver's storage; returns the paths removed. */
  cleanup(): string[];
}

/** What a driver is made with: the volumes root and the metadata store. */
export interface DriverContext {
  home: string;
  store: VolumeStore;
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
 * refused when it is loaded. Drivers found outside this process (volume plugins) answer here too.
 */
export function knownDriver(name: string): boolean {
  return FACTORIES.has(name);
}

/** The names of the drivers {@link knownDriver} knows, for messages. */
export function driverNames(): string[] {
  return [...FACTORIES.keys()];
}

/** The registered drivers of one volume service, each made on first use. */
export class Drivers {
  readonly #ctx: DriverContext;
  readonly #made = new Map<string, VolumeDriver>();

  constructor(ctx: DriverContext) {
    this.#ctx = ctx;
  }

  /** Driver `name`, or undefined when none is registered under it. */
  find(name: string): VolumeDriver | undefined {
    let d = this.#made.get(name);
    if (!d) {
      const factory = FACTORIES.get(name);
      if (!factory) return undefined;
      this.#made.set(name, (d = factory(this.#ctx)));
    }
    return d;
  }

  /** Driver `name`; an unknown name is not found (exit 3). */
  get(name: string): VolumeDriver {
    const d = this.find(name);
    if (!d) throw new NotFoundError(`volume driver "${name}"`);
    return d;
  }

  /** Every registered driver. */
  all(): VolumeDriver[] {
    return [...FACTORIES.keys()].map((n) => this.get(n));
  }
}
