/** Levelled logging to stderr. Messages pass through {@link redact} so secrets never reach a log. */
import kleur from "kleur";
import { redact } from "./redact.ts";

export const LOG_LEVELS = ["error", "warn", "info", "debug"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

let threshold = 1; // warn
const colours = [kleur.red, kleur.yellow, kleur.cyan, kleur.gray];

/** Sets the most verbose level that is printed. */
export function setLogLevel(level: LogLevel): void {
  threshold = LOG_LEVELS.indexOf(level);
}

/** True when messages at `level` are printed. */
export function logEnabled(level: LogLevel): boolean {
  return LOG_LEVELS.indexOf(level) <= threshold;
}

function emit(level: LogLevel, message: string): void {
  if (!logEnabled(level)) return;
  const tag = colours[LOG_LEVELS.indexOf(level)]!(level);
  process.stderr.write(`stor: ${tag}: ${redact(message)}\n`);
}

export const log = {
  error: (m: string) => emit("error", m),
  warn: (m: string) => emit("warn", m),
  info: (m: string) => emit("info", m),
  debug: (m: string) => emit("debug", m),
};
