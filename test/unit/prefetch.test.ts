/** The copy's read-ahead (src/fs/prefetchThread.ts), run on this thread. */
import { afterAll, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readAhead, runPrefetchThread } from "../../src/fs/prefetchThread.ts";
import { cstr } from "../../src/sys/libc.ts";

const base = mkdtempSync(join(tmpdir(), "stor-prefetch-"));
afterAll(() => rmSync(base, { recursive: true, force: true }));

const flag = (value: number) => {
  const stop = new Int32Array(new SharedArrayBuffer(4));
  stop[0] = value;
  return stop;
};

/** a/, a/b/, a/b/c/, 50 files in a/b, a/b/c/up -> .., a/slash -> /: 55 entries. */
function tree(): string {
  const root = join(base, "tree");
  mkdirSync(join(root, "a/b/c"), { recursive: true });
  for (let i = 0; i < 50; i++) writeFileSync(join(root, "a/b", `f${i}`), "x");
  symlinkSync("..", join(root, "a/b/c/up"));
  symlinkSync("/", join(root, "a/slash"));
  return root;
}

test("stats every entry once, symlinks to its own parents and to / included and not followed", () => {
  expect(readAhead(cstr(tree()), flag(0))).toBe(55);
});

test("leaves the directories' atimes as they were (the copy records them after it)", () => {
  const root = join(base, "atimes");
  mkdirSync(join(root, "d"), { recursive: true });
  writeFileSync(join(root, "d", "f"), "x");
  // Older than a day, so relatime would set it on a listing.
  const old = new Date(Date.now() - 3 * 86_400_000);
  for (const d of [root, join(root, "d")]) utimesSync(d, old, old);
  expect(readAhead(cstr(root), flag(0))).toBe(2);
  for (const d of [root, join(root, "d")]) expect([d, statSync(d).atimeMs]).toEqual([d, old.getTime()]);
});

test("stops when told", () => {
  expect(readAhead(cstr(join(base, "tree")), flag(1))).toBe(0);
});

test("on the thread, a root that is gone or a file is no error: the walk sees for itself", () => {
  expect(() => runPrefetchThread({ root: cstr(join(base, "missing")), stop: flag(0) })).not.toThrow();
  writeFileSync(join(base, "file"), "x");
  expect(() => runPrefetchThread({ root: cstr(join(base, "file")), stop: flag(0) })).not.toThrow();
});
