/**
 * Typed errors and the exit codes of the command-line contract (containerd's errdefs).
 * Every error a user can cause is a {@link StorError}: it knows its exit code and prints as
 * one line, `<what>: <why>`.
 */

/** Exit codes of the contract. */
export const ExitCode = {
  ok: 0,
  internal: 1,
  invalid: 2,
  notFound: 3,
  exists: 4,
  precondition: 5,
  /** Not the contract's: what a shell shows for a program SIGPIPE ended (128 + 13), as ctr's. */
  outputClosed: 141,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

/** Base class: `what` names the thing that failed, `why` says why. */
export class StorError extends Error {
  // Each class names itself: the build minifies identifiers, class names included.
  override name = "StorError";
  readonly code: ExitCode;
  readonly what: string;
  readonly why: string;
  constructor(what: string, why: string, code: ExitCode = ExitCode.internal, options?: ErrorOptions) {
    super(`${what}: ${why}`, options);
    this.what = what;
    this.why = why;
    this.code = code;
  }
}

/** Invalid argument or usage (exit 2). */
export class InvalidArgumentError extends StorError {
  override name = "InvalidArgumentError";
  constructor(what: string, why: string, options?: ErrorOptions) {
    super(what, why, ExitCode.invalid, options);
  }
}

/** The named thing does not exist (exit 3). */
export class NotFoundError extends StorError {
  override name = "NotFoundError";
  constructor(what: string, why = "not found", options?: ErrorOptions) {
    super(what, why, ExitCode.notFound, options);
  }
}

/** The named thing exists already (exit 4). */
export class AlreadyExistsError extends StorError {
  override name = "AlreadyExistsError";
  constructor(what: string, why = "already exists", options?: ErrorOptions) {
    super(what, why, ExitCode.exists, options);
  }
}

/** The thing is in the wrong state: in use, has children, not active, not committed (exit 5). */
export class PreconditionError extends StorError {
  override name = "PreconditionError";
  constructor(what: string, why: string, options?: ErrorOptions) {
    super(what, why, ExitCode.precondition, options);
  }
}

/** Exit code for any thrown value: a StorError's own, 1 for everything else. */
export function exitCodeOf(err: unknown): ExitCode {
  if (err instanceof StorError) return err.code;
  // A database whose write lock another process held past the busy timeout (one stopped in its
  // transaction) is in use, as a mounted snapshot is: nothing is wrong with it.
  return (err as { code?: unknown } | null)?.code === "SQLITE_BUSY" ? ExitCode.precondition : ExitCode.internal;
}

/** The reason of a system error without its call and path (`no such file or directory`), the message of any other. */
export function errnoReason(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  if (e && typeof e === "object" && typeof e.code === "string" && e.syscall) return String(e.message).replace(/^[A-Z]+: /, "").replace(/, \w+(?: .*)?$/, "");
  return err instanceof StorError ? err.why : err instanceof Error ? err.message.split("\n")[0]! : String(err);
}

/**
 * The most characters an error line gives each of its parts, `what` and `why`: room for any valid
 * volume name (255) or an everyday path whole, not for a 100 KB label key.
 */
const MAX_PART = 512;

/**
 * `text` cut to {@link MAX_PART} characters: its middle gives way to `…`, so an input of any size
 * (a 100 KB label key) is named, not repeated, and the head (what it is) and the tail (the closing
 * quote, the reason after a long name) stay. A surrogate pair is never split.
 */
function bounded(text: string): string {
  if (text.length <= MAX_PART) return text;
  const isLow = (i: number) => (text.charCodeAt(i) & 0xfc00) === 0xdc00;
  let head = (MAX_PART >> 1) - 1;
  let tail = text.length - (MAX_PART - head - 1);
  if (isLow(head)) head--;
  if (isLow(tail)) tail++;
  return `${text.slice(0, head)}…${text.slice(tail)}`;
}

/**
 * A one-line reason for any thrown value: a StorError's `what: why`, a system error's message.
 * Every error is printed, logged and answered to clients through it, so each part is bounded here.
 */
export function describe(err: unknown): string {
  if (err instanceof StorError) return `${bounded(err.what)}: ${bounded(err.why)}`;
  const e = err as NodeJS.ErrnoException;
  if (e && typeof e === "object" && typeof e.code === "string" && e.syscall) return `${bounded(`${e.syscall}${e.path ? ` ${e.path}` : ""}`)}: ${bounded(errnoReason(e))}`;
  return bounded(err instanceof Error ? err.message.split("\n")[0]! : String(err));
}

/**
 * The reader of stdout went away (`stor snapshot ls | head`): the command stops there, quietly,
 * as a program SIGPIPE ends (Go's, ctr's and docker's, do).
 */
export class OutputClosedError extends StorError {
  override name = "OutputClosedError";
  constructor(options?: ErrorOptions) {
    super("stdout", "closed by its reader", ExitCode.outputClosed, options);
  }
}
