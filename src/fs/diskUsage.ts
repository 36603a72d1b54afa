/** Disk usage of a tree as containerd measures it: allocated blocks and inodes, each inode once. */
import { listDir } from "../sys/dirent.ts";
import { Errno, SysError } from "../sys/libc.ts";
import { statPath } from "../sys/pathCalls.ts";

/** Bytes allocated and inodes used by a tree. */
export interface Usage {
  size: number;
  inodes: number;
}

/**
 * Measures the tree at `dir`, including `dir` itself; hardlinked inodes count once. What is
 * mounted inside it (a bind, a tmpfs) is no part of it: not counted, not entered.
 */
export function diskUsage(dir: string): Usage {
  const seen = new Set<string>();
  const usage: Usage = { size: 0, inodes: 0 };
  const visit = (path: string) => {
    const st = statPath(path, false);
    if (!st) throw new SysError(`lstat ${path}`, Errno.ENOENT);
    if (path !== dir && st.isMountRoot) return;
    const id = `${st.dev}:${st.ino}`;
    if (!seen.has(id)) {
      seen.add(id);
      usage.size += st.blocks * 512;
      usage.inodes++;
    }
    if (st.isDirectory) for (const e of listDir(path, false)) visit(`${path}/${e.name}`);
  };
  visit(dir);
  return usage;
}
