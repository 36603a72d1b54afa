/**
 * Levelled logging to stderr. Messages pass through {@link redact} so secrets never reach a log,
 * and through {@link oneLine} so a name with a newline cannot forge a line. `stor serve` logs
 * with timestamps, as text or (for log collectors) one JSON object a line, and one line per call
 * it serves ({@link logCall}).
 */
import { writeText } from "./sys/pathCalls.ts";
import { paint } from "./colour.ts";
import { ExitCode, describe, exitCodeOf } from "./errors.ts";
import { oneLine } from "./oneLine.ts";
import { redact } from "./redact.ts";

export const LOG_LEVELS = ["error", "warn", "info", "debug"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
export const LOG_FORMATS = ["text", "json"] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

let threshold = 1; // warn
// The environment carries the format to `stor serve`'s threads, which load this module afresh.
let format: LogFormat = process.env.STOR_LOG_FORMAT === "json" ? "json" : "text";
let timestamps = process.env.STOR_LOG_FORMAT !== undefined;
const COLOURS = ["red", "yellow", "cyan", "gray"] as const;

/** Sets the most verbose level that is printed. */
export function setLogLevel(level: LogLevel): void {
  threshold = LOG_LEVELS.indexOf(level);
}

/** True when messages at `level` are printed. */
export function logEnabled(level: LogLevel): boolean {
  return LOG_LEVELS.indexOf(level) <= threshold;
}

/** Logs as a server does from now on, in this process and the threads it starts: timestamped, as `f`. */
export function setLogFormat(f: LogFormat): void {
  format = f;
  timestamps = true;
  process.env.STOR_LOG_FORMAT = f;
}

function emit(level: LogLevel, message: string, fields?: Record<string, string | number>): void {
  if (!logEnabled(level)) return;
  const time = new Date().toISOString();
  if (format === "json") {
    const safe = fields && Object.fromEntries(Object.entries(fields).map(([k, v]) => [k, typeof v === "string" ? redact(v) : v]));
    writeText(2, `${JSON.stringify({ time, level, msg: redact(message), ...safe })}\n`);
    return;
  }
  const tag = paint(COLOURS[LOG_LEVELS.indexOf(level)]!, level);
  writeText(2, `${timestamps ? `${time} ` : ""}stor: ${tag}: ${oneLine(redact(message))}\n`);
}

export const log = {
  error: (m: string) => emit("error", m),
  warn: (m: string) => emit("warn", m),
  info: (m: string) => emit("info", m),
  debug: (m: string) => emit("debug", m),
};

/**
 * Logs one served call: its name, what it named (`{ key }`, `{ name }`), how it ended and how
 * long it took since `start` (performance.now()). A call refused for the caller's mistake (a bad
 * option, a missing key: any typed error but an internal one) is a refusal at info level; only
 * a failure of stor's own is an error. A call left `unanswered` (its connection closed, for the
 * caller to retry) is a warning, or an error when a failure of stor's (`err.cause`) is behind it.
 */
export function logCall(call: string, subject: Record<string, string | undefined>, start: number, err?: unknown, unanswered = false): void {
  const outcome = err === undefined ? "ok" : unanswered ? "unanswered" : exitCodeOf(err) === ExitCode.internal ? "failed" : "refused";
  const level: LogLevel = outcome === "failed" || (unanswered && (err as Error).cause !== undefined) ? "error" : unanswered ? "warn" : "info";
  if (!logEnabled(level)) return;
  const ms = Math.round((performance.now() - start) * 10) / 10;
  const named = Object.fromEntries(Object.entries(subject).filter((e): e is [string, string] => e[1] !== undefined && e[1] !== ""));
  const why = err === undefined ? undefined : describe(err);
  const text = [call, ...Object.entries(named).map(([k, v]) => `${k}=${JSON.stringify(v)}`), why === undefined ? outcome : `${outcome}: ${why}`, `${ms}ms`].join(" ");
  emit(level, text, { call, ...named, outcome, ...(why !== undefined && { error: why }), duration_ms: ms });
}
