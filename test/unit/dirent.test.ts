/** Directory reads through getdents64 (src/sys/dirent.ts), on real directories. */
import { afterAll, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { isEmptyDir, listDir } from "../../src/sys/dirent.ts";

const base = mkdtempSync(join(tmpdir(), "stor-dirent-"));
afterAll(() => rmSync(base, { recursive: true, force: true }));

test("isEmptyDir: only '.' and '..' make a directory empty", () => {
  const dir = (name: string, entries: string[]) => {
    const d = join(base, name);
    mkdirSync(d);
    for (const e of entries) writeFileSync(join(d, e), "");
    return d;
  };
  expect(isEmptyDir(dir("empty", []))).toBe(true);
  for (const [name, entries] of [["file", ["x"]], ["dot-file", [".x"]], ["three-dots", ["..."]], ["dot-dot-x", ["..x"]]] as const) {
    expect([name, isEmptyDir(dir(name, [...entries]))]).toEqual([name, false]);
  }
  // Past the first read: more names than one getdents64 of 1 KiB holds, all listed.
  const many = dir("many", Array.from({ length: 200 }, (_, i) => `entry-${i}`));
  expect(isEmptyDir(many)).toBe(false);
  expect(listDir(many).length).toBe(200);
});
