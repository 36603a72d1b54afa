/**
 * The local driver's options (`type`, `device`, `o`, `size`), validated as Docker validates
 * them, kept in `opts.json` in Docker's shape, and turned into the mount the first reference
 * makes: nfs and cifs hosts resolved to addresses first, as Docker does.
 */
import { InvalidArgumentError, StorError, describe } from "../errors.ts";
import type { Mount } from "../sys/mount.ts";

/** `opts.json`, field for field as Docker's local driver writes it. */
export interface OptsConfig {
  MountType: string;
  MountOpts: string;
  MountDevice: string;
  Quota: { Size: number };
}

const VALID = ["type", "o", "device", "size"];
/** Options that need others: checked in this order so the message is stable. */
const REQUIRES: [string, string[]][] = [
  ["device", ["type"]],
  ["type", ["device"]],
  ["o", ["device", "type"]],
];
const UNITS: Record<string, number> = { k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40, p: 2 ** 50 };
const SIZE = /^(\d+(?:\.\d+)?) ?(?:([kmgtp])(?:i?b)?|b)?$/i;

/** One more than the largest size: a quota limit is a 64-bit count of bytes. */
const MAX_SIZE = 2 ** 64;

/**
 * Bytes of a size as Docker's RAMInBytes reads it (`10m`, `1.5GiB`, `512`: binary units), or
 * undefined; undefined too for more than a 64-bit count holds, which no quota can be set to.
 */
function parseSize(value: string): number | undefined {
  const m = SIZE.exec(value);
  const bytes = m ? Math.floor(Number(m[1]) * (m[2] ? UNITS[m[2].toLowerCase()]! : 1)) : undefined;
  return bytes !== undefined && bytes < MAX_SIZE ? bytes : undefined;
}

/**
 * Checks options as Docker's local driver does: unknown keys, a NUL in a value (which Go's mount
 * refuses), a cifs device with a port, the size (and, when it is not 0, `quotaSupported`), then
 * the companions each option needs. `what` names the volume in the error.
 */
export function validateOptions(what: string, options: Record<string, string>, quotaSupported: () => boolean): void {
  const invalid = (why: string) => new InvalidArgumentError(what, why);
  for (const key of Object.keys(options).sort()) {
    if (!VALID.includes(key)) throw invalid(`invalid option: "${key}"`);
    // Through serve a value may hold one (JSON): the mount would take only what comes before it.
    if (options[key]!.includes("\0")) throw invalid(`option "${key}": holds a NUL byte`);
  }
  if (options.type === "cifs" && options.device && cifsHost(options.device)?.port) {
    throw invalid("port not allowed in CIFS device URL, include 'port' in 'o='");
  }
  if (options.size !== undefined) {
    const size = parseSize(options.size);
    if (size === undefined) throw invalid(`invalid size: '${options.size}'`);
    if (size > 0 && !quotaSupported()) throw invalid("quota size requested but no quota support");
  }
  for (const [key, needs] of REQUIRES) {
    if (!(key in options)) continue;
    for (const n of needs) if (!(n in options)) throw invalid(`missing required option: "${n}"`);
  }
}

/** The `opts.json` content for options that passed {@link validateOptions}. */
export function toOptsConfig(options: Record<string, string>): OptsConfig {
  return {
    MountType: options.type ?? "",
    MountOpts: options.o ?? "",
    MountDevice: options.device ?? "",
    Quota: { Size: options.size === undefined ? 0 : parseSize(options.size)! },
  };
}

/** The options an `opts.json` was written from (for a volume adopted without metadata). */
export function fromOptsConfig(c: OptsConfig): Record<string, string> {
  const out: Record<string, string> = {};
  if (c.MountDevice) out.device = c.MountDevice;
  if (c.MountOpts) out.o = c.MountOpts;
  if (c.MountType) out.type = c.MountType;
  if (c.Quota.Size) out.size = String(c.Quota.Size);
  return out;
}

/** True when the volume's data is a mount of its own (a type or a device is set). */
export function needsMount(c: OptsConfig): boolean {
  return c.MountType !== "" || c.MountDevice !== "";
}

/** Resolves a host name to one address, IPv4 first, as Go's net.ResolveIPAddr("ip", …). */
async function resolveHost(host: string): Promise<string> {
  const { lookup } = await import("node:dns/promises");
  let all;
  try {
    all = await lookup(host, { all: true });
  } catch (err) {
    throw new StorError(`resolve network volume address "${host}"`, describe(err));
  }
  return (all.find((a) => a.family === 4) ?? all[0]!).address;
}

/**
 * The mount that presents the volume's data. For nfs and cifs, a host name in `addr=` (or, for
 * cifs, in the `//host/share` device) is replaced by its address: the kernel takes no names.
 */
export async function mountOf(c: OptsConfig): Promise<Mount> {
  if (!c.MountDevice) throw new StorError("volume options", "missing device");
  let device = c.MountDevice;
  let opts = c.MountOpts;
  if (c.MountType === "nfs" || c.MountType === "cifs") {
    // Loaded here, by the few mounts that need them, not by every volume command.
    const { isIP, isIPv4 } = await import("node:net");
    const addr = opts.split(",").find((o) => o.startsWith("addr="))?.slice(5);
    if (addr && !isIPv4(addr)) {
      opts = opts.replace(`addr=${addr}`, `addr=${await resolveHost(addr)}`);
    } else if (c.MountType === "cifs") {
      const host = cifsHost(device)?.host;
      if (host && !isIP(host)) {
        const address = await resolveHost(host);
        device = device.replace(CIFS_HOST, (_m, start: string, _h: string, port?: string) => `${start}${address}${port === undefined ? "" : `:${port}`}`);
      }
    }
  }
  return { Type: c.MountType, Source: device, Options: opts ? opts.split(",") : [] };
}

/** A cifs device's start: `//`, a user part (`user[:password]@`, as a URL has it), the host, `:port`. */
const CIFS_HOST = /^(\/\/(?:[^/@]*@)?)([^/:@]+)(?::([^/]*))?/;

/** Host and port of a cifs device `//[user[:password]@]host[:port]/share`, or undefined when it has no host. */
function cifsHost(device: string): { host: string; port: string } | undefined {
  const m = CIFS_HOST.exec(device);
  return m ? { host: m[2]!, port: m[3] ?? "" } : undefined;
}
