/**
 * A Docker volume plugin as a stor volume driver: each driver call is the plugin's
 * `VolumeDriver.*` call, as Docker's volume driver adapter makes it. The plugin keeps the
 * volume's storage (and decides where it is mounted); stor keeps the metadata and references,
 * and gives each reference's id to Mount and Unmount. Loaded only when a volume names a driver
 * that is not built in, or a command asks which plugins there are.
 */
import type { PluginSettings } from "../config.ts";
import { NotFoundError, describe } from "../errors.ts";
import { log } from "../log.ts";
import type { DiscoveredVolume, ForeignStorageDriver, ListedVolume } from "./drivers.ts";
import { isVolumeName } from "./name.ts";
import { PluginClient, PluginError, oneLine, type Answer } from "./pluginClient.ts";
import { findPlugin, scanPlugins, type PluginSpec } from "./pluginDiscovery.ts";

/** A plugin's `Volume` in List and Get answers. */
interface PluginVolume {
  Name?: unknown;
  Mountpoint?: unknown;
  CreatedAt?: unknown;
  Status?: unknown;
}

/**
 * Plugin `name` from `settings.dirs`, activated: it must answer `/Plugin.Activate` implementing
 * `VolumeDriver`. Unlike dockerd, which waits for plugins starting alongside it, a name that no
 * socket or spec file has is not found at once (exit 3); a plugin that is there but does not
 * answer yet is retried as Docker's client retries.
 */
export async function openPlugin(name: string, settings: PluginSettings): Promise<PluginDriver> {
  const spec = findPlugin(name, settings.dirs);
  if (!spec) throw new NotFoundError(`volume driver "${name}"`);
  const client = new PluginClient(spec, settings);
  const manifest = await client.call("Plugin.Activate", null);
  const implemented = Array.isArray(manifest.Implements) ? manifest.Implements.map(String) : [];
  if (!implemented.includes("VolumeDriver")) {
    throw new NotFoundError(`volume driver "${name}" (${spec.addr})`, `the plugin does not implement VolumeDriver (it implements ${implemented.join(", ") || "nothing"})`);
  }
  return new PluginDriver(client, await scopeOf(client));
}

/** The plugin's Scope; as Docker, `local` when it cannot say or says something else. */
async function scopeOf(client: PluginClient): Promise<"local" | "global"> {
  let caps: Answer;
  try {
    caps = await client.call("VolumeDriver.Capabilities", null);
  } catch (err) {
    log.debug(`volume driver "${client.spec.name}": no capabilities, so local scope: ${(err as Error).message}`);
    return "local";
  }
  const scope = String((caps.Capabilities as Answer | undefined)?.Scope ?? "local").toLowerCase() || "local";
  if (scope === "local" || scope === "global") return scope;
  log.warn(`volume driver "${client.spec.name}": unknown scope "${oneLine(scope)}", taken as local`);
  return "local";
}

/** One activated plugin. */
export class PluginDriver implements ForeignStorageDriver {
  readonly name: string;
  readonly scope: "local" | "global";
  readonly ownsStorage = false as const;
  readonly #client: PluginClient;
  /** Mount points the plugin has told of, by volume: Docker's cached path. */
  readonly #paths = new Map<string, string>();

  constructor(client: PluginClient, scope: "local" | "global") {
    this.name = client.spec.name;
    this.scope = scope;
    this.#client = client;
  }

  async create(name: string, options: Record<string, string>): Promise<void> {
    await this.#call("VolumeDriver.Create", { Name: name, Opts: options }, "long");
  }

  async remove(name: string): Promise<void> {
    await this.#call("VolumeDriver.Remove", { Name: name });
    this.#paths.delete(name);
  }

  async path(name: string): Promise<string> {
    const known = this.#paths.get(name);
    if (known !== undefined) return known;
    return this.#mountpoint(name, "VolumeDriver.Path", await this.#call("VolumeDriver.Path", { Name: name }));
  }

  async mount(name: string, ref: string, active: number): Promise<number> {
    this.#mountpoint(name, "VolumeDriver.Mount", await this.#call("VolumeDriver.Mount", { Name: name, ID: ref }, "long"));
    return active + 1;
  }

  async unmount(name: string, ref: string, active: number): Promise<number> {
    await this.#call("VolumeDriver.Unmount", { Name: name, ID: ref });
    return Math.max(0, active - 1);
  }

