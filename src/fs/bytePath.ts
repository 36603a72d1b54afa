/**
 * Paths as bytes, for walking trees: a Linux file name is any bytes but `/` and NUL, and one that
 * is not UTF-8 would not survive a round trip through a JavaScript string.
 */

const SLASH = Buffer.from("/");

/** `dir/name`, as bytes. */
export function childPath(dir: Buffer, name: Buffer): Buffer {
  return Buffer.concat([dir, SLASH, name]);
}
