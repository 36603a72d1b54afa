/** The *at calls on one name in a directory held open: they act on the name, never through a symlink there. */
import { afterAll, expect, test } from "bun:test";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Errno, SysError } from "../../src/sys/libc.ts";
import { chmodAt, closeFd, openPath, renameAway, statAt } from "../../src/sys/pathCalls.ts";
import { O } from "../../src/sys/openat2.ts";

const dir = mkdtempSync(join(tmpdir(), "stor-pathcalls-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

test("chmodAt sets the mode of a directory and of a file, and refuses a symlink, whose target keeps its mode", () => {
  mkdirSync(join(dir, "d"), { mode: 0o700 });
  writeFileSync(join(dir, "f"), "");
  chmodSync(join(dir, "f"), 0o600);
  symlinkSync("f", join(dir, "link"));
  const fd = openPath(dir, O.PATH | O.DIRECTORY);
  try {
    chmodAt(fd, "d", 0o2755, () => "chmod d");
    chmodAt(fd, "f", 0o644, () => "chmod f");
    expect(statSync(join(dir, "d")).mode & 0o7777).toBe(0o2755);
    expect(statSync(join(dir, "f")).mode & 0o7777).toBe(0o644);
    let refused: unknown;
    try {
      chmodAt(fd, "link", 0o777, () => "chmod link");
    } catch (err) {
      refused = err;
    }
    expect(refused).toBeInstanceOf(SysError);
    expect((refused as SysError).errno).toBe(Errno.EOPNOTSUPP);
    expect((refused as SysError).message).toContain("chmod link");
    expect(statSync(join(dir, "f")).mode & 0o7777).toBe(0o644);
    expect(() => chmodAt(fd, "missing", 0o644, () => "chmod missing")).toThrow("chmod missing");
  } finally {
    closeFd(fd);
  }
});

test("statAt sees the name itself without following a symlink, and undefined where nothing is", () => {
  mkdirSync(join(dir, "s"));
  writeFileSync(join(dir, "s/file"), "");
  symlinkSync("file", join(dir, "s/link"));
  const fd = openPath(join(dir, "s"), O.PATH | O.DIRECTORY);
  try {
    expect(statAt(fd, "link", false)?.isSymbolicLink).toBe(true);
    expect(statAt(fd, "link")?.isFile).toBe(true);
    expect(statAt(fd, "nothing", false)).toBeUndefined();
  } finally {
    closeFd(fd);
  }
});

test("renameAway moves a tree to a new name of its prefix and never replaces what is there, not even an empty directory", () => {
  const home = join(dir, "home");
  mkdirSync(join(home, "vol", "_data"), { recursive: true });
  writeFileSync(join(home, "vol", "_data", "f"), "data");
  // The first name it draws is taken by an empty directory, which rename(2) would replace.
  mkdirSync(join(home, ".rm-AAAAAA"));
  const real = Math.random;
  let draw = 0;
  Math.random = () => (draw++ < 6 ? 0 : 1 / 62); // six A's, then B's
  let to: string;
  try {
    to = renameAway(join(home, "vol"), join(home, ".rm-"));
  } finally {
    Math.random = real;
  }
  expect(to).toBe(join(home, ".rm-BBBBBB"));
  expect(readFileSync(join(to, "_data", "f"), "utf8")).toBe("data");
  expect(existsSync(join(home, "vol"))).toBe(false);
  expect(readdirSync(join(home, ".rm-AAAAAA"))).toEqual([]);
  // Drawn at random otherwise: another rename gets a name of its own.
  mkdirSync(join(home, "vol2"));
  expect(renameAway(join(home, "vol2"), join(home, ".rm-"))).toMatch(new RegExp(`^${home}/\\.rm-[A-Za-z0-9]{6}$`));
  expect(readdirSync(home).sort()).toHaveLength(3);
  let missing: unknown;
  try {
    renameAway(join(home, "gone"), join(home, ".rm-"));
  } catch (err) {
    missing = err;
  }
  expect((missing as SysError).errno).toBe(Errno.ENOENT);
  expect((missing as SysError).message).toStartWith(`rename ${join(home, "gone")} to ${join(home, ".rm-")}`);
});
