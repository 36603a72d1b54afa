/**
 * Finding volume plugins as Docker finds its (v1) plugins: a socket `NAME.sock` or
 * `NAME/NAME.sock`, else a file `NAME.spec` (one address, `unix://` or `tcp://`) or `NAME.json`
 * (`{"Addr", "TLSConfig"}`), directly in a plugin directory or in a subdirectory NAME. Sockets
 * win over files wherever they are, as in Docker. Nothing here connects: that is pluginClient's.
 */
import { join } from "../path.ts";
import { DOCKER_PLUGIN_DIRS } from "../config.ts";
import { InvalidArgumentError, StorError, describe } from "../errors.ts";
import { listDir } from "../sys/dirent.ts";
import { Errno, SysError } from "../sys/libc.ts";
import { readUtf8Text, statPath } from "../sys/pathCalls.ts";

/** TLS for an `https://` address, from a `.json` file (Docker's tlsconfig.Options). */
export interface PluginTls {
  caFile?: string;
  certFile?: string;
  keyFile?: string;
  /** Docker's rule: true unless a CA file is given. */
  insecureSkipVerify: boolean;
}

/** Where a plugin was found and how it is reached. */
export interface PluginSpec {
  name: string;
  /** `unix:///path`, `tcp://host:port`, `http://…` or `https://…`. */
  addr: string;
  tls?: PluginTls;
  /** The socket or file it was found as. */
  source: string;
}

/** A plugin name Docker's v1 discovery can find: one file name, never a path. */
const PLUGIN_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

/** The two places `name` may be in `dir` with extension `ext`. */
const candidates = (dir: string, name: string, ext: string) => [join(dir, `${name}${ext}`), join(dir, name, `${name}${ext}`)];

/** Whether `path` is a socket; a path that cannot be looked at is none. */
function isSocket(path: string): boolean {
  return statOrNothing(path)?.isSocket ?? false;
}

function isFile(path: string): boolean {
  return statOrNothing(path)?.isFile ?? false;
}

/** What is at `path`; nothing below a file either (ENOTDIR), as node's statSync without throwIfNoEntry. */
function statOrNothing(path: string) {
  try {
    return statPath(path);
  } catch (err) {
    if (err instanceof SysError && err.errno === Errno.ENOTDIR) return undefined;
    throw err;
  }
}

/** Plugin `name` in `dirs`, or undefined when none is there; an unreadable spec file is an error naming it. */
export function findPlugin(name: string, dirs: readonly string[] = DOCKER_PLUGIN_DIRS): PluginSpec | undefined {
  if (!PLUGIN_NAME.test(name)) return undefined;
  for (const dir of dirs) {
    for (const path of candidates(dir, name, ".sock")) if (isSocket(path)) return { name, addr: `unix://${path}`, source: path };
  }
  for (const dir of dirs) {
    for (const ext of [".spec", ".json"]) {
      for (const path of candidates(dir, name, ext)) {
        if (isFile(path)) return ext === ".spec" ? readSpec(name, path) : readJsonSpec(name, path);
      }
    }
  }
  return undefined;
}

/** True when a plugin `name` is in `dirs`: a few stat calls, no connection. */
export function pluginExists(name: string, dirs: readonly string[] = DOCKER_PLUGIN_DIRS): boolean {
  if (!PLUGIN_NAME.test(name)) return false;
  return dirs.some((dir) => candidates(dir, name, ".sock").some(isSocket) || [".spec", ".json"].some((ext) => candidates(dir, name, ext).some(isFile)));
}

/** The names of every plugin in `dirs`, sorted, each once. */
export function scanPlugins(dirs: readonly string[] = DOCKER_PLUGIN_DIRS): string[] {
  const names = new Set<string>();
  for (const dir of dirs) {
    let entries;
    try {
      entries = listDir(dir);
    } catch {
      continue; // absent or unreadable: no plugins there, as Docker skips it
    }
    for (const e of entries) {
      const m = /^(.*)\.(sock|spec|json)$/.exec(e.name);
      const name = e.isDirectory ? e.name : m?.[1];
      if (name !== undefined && pluginExists(name, [dir])) names.add(name);
    }
  }
  return [...names].sort();
}

/** A `.spec` file: one address with a scheme. */
function readSpec(name: string, path: string): PluginSpec {
  const addr = readText(path).trim();
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(addr)) throw new InvalidArgumentError(`plugin spec ${path}`, `"${addr}" is not an address (unix:///path or tcp://host:port)`);
  return { name, addr, source: path };
}

/** A `.json` file: `{"Addr": …, "TLSConfig": {"CAFile", "CertFile", "KeyFile", "InsecureSkipVerify"}}`. */
function readJsonSpec(name: string, path: string): PluginSpec {
  const text = readText(path);
  let raw: { Addr?: unknown; TLSConfig?: Record<string, unknown> | null };
  try {
    raw = JSON.parse(text) as typeof raw;
  } catch (err) {
    throw new InvalidArgumentError(`plugin spec ${path}`, `malformed JSON: ${describe(err)}`);
  }
  if (typeof raw?.Addr !== "string" || raw.Addr === "") throw new InvalidArgumentError(`plugin spec ${path}`, "no Addr");
  const t = raw.TLSConfig;
  const str = (v: unknown) => (typeof v === "string" && v !== "" ? v : undefined);
  const tls =
    t && typeof t === "object"
      ? { caFile: str(t.CAFile), certFile: str(t.CertFile), keyFile: str(t.KeyFile), insecureSkipVerify: !str(t.CAFile) || t.InsecureSkipVerify === true }
      : undefined;
  return { name, addr: raw.Addr, tls, source: path };
}

/** The text of spec file `path`: an address and file paths, so UTF-8 (see readUtf8Text). */
function readText(path: string): string {
  try {
    const text = readUtf8Text(path);
    if (text === undefined) throw new SysError(`open ${path}`, Errno.ENOENT);
    return text;
  } catch (err) {
    if (err instanceof InvalidArgumentError) throw new InvalidArgumentError(`plugin spec ${path}`, err.why);
    throw new StorError(`plugin spec ${path}`, describe(err));
  }
}
