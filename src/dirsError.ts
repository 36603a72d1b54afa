/** The error for directories that could not be made, saying which file stands in their way. */
import { statSync } from "./nodeFs.ts";
import { dirname } from "./path.ts";
import { InvalidArgumentError, StorError, describe } from "./errors.ts";
import { errnoCode } from "./sys/libc.ts";

/**
 * The error of the `kind` at `path` (a root, a socket) when directory `dir` (`path` or its parent)
 * could not be made: when a file stands where `dir` or one of its parents should be, says so
 * (exit 2) instead of mkdir's "file already exists".
 */
export function dirsError(kind: string, path: string, dir: string, err: unknown): StorError {
  const what = `${kind} ${path}`;
  const code = errnoCode(err);
  if (code === "EEXIST" || code === "ENOTDIR") {
    for (let p = dir; p !== dirname(p); p = dirname(p)) {
      let st;
      try {
        st = statSync(p);
      } catch {
        continue; // below the file that is in the way
      }
      if (!st.isDirectory()) return new InvalidArgumentError(what, p === path ? "is not a directory" : `${p} is not a directory`);
    }
  }
  return new StorError(what, describe(err));
}
