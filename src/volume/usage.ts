/**
 * The size of a volume's data as Docker reports it (`docker system df`, prune's reclaimed
 * space): the apparent sizes of its files, each inode once, directories not counted. Not the
 * allocated blocks containerd reports for snapshots (src/fs/diskUsage.ts): an empty volume is 0B.
 */
import { describe } from "../errors.ts";
import { walkTree } from "../fs/walkTree.ts";
import { log } from "../log.ts";
import { Errno, SysError } from "../sys/libc.ts";

/**
 * Bytes of the files below `dir`; undefined when `dir` is gone, or cannot be measured (said as a
 * warning, as Docker says "could not determine size": df and prune go on with the other volumes).
 */
export function dataSize(dir: string): number | undefined {
  const seen = new Set<bigint>();
  let total = 0;
  try {
    walkTree(dir, (st) => {
      if (!st.isDirectory && st.size > 0 && !seen.has(st.ino)) {
        seen.add(st.ino);
        total += st.size;
      }
      return true;
    });
  } catch (err) {
    if (!(err instanceof SysError && err.errno === Errno.ENOENT)) log.warn(`could not determine the size of ${dir}: ${describe(err)}`);
    return undefined;
  }
  return total;
}
