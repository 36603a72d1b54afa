/** Names of layer entries as paths inside a snapshot. */
import { malformed } from "./tarFormat.ts";

/** `name` in directory `dir`, both relative to the snapshot root ("" is the root itself). */
export const inside = (dir: string, name: string) => (dir ? `${dir}/${name}` : name);

/**
 * The components of entry name `name` below the snapshot root. A leading `/` means the root (as
 * in containerd and GNU tar); `.` and empty components vanish; `..` steps back, and an entry whose
 * `..` would step above the root is refused: it names nothing inside the snapshot. `what` names
 * it in that error: the entry itself, unless the name is another's (a hardlink's target).
 */
export function entryParts(name: string, what?: string): string[] {
  if (name.includes("\0")) throw malformed(`${what ?? `entry name "${name.replace(/\0/g, "\\0")}"`} contains NUL`);
  const parts: string[] = [];
  for (const p of name.split("/")) {
    if (p === "" || p === ".") continue;
    if (p !== "..") parts.push(p);
    else if (parts.pop() === undefined) throw malformed(`${what ?? `entry "${name}"`} leads outside the snapshot`);
  }
  return parts;
}
