/**
 * The size of a volume's data as Docker reports it (`docker system df`, prune's reclaimed
 * space): the apparent sizes of its files, each inode once, directories not counted. Not the
 * allocated blocks containerd reports for snapshots (src/fs/diskUsage.ts): an empty volume is 0B.
 */
import { lstatSync, readdirSync } from "../nodeFs.ts";
import { join } from "../path.ts";

/** Bytes of the files below `dir`; undefined when `dir` is gone. */
export function dataSize(dir: string): number | undefined {
  const seen = new Set<number>();
  let total = 0;
  const visit = (path: string) => {
    let entries;
    try {
      entries = readdirSync(path, { withFileTypes: true });
    } catch (err) {
      if (path !== dir && (err as NodeJS.ErrnoException).code === "ENOENT") return; // gone while walking
      throw err;
    }
    for (const e of entries) {
      const p = join(path, e.name);
      if (e.isDirectory()) {
        visit(p);
        continue;
      }
      const st = lstatSync(p, { throwIfNoEntry: false });
      if (!st || st.size === 0 || seen.has(st.ino)) continue;
      seen.add(st.ino);
      total += st.size;
    }
  };
  try {
    visit(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
  return total;
}
