/**
 * Text from users (names, keys, paths) may hold control characters; printed raw, a newline in a
 * name would split an error or log line (or a listing's row) in two, and a terminal escape would
 * act on the terminal (set its title, write its clipboard). Unicode's line and paragraph
 * separators and its bidirectional controls (U+202E shows what follows it reversed) are escaped
 * too: a name must show as what it is.
 */

const CONTROL = /[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;
const NAMED: Record<string, string> = { "\n": "\\n", "\r": "\\r", "\t": "\\t" };

/**
 * `text` with each of those characters escaped as Go's %q does (`\n`, `\x1b`, `\u202e`), so it
 * stays one line and shows as it is.
 */
export function oneLine(text: string): string {
  return text.replace(CONTROL, (c) => {
    const code = c.charCodeAt(0);
    return NAMED[c] ?? (code < 0x100 ? `\\x${code.toString(16).padStart(2, "0")}` : `\\u${code.toString(16)}`);
  });
}

/** Whether `text` holds a control character, which {@link oneLine} would escape. */
export function hasControl(text: string): boolean {
  return text.search(CONTROL) >= 0;
}
