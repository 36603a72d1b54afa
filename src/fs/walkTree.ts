/**
 * A walk that looks at every entry of a tree others write in (a container's snapshot or volume),
 * by descriptor, one name at a time, never through a symlink: a directory swapped for a link to
 * `/` while it runs is seen as the link it is, and no depth makes a path too long to use.
 */
import { PreconditionError } from "../errors.ts";
import { decodeName } from "../fileName.ts";
import { listDirFd, withDirAt } from "../sys/dirent.ts";
import { Errno, SysError } from "../sys/libc.ts";
import { AT } from "../sys/openat2.ts";
import { statAt, type PathStat } from "../sys/pathCalls.ts";

/**
 * The most directories a walk goes down through, each held open on the way: as deep as a path can
 * name (PATH_MAX is 4,096 bytes: 2,048 levels of one-letter names), so that stor walks whatever
 * containerd's and Docker's path walks do. A tree deeper than this is refused by name, not left to
 * fail on the stack; one deeper than the descriptors a process may hold fails naming the directory.
 */
export const MAX_WALK_DEPTH = 2048;

/** Refuses going down into `at` at `depth` directories below a walk's top: see {@link MAX_WALK_DEPTH}. */
export function checkWalkDepth(depth: number, at: () => string): void {
  if (depth > MAX_WALK_DEPTH) throw new PreconditionError(at(), `is more than ${MAX_WALK_DEPTH} directories deep, more than stor walks`);
}

/**
 * Calls `visit` with what lstat says of every entry below directory `dir` (not `dir` itself), a
 * directory before what is in it; a directory is entered when `visit` returns true. An entry gone
 * meanwhile is skipped; `dir` gone is ENOENT.
 */
export function walkTree(dir: string, visit: (st: PathStat) => boolean): void {
  const below = (fd: number, at: () => string, depth: number) => {
    for (const e of listDirFd(fd, at)) {
      const st = statAt(fd, e.name, false);
      if (!st || !visit(st) || !st.isDirectory) continue;
      const shown = () => `${at()}/${decodeName(e.name)}`;
      checkWalkDepth(depth + 1, shown);
      // Replaced since its stat by a link or a file: seen no further.
      withDirAt(fd, e.name, (sub) => below(sub, shown, depth + 1), () => `open ${shown()}`);
    }
  };
  const walked = withDirAt(
    AT.FDCWD,
    dir,
    (top) => {
      below(top, () => dir, 0);
      return true;
    },
    () => `open ${dir}`,
  );
  if (!walked) throw new SysError(`open ${dir}`, Errno.ENOENT);
}