  async list(): Promise<ListedVolume[]> {
    const volumes = (await this.#call("VolumeDriver.List", null)).Volumes;
    // Not "no volumes": restore drops the records of the volumes a List leaves out.
    if (!Array.isArray(volumes)) throw new PluginError(this.#client.spec, "VolumeDriver.List: malformed answer: Volumes is not a list");
    const listed: ListedVolume[] = [];
    for (const v of volumes as PluginVolume[]) {
      const name = typeof v?.Name === "string" ? v.Name : "";
      // A name that no volume can have would reach outside stor's lock directory: left out.
      if (!isVolumeName(name)) {
        log.warn(`volume driver "${this.name}": VolumeDriver.List: volume name "${oneLine(String(v?.Name))}" left out: not a valid volume name`);
        continue;
      }
      listed.push({ name, mountpoint: this.#remember(name, v.Mountpoint), created: typeof v.CreatedAt === "string" ? v.CreatedAt : "" });
    }
    return listed;
  }

  async discovered(name: string): Promise<DiscoveredVolume> {
    const v = (await this.#call("VolumeDriver.Get", { Name: name })).Volume as PluginVolume | null | undefined;
    if (!v || typeof v !== "object") throw new NotFoundError(`volume "${name}"`, `not found by volume driver "${this.name}"`);
    const status = v.Status && typeof v.Status === "object" && !Array.isArray(v.Status) ? (v.Status as Record<string, unknown>) : undefined;
    return {
      name,
      options: {},
      created: typeof v.CreatedAt === "string" ? v.CreatedAt : "",
      mountpoint: this.#remember(name, v.Mountpoint),
      status,
    };
  }

  cleanup(): string[] {
    return []; // the plugin tidies its own storage
  }

  /**
   * Calls `method`; an `Err` in the answer is the plugin's error. As Docker's client decodes every
   * answer into a struct with `Err string`, an Err of another type (null aside) is a malformed answer.
   */
  async #call(method: string, body: object | null, time: "short" | "long" = "short"): Promise<Answer> {
    const answer = await this.#client.call(method, body, time);
    const err = answer.Err ?? "";
    if (typeof err !== "string") throw new PluginError(this.#client.spec, `${method}: malformed answer: Err is not a string`);
    if (err !== "") throw new PluginError(this.#client.spec, `${method}: ${oneLine(err)}`);
    return answer;
  }

  /**
   * The mount point in a Mount or Path answer, kept as `name`'s path. Docker decodes it as a
   * string (another type is a malformed answer); an empty one is no place to use.
   */
  #mountpoint(name: string, method: string, answer: Answer): string {
    const mountpoint = answer.Mountpoint ?? "";
    if (typeof mountpoint !== "string") throw new PluginError(this.#client.spec, `${method}: malformed answer: Mountpoint is not a string`);
    if (mountpoint === "") throw new PluginError(this.#client.spec, `${method}: the answer has no mount point`);
    return this.#remember(name, mountpoint);
  }

  /** Keeps `mountpoint` (when the plugin gave a string) as `name`'s path; returns it, or "". */
  #remember(name: string, mountpoint: unknown): string {
    if (typeof mountpoint !== "string" || mountpoint === "") return this.#paths.get(name) ?? "";
    this.#paths.set(name, mountpoint);
    return mountpoint;
  }
}

/** A plugin found, and whether it answers as a volume driver. */
export interface PluginStatus {
  name: string;
  /** Its address; "" when its spec file could not be read. */
  addr: string;
  /** The socket or spec file it was found as. */
  source: string;
  /** Its scope when it answers. */
  scope?: "local" | "global";
  /** Why it is no usable volume driver; undefined when it answers as one. */
  error?: string;
}

/** Every plugin in `settings.dirs`, each activated (all at once) to see whether it answers. */
export async function pluginStatuses(settings: PluginSettings): Promise<PluginStatus[]> {
  return Promise.all(
    scanPlugins(settings.dirs).map(async (name): Promise<PluginStatus> => {
      let spec: PluginSpec | undefined;
      try {
        spec = findPlugin(name, settings.dirs);
        const driver = await openPlugin(name, settings);
        return { name, addr: spec!.addr, source: spec!.source, scope: driver.scope };
      } catch (err) {
        return { name, addr: spec?.addr ?? "", source: spec?.source ?? "", error: describe(err) };
      }
    }),
  );
}
