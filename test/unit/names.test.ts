/** Name checks and one-line text, without a process or a store. */
import { describe, expect, test } from "bun:test";
import { decodeName, encodeName } from "../../src/fileName.ts";
import { oneLine } from "../../src/oneLine.ts";
import { validateKey } from "../../src/snapshot/service.ts";
import { isVolumeName, validateName } from "../../src/volume/name.ts";

describe("volume names, as docker's local driver takes them", () => {
  test.each(["ab", "db-1", "x.y_z", "0abc", "A".repeat(255)])("%p is a name", (n) => expect(isVolumeName(n)).toBe(true));
  test.each(["", "a", "-a", ".a", "_a", "a/b", "..", "has space", "ü", "a\nb", "A".repeat(256)])("%p is not", (n) => {
    expect(isVolumeName(n)).toBe(false);
    expect(() => validateName(n)).toThrow();
  });
});

describe("snapshot keys", () => {
  test("any non-empty text is a key, as containerd takes it", () => {
    for (const k of ["k", "-dash", "a/b", "sha256:abc", "with space"]) expect(() => validateKey(k)).not.toThrow();
  });
  test("an empty key is refused", () => expect(() => validateKey("")).toThrow("snapshot key: must not be empty"));
});

describe("oneLine", () => {
  test("control characters are escaped, everything else is left alone", () => {
    expect(oneLine('volume "a\nb\tc\x1b[31m\x7f"')).toBe('volume "a\\nb\\tc\\x1b[31m\\x7f"');
    expect(oneLine("ünïcode \udcff")).toBe("ünïcode \udcff");
  });
});

describe("file names as bytes through strings", () => {
  // A leading byte-order mark, invalid bytes, truncated and overlong sequences, surrogates, and
  // plain UTF-8: each comes back byte for byte.
  test.each([
    [0xef, 0xbb, 0xbf, 0x61],
    [0x61, 0xef, 0xbb, 0xbf],
    [0x61, 0xff, 0x62],
    [0xc3],
    [0xc0, 0xaf],
    [0xed, 0xa0, 0x80],
    [0xf4, 0x90, 0x80, 0x80],
    [...Buffer.from("é/日本/x")],
  ])("%p survives decodeName and encodeName", (...bytes) => {
    const b = Buffer.from(bytes);
    expect([...encodeName(decodeName(b))]).toEqual([...b]);
  });
});
