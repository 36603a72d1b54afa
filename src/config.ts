/**
 * Configuration: the ini file (`/etc/stor/stor.ini` unless `--config`/`STOR_CONFIG`), then
 * environment overrides, then command-line options. Validated with zod (./configSchema.ts); a
 * bad file is an error that names the file, the key and the reason.
 */
import { readFileSync } from "node:fs";
import { parse } from "ini";
import type { FileConfig } from "./configSchema.ts";
import type { SnapshotterName } from "./snapshot/registry.ts";
import { InvalidArgumentError } from "./errors.ts";
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
}

/** Options given on the command line; they override the file and the environment. */
export interface ConfigOverrides {
  root?: string;
  config?: string;
  logLevel?: string;
}

/** Loads and validates the configuration for this invocation. */
export function loadConfig(overrides: ConfigOverrides = {}, env = process.env): Config {
  const configPath = overrides.config ?? env.STOR_CONFIG ?? DEFAULT_CONFIG_PATH;
  const explicit = overrides.config !== undefined || env.STOR_CONFIG !== undefined;
  const file = readConfigFile(configPath, explicit);

  const root = overrides.root ?? env.STOR_ROOT ?? file.root ?? DEFAULT_ROOT;
  if (!root.startsWith("/")) throw new InvalidArgumentError(`root "${root}"`, "must be an absolute path");

  const logLevelRaw = overrides.logLevel ?? env.STOR_LOG_LEVEL ?? file.log_level ?? "warn";
  if (!(LOG_LEVELS as readonly string[]).includes(logLevelRaw)) {
    throw new InvalidArgumentError(`log level "${logLevelRaw}"`, `must be one of ${LOG_LEVELS.join(", ")}`);
  }
  return {
    root,
    configPath,
    logLevel: logLevelRaw as LogLevel,
    defaultSnapshotter: file.snapshot.default,
    defaultVolumeDriver: file.volume.default_driver ?? "local",
  };
}

function readConfigFile(path: string, explicit: boolean): FileConfig {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    // A missing default file means defaults; a file the user named must exist.
    if (code === "ENOENT" && !explicit) return EMPTY;
    throw new InvalidArgumentError(`config ${path}`, code === "ENOENT" ? "no such file" : String(code ?? err));
  }
  const parsed = parse(text);
  // A file of comments only (as installed) needs no validation: zod is loaded only for content.
  if (Object.keys(parsed).length === 0) return EMPTY;
  const { fileSchema } = require("./configSchema.ts") as typeof import("./configSchema.ts");
  const result = fileSchema.safeParse(parsed);
  if (result.success) return result.data;
  const issue = result.error.issues[0]!;
  const key = issue.code === "unrecognized_keys" ? [...issue.path, issue.keys[0]] : issue.path;
  const why = issue.code === "unrecognized_keys" ? "unknown key" : issue.message;
  throw new InvalidArgumentError(`config ${path}`, `${key.join(".") || "(file)"}: ${why}`);
}

const EMPTY: FileConfig = { snapshot: {}, volume: {} };
