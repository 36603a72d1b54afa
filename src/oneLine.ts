/**
 * Text from users (names, keys, paths) may hold control characters; printed raw, a newline in a
 * name would split an error or log line in two and a terminal escape would act on the terminal.
 */

const CONTROL = /[\x00-\x1f\x7f-\x9f]/g;
const NAMED: Record<string, string> = { "\n": "\\n", "\r": "\\r", "\t": "\\t" };

/** `text` with each control character escaped as Go's %q does (`\n`, `\x1b`), so it stays one line. */
export function oneLine(text: string): string {
  return text.replace(CONTROL, (c) => NAMED[c] ?? `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`);
}
