/** Mounting a list of mounts on a target and taking them all off again: `stor mount`/`unmount`. */
import { realpathSync, statSync } from "node:fs";
import { InvalidArgumentError, NotFoundError } from "./errors.ts";
import { Errno, SysError } from "./sys/libc.ts";
import { mount, unmount, type Mount } from "./sys/mount.ts";
import { isMountPoint, mountsUnder } from "./sys/mountinfo.ts";

function checkTarget(target: string): void {
  let st;
  try {
    st = statSync(target);
  } catch {
    throw new NotFoundError(`target ${target}`);
  }
  if (!st.isDirectory()) throw new InvalidArgumentError(`target ${target}`, "not a directory");
}

/** Performs `mounts` on `target` in order; on failure the ones already made are undone. */
export function mountAll(mounts: readonly Mount[], target: string): void {
  checkTarget(target);
  let done = 0;
  try {
    for (const m of mounts) {
      mount(m, target);
      done++;
    }
  } catch (err) {
    while (done-- > 0) unmount(target, true);
    throw err;
  }
}

/** Unmounts everything stacked on `target`. Returns how many mounts were taken off. */
export function unmountAll(target: string, detach = false): number {
  checkTarget(target);
  const abs = realpathSync(target);
  if (!isMountPoint(abs)) throw new NotFoundError(`target ${target}`, "nothing is mounted there");
  let n = 0;
  while (isMountPoint(abs) && unmount(abs, detach)) n++;
  return n;
}

/**
 * Unmounts everything mounted below `dir`, deepest first, except on the mount points in `keep`
 * (and `dir` itself): what an unclean shutdown left. A busy mount is detached lazily. Returns
 * the mount points unmounted.
 */
export function unmountBelow(dir: string, keep: readonly string[] = []): string[] {
  const done: string[] = [];
  for (const m of mountsUnder(dir)) {
    if (m.mountPoint === dir || keep.includes(m.mountPoint)) continue;
    if (unmountBusyOrNot(m.mountPoint)) done.push(m.mountPoint);
  }
  return done;
}

/** Unmounts `path`, detaching it lazily when it is busy; false when nothing was mounted there. */
function unmountBusyOrNot(path: string): boolean {
  try {
    return unmount(path);
  } catch (err) {
    if (err instanceof SysError && err.errno === Errno.EBUSY) return unmount(path, true);
    throw err;
  }
}
