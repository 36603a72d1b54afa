/** src/path.ts against node:path's posix functions, on every path built from a set of tricky segments. */
import { describe, expect, test } from "bun:test";
import { posix } from "node:path";
import { basename, dirname, join, relative, resolve } from "../../src/path.ts";

const SEGMENTS = ["", "/", "//", ".", "..", "a", "b.c", "...", ".a", "a b", "é"];

/** Every path of up to three segments, each followed by nothing, one slash or two. */
function paths(): string[] {
  const out = new Set<string>();
  const walk = (prefix: string, depth: number) => {
    out.add(prefix);
    if (depth === 3) return;
    for (const s of SEGMENTS) for (const sep of ["", "/", "//"]) walk(prefix + s + sep, depth + 1);
  };
  walk("", 0);
  return [...out];
}

const ALL = paths();
const SOME = ALL.filter((_, i) => i % 37 === 0);

describe("path, as node:path", () => {
  test("covers enough paths to mean something", () => {
    expect(ALL.length).toBeGreaterThan(5000);
    expect(SOME.length).toBeGreaterThan(100);
  });

  test("dirname and basename", () => {
    for (const p of ALL) {
      expect([p, dirname(p)]).toEqual([p, posix.dirname(p)]);
      expect([p, basename(p)]).toEqual([p, posix.basename(p)]);
    }
  });

  test("join of one, two and three parts", () => {
    for (const p of ALL) expect([p, join(p)]).toEqual([p, posix.join(p)]);
    for (const p of SOME) for (const q of SOME) expect([p, q, join(p, q)]).toEqual([p, q, posix.join(p, q)]);
    for (const p of SOME.slice(0, 40)) for (const q of SOME.slice(0, 40)) expect(join(p, "x", q)).toBe(posix.join(p, "x", q));
    expect(join()).toBe(posix.join());
  });

  test("resolve, from the working directory when no part is absolute", () => {
    for (const p of ALL) expect([p, resolve(p)]).toEqual([p, posix.resolve(p)]);
    for (const p of SOME) for (const q of SOME) expect([p, q, resolve(p, q)]).toEqual([p, q, posix.resolve(p, q)]);
    expect(resolve()).toBe(posix.resolve());
  });

  test("relative", () => {
    for (const p of SOME) for (const q of SOME) expect([p, q, relative(p, q)]).toEqual([p, q, posix.relative(p, q)]);
    for (const [a, b] of [["/a/b", "/a/b/c/d"], ["/a/b/c", "/a"], ["/", "/x"], ["/x", "/"], ["/a/bc", "/a/b"], ["/a/b", "/a/bc"]] as const) {
      expect(relative(a, b)).toBe(posix.relative(a, b));
    }
  });
});
