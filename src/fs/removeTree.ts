/**
 * Removes a directory tree, as `rm -rf`, counting the entries it removes so a terminal can show
 * progress (./treeProgress.ts): removing a large snapshot or volume takes long enough to need
 * it. Names go as bytes, so names that are not UTF-8 are removed like any other.
 */
import { readdirSync, rmdirSync, unlinkSync } from "node:fs";
import { childPath } from "../fileName.ts";
import { treeCounter } from "./treeProgress.ts";

/** Removes `path` and everything below it; a path that does not exist is no error. */
export function removeTree(path: string): void {
  const count = treeCounter();
  const removeDir = (dir: Buffer) => {
    for (const name of readdirSync(dir, { encoding: "buffer" })) {
      const child = childPath(dir, name);
      // unlink first: one call for most entries, and Linux refuses it (EISDIR) only for a directory.
      try {
        unlinkSync(child);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "EISDIR") throw err;
        removeDir(child);
        continue;
      }
      count(0);
    }
    rmdirSync(dir);
    count(0);
  };
  try {
    removeDir(Buffer.from(path));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT") return;
    if (code !== "ENOTDIR") throw err;
    unlinkSync(path);
  }
}
