/** Disk usage of a tree as containerd measures it: allocated blocks and inodes, each inode once. */
import { lstatSync, readdirSync } from "../nodeFs.ts";
import { childPath } from "../fileName.ts";

/** Bytes allocated and inodes used by a tree. */
export interface Usage {
  size: number;
  inodes: number;
}

/** Measures the tree at `dir`, including `dir` itself; hardlinked inodes count once. */
export function diskUsage(dir: string): Usage {
  const seen = new Set<string>();
  const usage: Usage = { size: 0, inodes: 0 };
  const visit = (path: Buffer) => {
    const st = lstatSync(path);
    const id = `${st.dev}:${st.ino}`;
    if (!seen.has(id)) {
      seen.add(id);
      usage.size += st.blocks * 512;
      usage.inodes++;
    }
    if (st.isDirectory()) for (const name of readdirSync(path, { encoding: "buffer" })) visit(childPath(path, name));
  };
  visit(Buffer.from(dir));
  return usage;
}
