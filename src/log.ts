/** Levelled logging to stderr. Messages pass through {@link redact} so secrets never reach a log. */
import { writeSync } from "node:fs";
import { paint } from "./colour.ts";
import { redact } from "./redact.ts";

export const LOG_LEVELS = ["error", "warn", "info", "debug"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

let threshold = 1; // warn
const COLOURS = ["red", "yellow", "cyan", "gray"] as const;

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
  const tag = paint(COLOURS[LOG_LEVELS.indexOf(level)]!, level);
  writeSync(2, `stor: ${tag}: ${redact(message)}\n`);
}

export const log = {
  error: (m: string) => emit("error", m),
  warn: (m: string) => emit("warn", m),
  info: (m: string) => emit("info", m),
  debug: (m: string) => emit("debug", m),
};
