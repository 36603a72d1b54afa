/**
 * File names are bytes: Linux allows any but `/` and NUL, and one that is not UTF-8 would not
 * survive a round trip through a JavaScript string. Trees walked by stor itself go as bytes
 * ({@link childCPath}); where names must be strings (layers, tar headers), a name is decoded as
 * UTF-8 with each byte that is not valid UTF-8 kept as a lone surrogate U+DC80–U+DCFF, as
 * Python's surrogateescape does, and {@link encodeName} gives back the very same bytes.
 */

/*
 * Bytes here are Uint8Arrays, with TextEncoder and TextDecoder: node:buffer's Buffer costs a
 * command about 0.13 ms when first used, and the everyday commands need it for nothing else.
 * Each coder is made on first use.
 */

/** Decodes strict UTF-8, a leading U+FEFF kept as the name's, and throws on anything else. */
let strictUtf8: TextDecoder | undefined;
let encoder: TextEncoder | undefined;

/** `b` as a string when it is UTF-8, else undefined. */
function utf8(b: Uint8Array): string | undefined {
  try {
    return (strictUtf8 ??= new TextDecoder("utf-8", { fatal: true, ignoreBOM: true })).decode(b);
  } catch {
    return undefined;
  }
}

/** `s` as UTF-8 (a lone surrogate as U+FFFD). */
export function utf8Bytes(s: string): Uint8Array {
  return (encoder ??= new TextEncoder()).encode(s);
}

/** The length of `s` in UTF-8, as the kernel and the stores count a name's bytes. */
export function utf8ByteLength(s: string): number {
  return utf8Bytes(s).length;
}

/** The arrays in `parts`, one after the other, in one. */
export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  if (parts.length === 1) return parts[0]!;
  let length = 0;
  for (const p of parts) length += p.length;
  const out = new Uint8Array(length);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Lone surrogates that stand for the bytes 0x80–0xFF. */
const ESCAPED = /[\udc80-\udcff]/;

/**
 * `dir/name` as a C path (its bytes and a NUL, which cstr in src/sys/libc.ts passes on without a
 * copy), from the C path of directory `dir` and the bytes of `name`.
 */
export function childCPath(dir: Uint8Array, name: Uint8Array): Uint8Array {
  const n = dir.length - 1;
  const out = new Uint8Array(n + name.length + 2); // zeroed: the NUL is there
  out.set(dir.subarray(0, n));
  out[n] = 0x2f;
  out.set(name, n + 1);
  return out;
}

/** A path as text for a message: a string as it is; bytes decoded, a C path's NUL left out. */
export function showPath(p: string | Uint8Array): string {
  if (typeof p === "string") return p;
  return decodeName(p[p.length - 1] === 0 ? p.subarray(0, p.length - 1) : p);
}

/** Whether `bytes` are UTF-8. */
export function isUtf8(bytes: Uint8Array): boolean {
  return utf8(bytes) !== undefined;
}

/** `bytes` as text for a message: UTF-8 as it is, each byte that is not UTF-8 as `\xff`. */
export function escapeNonUtf8(bytes: Uint8Array): string {
  return decodeName(bytes).replace(/[\udc80-\udcff]/g, (c) => `\\x${(c.charCodeAt(0) - 0xdc00).toString(16)}`);
}

/** The name `bytes` as a string: UTF-8, bytes that are not UTF-8 escaped. */
export function decodeName(bytes: Uint8Array): string {
  const whole = utf8(bytes);
  if (whole !== undefined) return whole;
  let out = "";
  for (let i = 0; i < bytes.length; ) {
    const n = utf8Length(bytes, i);
    if (n > 0) {
      out += utf8(bytes.subarray(i, i + n));
      i += n;
    } else out += String.fromCharCode(0xdc00 + bytes[i++]!);
  }
  return out;
}

/** The bytes of a name that {@link decodeName} gave (or any string: as UTF-8). */
export function encodeName(name: string): Uint8Array {
  // Well-formed (no lone surrogate) is the usual case, and asking costs no RegExp.
  if (name.isWellFormed() || !ESCAPED.test(name)) return utf8Bytes(name);
  const parts: Uint8Array[] = [];
  let start = 0;
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c < 0xdc80 || c > 0xdcff) continue;
    // A lone surrogate only: a high one just before it would make it half of a real character.
    const prev = i > 0 ? name.charCodeAt(i - 1) : 0;
    if (prev >= 0xd800 && prev <= 0xdbff) continue;
    parts.push(utf8Bytes(name.slice(start, i)), Uint8Array.of(c - 0xdc00));
    start = i + 1;
  }
  parts.push(utf8Bytes(name.slice(start)));
  return concatBytes(parts);
}

/** {@link encodeName}'s bytes as a Buffer (no copy), for node:fs, which takes a path as a string or a Buffer. */
export function nameBuffer(name: string): Buffer {
  const b = encodeName(name);
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength);
}

/** The length of the valid UTF-8 sequence at `b[i]`, or 0 when there is none. */
function utf8Length(b: Uint8Array, i: number): number {
  const c = b[i]!;
  if (c < 0x80) return 1;
  const n = c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3 : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
  if (n === 0 || i + n > b.length) return 0;
  return utf8(b.subarray(i, i + n)) !== undefined ? n : 0; // continuation bytes, overlongs, surrogates, above U+10FFFF
}
