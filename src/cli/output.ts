import { OutputClosedError, describe } from "../errors.ts";
import { errnoCode } from "../sys/libc.ts";
import { oneLine } from "../oneLine.ts";
import { redact } from "../redact.ts";
import { writeText } from "../sys/pathCalls.ts";
import { trace } from "../trace.ts";

/** Output in the shapes ctr and docker print: Go's tabwriter tables, sizes and indented JSON. */

/** Options of Go's text/tabwriter as the reference tools set them. */
export interface TableStyle {
  minWidth: number;
  padding: number;
  /** ctr ends every cell with a tab, so the last column is padded too; docker does not. */
  padLast: boolean;
}

/** ctr: tabwriter.NewWriter(os.Stdout, 1, 8, 1, ' ', 0), every cell tab-terminated. */
export const CTR_TABLE: TableStyle = { minWidth: 1, padding: 1, padLast: true };
/** docker CLI: tabwriter.NewWriter(out, 10, 1, 3, ' ', 0). */
export const DOCKER_TABLE: TableStyle = { minWidth: 10, padding: 3, padLast: false };

/**
 * The width of `s` in characters (code points), as tabwriter counts runes: its UTF-16 length less
 * one for each surrogate pair. A loop: spreading every cell into an array went through the string
 * iterator twice a cell (`ls` of 81 snapshots spent 0.8 ms formatting).
 */
function width(s: string): number {
  let n = s.length;
  for (let i = 0; i < s.length - 1; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        n--;
        i++;
      }
    }
  }
  return n;
}

/**
 * Formats rows (the first being the header) as aligned columns, one line each, each cell as
 * {@link oneLine} shows it: a key or label holding a newline or a terminal escape is one cell. Plain
 * loops: a builtin's first call compiles it (Array.from cost `ls` 0.15 ms), and most commands print
 * one table.
 */
export function table(given: readonly (readonly string[])[], style: TableStyle): string {
  const rows: string[][] = [];
  for (const r of given) {
    const cells: string[] = [];
    for (const cell of r) cells.push(oneLine(cell));
    rows.push(cells);
  }
  const widths: number[] = [];
  const cellWidths: number[][] = [];
  for (const r of rows) {
    const ws: number[] = [];
    for (let c = 0; c < r.length; c++) {
      ws.push(width(r[c]!));
      widths[c] = Math.max(widths[c] ?? style.minWidth, ws[c]! + style.padding);
    }
    cellWidths.push(ws);
  }
  // Padding cut from one run of spaces: a call of repeat (a JavaScript builtin) a cell cost more.
  const spaces = " ".repeat(Math.max(0, ...widths));
  let out = "";
  for (let i = 0; i < rows.length; i++) {
    const r = rows[i]!;
    for (let c = 0; c < r.length; c++) out += c < r.length - 1 || style.padLast ? r[c]! + spaces.slice(0, widths[c]! - cellWidths[i]![c]!) : r[c]!;
    out += "\n";
  }
  return out;
}

const UNITS = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];

/** Binary size with one decimal, as ctr prints it: `4.0 KiB`, `0.0 B`. */
export function binarySize(bytes: number): string {
  let f = bytes;
  let i = 0;
  while (f >= 1024 && i < UNITS.length - 1) {
    f /= 1024;
    i++;
  }
  return `${f.toFixed(1)} ${UNITS[i]}`;
}

/** Decimal size with up to three significant digits, as docker prints it: `0B`, `12.3kB`, `1.5GB`. */
export function decimalSize(bytes: number): string {
  const units = ["B", "kB", "MB", "GB", "TB", "PB"];
  let f = bytes;
  let i = 0;
  while (f >= 1000 && i < units.length - 1) {
    f /= 1000;
    i++;
  }
  return `${Number(f.toPrecision(4)).toString()}${units[i]}`;
}

/**
 * JSON as Go's json.MarshalIndent(v, "", "    ") writes it, HTML characters and the line and
 * paragraph separators (U+2028, U+2029) escaped likewise, and what is no Unicode (a file name's
 * bytes that are not UTF-8, which stor holds as lone surrogates) as U+FFFD, as Go writes invalid
 * UTF-8; with `indent` 0, on one line as json.Marshal writes it (docker's `--format json` rows).
 */
export function goJson(value: unknown, indent = 4): string {
  let json = JSON.stringify(value, null, indent);
  // Most output has none of them: no RegExp is compiled for it. JSON.stringify writes a lone
  // surrogate as `\udXXX`, after an even number of backslashes (an odd one is an escaped `\`).
  if (json.includes("\\ud")) json = json.replace(/(?<!\\)((?:\\\\)*)\\ud[89a-f][0-9a-f]{2}/gi, "$1\\ufffd");
  if (!json.includes("<") && !json.includes(">") && !json.includes("&") && !json.includes("\u2028") && !json.includes("\u2029")) return json;
  return json.replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}

/**
 * Writes text to stdout, ending it with a newline. Synchronous writes on the descriptor: the
 * process.stdout stream costs more to set up than most commands take.
 */
export function print(text: string): void {
  trace("query, format");
  write(text.endsWith("\n") || text === "" ? text : `${text}\n`);
}

/** Writes text to stdout as it is (a prompt, say). */
export function write(text: string): void {
  try {
    writeText(1, text); // a file name that is not UTF-8 prints as its own bytes, as ctr and docker print it
  } catch (err) {
    throw outputError(err);
  }
}

/** Runs `write`, which writes to stdout as a stream (a layer): its reader going away ends it quietly. */
export async function toStdout<T>(write: () => Promise<T>): Promise<T> {
  try {
    return await write();
  } catch (err) {
    throw outputError(err);
  }
}

/** `err`, or an {@link OutputClosedError} when it is stdout's reader gone (EPIPE). */
function outputError(err: unknown): unknown {
  return errnoCode(err) === "EPIPE" ? new OutputClosedError({ cause: err }) : err;
}

/** Writes one line to stderr; control characters in it are escaped, so it stays one line. */
export function printError(line: string): void {
  writeText(2, `${oneLine(line)}\n`);
}

/** Prints `err` as stor's one-line error, `stor: <what>: <why>`, secrets masked. */
export function reportError(err: unknown): void {
  printError(`stor: ${redact(describe(err))}`);
}
