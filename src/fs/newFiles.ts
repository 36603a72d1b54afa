/**
 * What a file created in a directory gets without being asked: the process's user; the
 * directory's group where it passes it on (setgid, a `grpid` mount), else the process's; and the
 * mode it was created with less the umask, unless the directory has a default ACL, which decides
 * instead. A copy or a layer's apply asks, to skip a chown or a chmod that would change nothing.
 */
import { getXattrAt } from "../sys/dirfd.ts";
import { statFd } from "../sys/pathCalls.ts";

/** What a directory may pass on to a file created in it: its group, a default ACL. */
export interface Inherited {
  gid: number;
  acl: boolean;
}

/** What directory `dir` (a descriptor, O_PATH will do) passes on. */
export function inherited(dir: number): Inherited {
  return { gid: statFd(dir).gid, acl: getXattrAt(dir, ".", "system.posix_acl_default") !== undefined };
}

/** Which of a wanted owner and mode a file just created with mode `mode & 0o777` already has. */
export interface AsCreated {
  owner: boolean;
  mode: boolean;
}

let process_: { uid: number; gid: number; umask: number } | undefined;

/** What a file created in a directory that passes on `dir` has, of owner `uid:gid` and mode `mode`. */
export function asCreated(dir: Inherited, uid: number, gid: number, mode: number): AsCreated {
  const p = (process_ ??= { uid: process.geteuid?.() ?? -1, gid: process.getegid?.() ?? -1, umask: process.umask() });
  return {
    owner: uid === p.uid && gid === p.gid && dir.gid === p.gid,
    mode: (mode & ~0o777) === 0 && (mode & p.umask) === 0 && !dir.acl,
  };
}
