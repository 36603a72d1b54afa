/**
 * Progress of long operations, as one line on stderr redrawn in place, on a terminal only: piped
 * or redirected, stor prints nothing of it. The line appears once an operation has run for
 * {@link QUIET_MS}, so quick commands never flicker, and is redrawn at most every
 * {@link REDRAW_MS}.
 */
import { statFd, writeText } from "../sys/pathCalls.ts";
import { observeTreeProgress, type TreeCounts } from "../fs/treeProgress.ts";
import type { UnpackProgress } from "../layer/unpack.ts";
import { oneLine } from "../oneLine.ts";
import { binarySize } from "./output.ts";

const QUIET_MS = 200;
const REDRAW_MS = 100;

/** The progress line of one operation. */
export class ProgressLine {
  readonly #start = Date.now();
  #last = 0;
  #shown = false;

  /** Shows `text` in place of the line's last text (when it is time to redraw). */
  update(text: string): void {
    const now = Date.now();
    if (now - this.#start < QUIET_MS || now - this.#last < REDRAW_MS) return;
    this.#last = now;
    this.#shown = true;
    writeText(2, `\r\x1b[K${oneLine(text)}`);
  }

  /** Replaces the line with `text`, kept (a step done); the next update starts a new line. */
  keep(text: string): void {
    writeText(2, `\r\x1b[K${oneLine(text)}\n`);
    this.#shown = false;
    this.#last = 0;
  }

  /** Takes the line away, leaving the terminal as it was. */
  clear(): void {
    if (this.#shown) writeText(2, "\r\x1b[K");
    this.#shown = false;
  }
}

/** A progress line, or undefined when stderr is not a terminal. */
export function progressLine(): ProgressLine | undefined {
  // node:tty costs a short command ~1 ms to load: a pipe or a file is no terminal, so it is not asked.
  if (!statFd(2).isCharacterDevice) return undefined;
  return (require("node:tty") as typeof import("node:tty")).isatty(2) ? new ProgressLine() : undefined;
}

/** `copying: 1234 entries, 56.0 MiB`. */
function countsText(label: string, p: TreeCounts): string {
  return `${label}: ${p.entries} entries${p.bytes > 0 ? `, ${binarySize(p.bytes)}` : ""}`;
}

/**
 * Runs `fn` with a callback that shows the entries and bytes it reports under `label` on a
 * terminal (undefined elsewhere); the line is gone when `fn` returns. The callback's shape is what
 * long operations report: a layer's apply (`applyToSnapshot(…, onProgress)`), a tree's copy.
 */
export async function withProgress<T>(label: string, fn: (onProgress?: (p: TreeCounts) => void) => T | Promise<T>): Promise<T> {
  const line = progressLine();
  if (!line) return fn(undefined);
  try {
    return await fn((p) => line.update(countsText(label, p)));
  } finally {
    line.clear();
  }
}

/**
 * Runs `fn`, showing the progress of the file trees it copies or removes (a native snapshot's
 * copy, a snapshot's or volume's removal) under `label` on a terminal.
 */
export function withTreeProgress<T>(label: string, fn: () => T | Promise<T>): Promise<T> {
  return withProgress(label, async (onProgress) => {
    observeTreeProgress(onProgress);
    try {
      return await fn();
    } finally {
      observeTreeProgress(undefined);
    }
  });
}

/**
 * Runs `fn` with `stor unpack`'s progress on a terminal (undefined elsewhere): a line per layer,
 * kept when the layer is done or was there already; the line under way is gone when `fn` returns
 * or fails, so an error starts a line of its own.
 */
export async function withUnpackProgress<T>(fn: (onProgress?: (p: UnpackProgress) => void) => Promise<T>): Promise<T> {
  const line = progressLine();
  if (!line) return fn(undefined);
  try {
    return await fn((p) => {
      const amount = `${binarySize(p.bytes)}${p.size ? ` / ${binarySize(p.size)}` : ""}`;
      const head = `layer ${p.layer}/${p.layers} ${p.chainID.slice(0, 19)}  `;
      if (p.state === "applying") line.update(`${head}applying ${amount}`);
      else line.keep(`${head}${p.state === "exists" ? "exists" : `done ${amount}`}`);
    });
  } finally {
    line.clear();
  }
}
