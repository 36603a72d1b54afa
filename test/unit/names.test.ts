/** Name checks and one-line text, without a process or a store. */
import { describe, expect, test } from "bun:test";
import { decodeName, encodeName } from "../../src/fileName.ts";
import { oneLine } from "../../src/oneLine.ts";
import { validateKey } from "../../src/snapshot/service.ts";
import { isVolumeName, validateName } from "../../src/volume/name.ts";
import { byNaturalName } from "../../src/cli/volume.ts";
import { rfc3339Nano } from "../../src/timefmt.ts";
import { Rng } from "../fuzz/tarModel.ts";

/** Random strings of up to `max` characters drawn from `alphabet`, the same ones each run. */
function randomStrings(alphabet: string, count: number, max: number): string[] {
  const rng = new Rng(7);
  return Array.from({ length: count }, () => Array.from({ length: rng.int(max + 1) }, () => rng.pick([...alphabet])).join(""));
}

describe("volume names, as docker's local driver takes them", () => {
  test.each(["ab", "db-1", "x.y_z", "0abc", "A".repeat(255)])("%p is a name", (n) => expect(isVolumeName(n)).toBe(true));
  test.each(["", "a", "-a", ".a", "_a", "a/b", "..", "has space", "ü", "a\nb", "A".repeat(256)])("%p is not", (n) => {
    expect(isVolumeName(n)).toBe(false);
    expect(() => validateName(n)).toThrow();
  });
});

test("volume names agree with docker's RegExp on 20,000 random strings", () => {
  const docker = /^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/;
  const all = randomStrings("aZ09_.-/ü\n", 20_000, 6);
  expect(new Set(all).size).toBeGreaterThan(8_000); // many strings, not a few repeated (9,091 of 20,000)
  for (const n of all) expect([n, isVolumeName(n)]).toEqual([n, docker.test(n)]);
});

describe("volume names in docker's order", () => {
  /** The order as first written, with RegExps: the one this must keep. */
  function reference(a: string, b: string): number {
    const x = a.match(/\d+|\D+/g) ?? [];
    const y = b.match(/\d+|\D+/g) ?? [];
    for (let i = 0; i < Math.min(x.length, y.length); i++) {
      const p = x[i]!;
      const q = y[i]!;
      if (p === q) continue;
      if (/^\d/.test(p) && /^\d/.test(q)) {
        const pn = p.replace(/^0+/, "");
        const qn = q.replace(/^0+/, "");
        if (pn.length !== qn.length) return pn.length - qn.length;
        if (pn !== qn) return pn < qn ? -1 : 1;
        return p.length - q.length;
      }
      return p < q ? -1 : 1;
    }
    return x.length - y.length;
  }

  test("runs of digits by value, fewer leading zeros first, the rest as text", () => {
    expect(byNaturalName(["v10", "v2", "v02", "a", "v1x", "v1", "", "b0"], (n) => n)).toEqual(["", "a", "b0", "v1", "v1x", "v2", "v02", "v10"]);
  });

  test("each of 40,000 random pairs in the reference's order", () => {
    const names = randomStrings("a0b19.-", 80_000, 7);
    expect(new Set(names).size).toBeGreaterThan(25_000); // 29,564 of 80,000
    for (let i = 0; i < names.length; i += 2) {
      const [a, b] = [names[i]!, names[i + 1]!];
      expect(byNaturalName([a, b], (n) => n)).toEqual(reference(a, b) <= 0 ? [a, b] : [b, a]);
    }
  });

  test("a list sorted with each name cut once is sorted as the reference sorts it", () => {
    const names = randomStrings("a0b19.-", 20_000, 7);
    for (let at = 0; at < names.length; at += 500) {
      const items = names.slice(at, at + 500).map((name, i) => ({ name, i }));
      const got = byNaturalName(items, (x) => x.name);
      // Equal names keep their order, as Array.prototype.sort keeps it.
      expect(got).toEqual([...items].sort((x, y) => reference(x.name, y.name)));
    }
  });
});

test("RFC 3339 times drop the fraction's trailing zeros, as Go's RFC3339Nano", () => {
  const at = 1_700_000_000n * 1_000_000_000n;
  expect(rfc3339Nano(at)).toBe("2023-11-14T22:13:20Z");
  expect(rfc3339Nano(at + 120_000_000n)).toBe("2023-11-14T22:13:20.12Z");
  expect(rfc3339Nano(at + 1n)).toBe("2023-11-14T22:13:20.000000001Z");
  expect(rfc3339Nano(at + 100n)).toBe("2023-11-14T22:13:20.0000001Z");
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
