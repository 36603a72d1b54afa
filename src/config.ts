/**
 * Configuration: the ini file (`/etc/stor/stor.ini` unless `--config`/`STOR_CONFIG`), then
 * environment overrides, then command-line options. Validated with zod (./configSchema.ts); a
 * bad file is an error that names the file, the key and the reason.
 */
import { resolve } from "./path.ts";
import type { FileConfig } from "./configSchema.ts";
import type { SnapshotterName } from "./snapshot/registry.ts";
import { cacheConfig, cachedConfig } from "./configCache.ts";
import { InvalidArgumentError } from "./errors.ts";
import { traceWithin } from "./trace.ts";
import { errnoCode } from "./sys/libc.ts";
import { readUtf8Text } from "./sys/pathCalls.ts";
import { environmentBytes } from "./sys/cmdline.ts";
import { escapeNonUtf8, isUtf8 } from "./fileName.ts";
import { LOG_LEVELS, type LogLevel } from "./log.ts";

export const DEFAULT_CONFIG_PATH = "/etc/stor/stor.ini";
export const DEFAULT_ROOT = "/var/lib/stor";


/** The settings in force for one invocation. */
export interface Config {
  root: string;
  configPath: string;
  logLevel: LogLevel;
  /** The configured default snapshotter, or undefined to pick by kernel support. */
  defaultSnapshotter?: SnapshotterName;
  defaultVolumeDriver: string;
  /** Volume plugins: where they are looked for, and how long they are waited for. */
  plugins: PluginSettings;
}

/** Where volume plugins are found and how long stor waits for them, as Docker does by default. */
export interface PluginSettings {
  /** Searched in order: sockets in all of them first, then `.spec` and `.json` files. */
  dirs: string[];
  /** How long a call may take (Create and Mount: twice as long); Docker's is a minute. */
  timeoutMs: number;
  /** How long a plugin that cannot be reached is retried, with backoff; Docker's is 30 seconds. */
  retryMs: number;
}

/** Where Docker looks for plugins: sockets, then spec files. */
export const DOCKER_PLUGIN_DIRS = ["/run/docker/plugins", "/etc/docker/plugins", "/usr/lib/docker/plugins"];

/** Options given on the command line; they override the file and the environment. */
export interface ConfigOverrides {
  root?: string;
  config?: string;
  logLevel?: string;
  /** Plugin directories searched before the configured ones (`--plugin-dir`). */
  pluginDirs?: string[];
}

/** `raw` as a log level, or the one-line error for a value that is none. */
export function parseLogLevel(raw: string): LogLevel {
  if (!(LOG_LEVELS as readonly string[]).includes(raw)) throw new InvalidArgumentError(`log level "${raw}"`, `must be one of ${LOG_LEVELS.join(", ")}`);
  return raw as LogLevel;
}

/**
 * Environment variable `name` of `env`, refused when it is not UTF-8, as an argument is (see
 * src/cli/main.ts): decoded, its bytes would name another root, file or directory.
 */
function fromEnv(env: NodeJS.ProcessEnv, name: string): string | undefined {
  const value = env[name];
  if (value?.includes("\ufffd") && env === process.env) {
    const bytes = environmentBytes(name);
    if (bytes && !isUtf8(bytes)) throw new InvalidArgumentError(`environment variable ${name}="${escapeNonUtf8(bytes)}"`, "is not UTF-8: stor takes names and paths as UTF-8");
  }
  return value;
}

/**
 * An environment variable's setting: an empty one (`export STOR_ROOT=`) is no setting, as Docker
 * reads its own. (STOR_PLUGIN_DIRS is the exception: empty there means no directories.)
 */
function setting(env: NodeJS.ProcessEnv, name: string): string | undefined {
  const value = fromEnv(env, name);
  return value === "" ? undefined : value;
}

/**
 * The log level the command line or the environment gives (`--log-level`, else STOR_LOG_LEVEL),
 * checked; undefined when neither does. Asked before any command runs, and by loadConfig.
 */
export function givenLogLevel(overrides: Pick<ConfigOverrides, "logLevel">, env = process.env): LogLevel | undefined {
  const level = overrides.logLevel ?? setting(env, "STOR_LOG_LEVEL");
  return level === undefined ? undefined : parseLogLevel(level);
}

/** Loads and validates the configuration for this invocation. */
export function loadConfig(overrides: ConfigOverrides = {}, env = process.env): Config {
  const fromConfigEnv = setting(env, "STOR_CONFIG");
  const configPath = overrides.config ?? fromConfigEnv ?? DEFAULT_CONFIG_PATH;
  const explicit = overrides.config !== undefined || fromConfigEnv !== undefined;
  const file = readConfigFile(configPath, explicit);

  const root = overrides.root ?? setting(env, "STOR_ROOT") ?? file.root ?? DEFAULT_ROOT;
  if (!root.startsWith("/")) throw new InvalidArgumentError(`root "${root}"`, "must be an absolute path");

  const logLevel = givenLogLevel(overrides, env) ?? parseLogLevel(file.log_level ?? "warn");
  // Space-separated; empty means none (`--plugin-dir` alone), unset means Docker's.
  const pluginDirs = fromEnv(env, "STOR_PLUGIN_DIRS") ?? file.volume.plugin_dirs;
  const dirs: string[] = [];
  for (const d of overrides.pluginDirs ?? []) dirs.push(resolve(d));
  for (const d of pluginDirs === undefined ? DOCKER_PLUGIN_DIRS : whitespaceWords(pluginDirs)) dirs.push(d);
  const plugins: PluginSettings = {
    dirs,
    timeoutMs: (file.volume.plugin_timeout ?? 60) * 1000,
    retryMs: (file.volume.plugin_retry ?? 30) * 1000,
  };
  const driver = file.volume.default_driver;
  // The drivers are loaded only for a file that names one: most commands never need them.
  if (driver !== undefined) {
    const { knownDriver, driverNames } = require("./volume/drivers.ts") as typeof import("./volume/drivers.ts");
    if (!knownDriver(driver, plugins.dirs)) throw new InvalidArgumentError(`config ${configPath}`, `volume.default_driver: unknown volume driver "${driver}" (known: ${driverNames().join(", ")})`);
  }
  return {
    root,
    configPath,
    logLevel,
    defaultSnapshotter: file.snapshot.default,
    defaultVolumeDriver: driver ?? "local",
    plugins,
  };
}

