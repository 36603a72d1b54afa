/**
 * A walk that looks at every entry of a tree others write in (a container's snapshot or volume),
 * by descriptor, one name at a time, never through a symlink: a directory swapped for a link to
 * `/` while it runs is seen as the link it is, and no depth makes a path too long to use.
 */
import { decodeName } from "../fileName.ts";
import { listDirFd, withDirAt } from "../sys/dirent.ts";
import { Errno, SysError } from "../sys/libc.ts";
import { AT } from "../sys/openat2.ts";
import { statAt, type PathStat } from "../sys/pathCalls.ts";

/**
 * Calls `visit` with what lstat says of every entry below directory `dir` (not `dir` itself), a
 * directory before what is in it; a directory is entered when `visit` returns true. An entry gone
 * meanwhile is skipped; `dir` gone is ENOENT.
 */
export function walkTree(dir: string, visit: (st: PathStat) => boolean): void {
  const below = (fd: number, at: () => string) => {
    for (const e of listDirFd(fd, at)) {
      const st = statAt(fd, e.name, false);
      if (!st || !visit(st) || !st.isDirectory) continue;
      const shown = () => `${at()}/${decodeName(e.name)}`;
      // Replaced since its stat by a link or a file: seen no further.
      withDirAt(fd, e.name, (sub) => below(sub, shown), () => `open ${shown()}`);
    }
  };
  const walked = withDirAt(
    AT.FDCWD,
    dir,
    (top) => {
      below(top, () => dir);
      return true;
    },
    () => `open ${dir}`,
  );
  if (!walked) throw new SysError(`open ${dir}`, Errno.ENOENT);
}
