/**
 * File names are bytes: Linux allows any but `/` and NUL, and one that is not UTF-8 would not
 * survive a round trip through a JavaScript string. Trees walked by stor itself go as bytes
 * ({@link childPath}); where names must be strings (layers, tar headers), a name is decoded as
 * UTF-8 with each byte that is not valid UTF-8 kept as a lone surrogate U+DC80–U+DCFF, as
 * Python's surrogateescape does, and {@link encodeName} gives back the very same bytes.
 */

/**
 * Decodes strict UTF-8, a leading U+FEFF kept as the name's, and throws on anything else (a
 * global, unlike node:buffer's isUtf8, which costs start-up ~0.3 ms). Made on first use, as
 * SLASH is no Buffer: making either when the module loaded cost every command ~0.1 ms.
 */
let strictUtf8: TextDecoder | undefined;

/** `b` as a string when it is UTF-8, else undefined. */
function utf8(b: Uint8Array): string | undefined {
  try {
    return (strictUtf8 ??= new TextDecoder("utf-8", { fatal: true, ignoreBOM: true })).decode(b);
  } catch {
    return undefined;
  }
}

const SLASH = new Uint8Array([0x2f]);
/** Lone surrogates that stand for the bytes 0x80–0xFF. */
const ESCAPED = /[\udc80-\udcff]/;

/** `dir/name`, as bytes. */
export function childPath(dir: Buffer, name: Buffer): Buffer {
  return Buffer.concat([dir, SLASH, name]);
}

/** The name `bytes` as a string: UTF-8, bytes that are not UTF-8 escaped. */
export function decodeName(bytes: Uint8Array): string {
  const b = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const whole = utf8(b);
  if (whole !== undefined) return whole;
  let out = "";
  for (let i = 0; i < b.length; ) {
    const n = utf8Length(b, i);
    if (n > 0) {
      out += b.toString("utf8", i, i + n);
      i += n;
    } else out += String.fromCharCode(0xdc00 + b[i++]!);
  }
  return out;
}

/** The bytes of a name that {@link decodeName} gave (or any string: as UTF-8). */
export function encodeName(name: string): Buffer {
  if (!ESCAPED.test(name)) return Buffer.from(name, "utf8");
  const parts: Buffer[] = [];
  let start = 0;
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c < 0xdc80 || c > 0xdcff) continue;
    // A lone surrogate only: a high one just before it would make it half of a real character.
    const prev = i > 0 ? name.charCodeAt(i - 1) : 0;
    if (prev >= 0xd800 && prev <= 0xdbff) continue;
    parts.push(Buffer.from(name.slice(start, i), "utf8"), Buffer.of(c - 0xdc00));
    start = i + 1;
  }
  parts.push(Buffer.from(name.slice(start), "utf8"));
  return Buffer.concat(parts);
}

/** The length of the valid UTF-8 sequence at `b[i]`, or 0 when there is none. */
function utf8Length(b: Buffer, i: number): number {
  const c = b[i]!;
  if (c < 0x80) return 1;
  const n = c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3 : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
  if (n === 0 || i + n > b.length) return 0;
  return utf8(b.subarray(i, i + n)) !== undefined ? n : 0; // continuation bytes, overlongs, surrogates, above U+10FFFF
}