/** A config file is a few hundred bytes; it is read on every command, so never more than this. */
const MAX_CONFIG = 2 ** 20;

function readConfigFile(path: string, explicit: boolean): FileConfig {
  let text: string | undefined;
  try {
    text = readUtf8Text(path, MAX_CONFIG); // its root and directories are paths
  } catch (err) {
    throw new InvalidArgumentError(`config ${path}`, err instanceof InvalidArgumentError ? err.why : (errnoCode(err) ?? String(err)));
  }
  // A missing default file means defaults; a file the user named must exist.
  if (text === undefined && !explicit) return EMPTY;
  if (text === undefined) throw new InvalidArgumentError(`config ${path}`, "no such file");
  // A file of comments and empty sections only (as installed) needs no validation: zod and ini
  // are loaded only for content, and only for content zod has not validated already (see
  // src/configCache.ts): loading ini and its parse cost every command 0.2–0.35 ms.
  if (holdsNoSetting(text)) return EMPTY;
  const cached = cachedConfig(text);
  if (cached) return cached;
  const start = performance.now();
  const { parse } = require("ini") as typeof import("ini");
  const { fileSchema } = require("./configSchema.ts") as typeof import("./configSchema.ts");
  traceWithin("ini, zod load", start);
  // ini drops a key or section named __proto__ without a word; any other unknown one is refused.
  // Quoted (`"__proto__" =`, `['__proto__']`) or as an array (`__proto__[] =`), ini unquotes it the same.
  if (/^[ \t]*(?:\[[ \t]*(["']?)__proto__\1[ \t]*\]|(["']?)__proto__\2(?:\[\])?[ \t]*=)/m.test(text)) throw new InvalidArgumentError(`config ${path}`, "__proto__: unknown key");
  const parsed = parse(text);
  const result = fileSchema.safeParse(parsed);
  if (result.success) {
    cacheConfig(text, result.data);
    return result.data;
  }
  const issue = result.error.issues[0]!;
  const key = issue.code === "unrecognized_keys" ? [...issue.path, issue.keys[0]] : issue.path;
  const why = issue.code === "unrecognized_keys" ? "unknown key" : issue.message;
  throw new InvalidArgumentError(`config ${path}`, `${key.join(".") || "(file)"}: ${why}`);
}

const EMPTY: FileConfig = { snapshot: {}, volume: {} };

/**
 * The words of `text` between runs of whitespace, as `text.split(/\s+/).filter(Boolean)` gives
 * them (exported for its test), without the RegExp and filter that every command given a list of
 * plugin directories compiled for it. A character is whitespace when trim takes it away: the set
 * `\s` matches.
 */
export function whitespaceWords(text: string): string[] {
  const words: string[] = [];
  let from = 0;
  for (let i = 0; i <= text.length; i++) {
    if (i < text.length && text[i]!.trim() !== "") continue;
    if (i > from) words.push(text.slice(from, i));
    from = i + 1;
  }
  return words;
}

/**
 * Whether ini text `text` surely sets nothing (exported for its test, which holds it to ini): each line blank, a comment (`;` or `#` first, as
 * ini reads them) or the header of a known section (`[snapshot]`, `[volume]`, from the line's
 * start, as ini reads a header). Lines end at a CR as at an LF, as ini splits them: a comment
 * line must not hide a setting after a lone CR. Any other line, however ini would read it, is for
 * ini and zod.
 */
export function holdsNoSetting(text: string): boolean {
  // Where the next LF and CR are, each looked for again only once passed: the text is scanned once for each.
  let lf = -1;
  let cr = -1;
  for (let from = 0; from <= text.length; ) {
    if (lf < from) {
      lf = text.indexOf("\n", from);
      if (lf < 0) lf = text.length;
    }
    if (cr < from) {
      cr = text.indexOf("\r", from);
      if (cr < 0) cr = text.length;
    }
    const end = lf < cr ? lf : cr;
    const first = text.charCodeAt(from);
    // A comment from the line's start (most of an installed file) needs no cutting out.
    if (first !== 0x3b && first !== 0x23) {
      const line = text.slice(from, end);
      const start = line.trimStart();
      if (start !== "" && start[0] !== ";" && start[0] !== "#") {
        const header = line.trimEnd();
        if (header !== "[snapshot]" && header !== "[volume]") return false;
      }
    }
    from = end + 1;
  }
  return true;
}
