/**
 * Removes a file tree, as `rm -rf`, counting the entries it removes so a terminal can show
 * progress (./treeProgress.ts): removing a large snapshot or volume takes long enough to need
 * it. Names go as bytes, so names that are not UTF-8 are removed like any other. What vanishes
 * meanwhile (another remover, cleanup) is no error.
 */
import { readdirSync, rmdirSync, unlinkSync } from "../nodeFs.ts";
import { childPath } from "../fileName.ts";
import { treeCounter } from "./treeProgress.ts";

const codeOf = (err: unknown) => (err as NodeJS.ErrnoException).code;

/** Removes `path` and everything below it; a path that does not exist is no error. */
export function removeTree(path: string): void {
  const count = treeCounter();
  // unlink first: one call for most entries; Linux refuses it (EISDIR) only for a directory.
  const remove = (p: Buffer) => {
    try {
      unlinkSync(p);
    } catch (err) {
      if (codeOf(err) === "ENOENT") return;
      if (codeOf(err) !== "EISDIR") throw err;
      let names: Buffer[] = [];
      try {
        names = readdirSync(p, { encoding: "buffer" });
      } catch (e) {
        if (codeOf(e) !== "ENOENT") throw e;
      }
      for (const name of names) remove(childPath(p, name));
      try {
        rmdirSync(p);
      } catch (e) {
        if (codeOf(e) !== "ENOENT") throw e;
      }
    }
    count(0);
  };
  remove(Buffer.from(path));
}
