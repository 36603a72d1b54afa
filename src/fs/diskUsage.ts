/** Disk usage of a tree as containerd measures it: allocated blocks and inodes, each inode once. */
import { Errno, SysError } from "../sys/libc.ts";
import { statPath, type PathStat } from "../sys/pathCalls.ts";
import { walkTree } from "./walkTree.ts";

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
  const count = (st: PathStat) => {
    const id = `${st.dev}:${st.ino}`;
    if (seen.has(id)) return;
    seen.add(id);
    usage.size += st.blocks * 512;
    usage.inodes++;
  };
  const st = statPath(dir, false);
  if (!st) throw new SysError(`lstat ${dir}`, Errno.ENOENT);
  count(st);
  if (st.isDirectory) {
    walkTree(dir, (entry) => {
      if (entry.isMountRoot) return false;
      count(entry);
      return true;
    });
  }
  return usage;
}
