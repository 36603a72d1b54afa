/** removeTree, as `rm -rf`: everything below goes, nothing it points to, nothing mounted below it. */
import { afterAll, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { removeTree } from "../../src/fs/removeTree.ts";
import { SysError } from "../../src/sys/libc.ts";
import { isRoot, need, sh } from "../helpers.ts";

const dir = mkdtempSync(join(tmpdir(), "stor-removetree-"));
afterAll(() => {
  sh(["umount", "-R", join(dir, "mounted", "a", "mnt")]);
  rmSync(dir, { recursive: true, force: true });
});

test("removes empty and full directories, files and symlinks, and not what a symlink points to", () => {
  const outside = join(dir, "outside");
  mkdirSync(outside);
  writeFileSync(join(outside, "kept"), "kept");
  const tree = join(dir, "tree");
  mkdirSync(join(tree, "empty", "deeper"), { recursive: true });
  mkdirSync(join(tree, "full", "sub"), { recursive: true });
  writeFileSync(join(tree, "full", "f"), "x");
  writeFileSync(join(tree, "full", "sub", "g"), "y");
  symlinkSync(outside, join(tree, "full", "link-to-dir"));
  writeFileSync(Buffer.concat([Buffer.from(`${tree}/`), Buffer.from([0xff, 0xfe])]), "not UTF-8");
  removeTree(tree);
  expect(existsSync(tree)).toBe(false);
  expect(readFileSync(join(outside, "kept"), "utf8")).toBe("kept");
  removeTree(tree); // nothing there: no error
});

test.skipIf(!need(isRoot(), "mounting a tmpfs needs root"))("refuses a filesystem mounted below the tree, and removes nothing of it", () => {
  const mnt = join(dir, "mounted", "a", "mnt");
  mkdirSync(mnt, { recursive: true });
  expect(sh(["mount", "-t", "tmpfs", "tmpfs", mnt]).code).toBe(0);
  writeFileSync(join(mnt, "data"), "on another filesystem");
  let refused: unknown;
  try {
    removeTree(join(dir, "mounted"));
  } catch (err) {
    refused = err;
  }
  expect(refused).toBeInstanceOf(SysError);
  expect((refused as SysError).message).toBe(`rmdir ${mnt}: device or resource busy`);
  expect(readFileSync(join(mnt, "data"), "utf8")).toBe("on another filesystem");
});
