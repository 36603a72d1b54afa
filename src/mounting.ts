/** Mounting a list of mounts on a target and taking them all off again: `stor mount`/`unmount`. */
import { existsSync, realpathSync, statSync } from "./nodeFs.ts";
import { AlreadyExistsError, InvalidArgumentError, NotFoundError, PreconditionError } from "./errors.ts";
import { Errno, SysError } from "./sys/libc.ts";
import { mount, unmount, type Mount } from "./sys/mount.ts";
import { isMountPoint, mountsUnder, mountsUsing, overlayLayers, readMountInfo, within, type MountInfo } from "./sys/mountinfo.ts";

function checkTarget(target: string): void {
  let st;
  try {
    st = statSync(target);
  } catch {
    throw new NotFoundError(`target ${target}`);
  }
  if (!st.isDirectory()) throw new InvalidArgumentError(`target ${target}`, "not a directory");
}

/**
 * Performs `mounts` on `target` in order; on failure the ones already made are undone. `what`
 * names them in errors: mounting them again where they already are is refused (exit 4), as
 * stacking a second copy would hide the first. A target inside stor's `root` or holding it is
 * refused: the store's files would be hidden, or a snapshot's taken for the store's leftovers.
 */
export function mountAll(mounts: readonly Mount[], target: string, what: string, root: string): void {
  checkTarget(target);
  const at = realpathSync(target);
  outsideRoot(at, target, root);
  if (mounts.length > 0 && readMountInfo().some((m) => m.mountPoint === at && sameMount(mounts[0]!, m))) {
    throw new AlreadyExistsError(what, `already mounted on ${target}`);
  }
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

/** The directory whose use by a mount tells that mount is `m`: an overlay's upper (else top lower) layer, a bind's source. */
function identity(m: Mount): string | undefined {
  if (m.Type !== "overlay") return m.Options.some((o) => o === "bind" || o === "rbind") ? m.Source : undefined;
  const layers = overlayLayers(m.Options.join(","));
  return m.Options.find((o) => o.startsWith("upperdir="))?.slice("upperdir=".length) ?? layers[0];
}

/** True when mounted `info` is mount `m`, made before. */
function sameMount(m: Mount, info: MountInfo): boolean {
  const dir = identity(m);
  return dir !== undefined && existsSync(dir) && mountsUsing(realpathSync(dir)).some((u) => u.id === info.id);
}

/**
 * Refuses `target` (real path `at`) inside stor's `root` or holding it. What stor mounts there is
 * its own to take off (`volume unmount`, restore): a volume unmounted under its references would
 * send a container's writes to the root disk.
 */
function outsideRoot(at: string, target: string, root: string): void {
  let home: string;
  try {
    home = realpathSync(root);
  } catch {
    return; // no root: nothing of stor's can be there
  }
  if (within(at, home)) throw new InvalidArgumentError(`target ${target}`, `is inside stor's root ${root}`);
  if (within(home, at)) throw new InvalidArgumentError(`target ${target}`, `holds stor's root ${root}`);
}

/** Unmounts everything stacked on `target`, which is not in stor's `root` (see mountAll). Returns how many mounts were taken off. */
export function unmountAll(target: string, root: string, detach = false): number {
  checkTarget(target);
  const abs = realpathSync(target);
  outsideRoot(abs, target, root);
  if (!isMountPoint(abs)) throw new NotFoundError(`target ${target}`, "nothing is mounted there");
  let n = 0;
  try {
    while (isMountPoint(abs) && unmount(abs, detach)) n++;
  } catch (err) {
    if (!(err instanceof SysError && err.errno === Errno.EBUSY)) throw err;
    // In use, as a busy snapshot is: by what is mounted below it, or by a process.
    const below = mountsUnder(abs).filter((m) => m.mountPoint !== abs).map((m) => m.mountPoint);
    throw new PreconditionError(`target ${target}`, below.length > 0 ? `has ${below.join(", ")} mounted below it: unmount those first` : "in use: device or resource busy");
  }
  return n;
}

/** What {@link unmountBelow} did. */
export interface UnmountReport {
  unmounted: string[];
  /** Mount points left because a process uses them. */
  busy: string[];
}

/**
 * Unmounts everything mounted below `dir`, deepest first, except `dir` itself and the mount
 * points `keep` spares: what an unclean shutdown left. A busy mount is never detached: a process
 * uses it, and detaching would hide its data from everyone else while it goes on writing.
 */
export function unmountBelow(dir: string, keep: (mountPoint: string) => boolean = () => false): UnmountReport {
  const report: UnmountReport = { unmounted: [], busy: [] };
  for (const m of mountsUnder(dir)) {
    if (m.mountPoint === dir || keep(m.mountPoint)) continue;
    try {
      if (unmount(m.mountPoint)) report.unmounted.push(m.mountPoint);
    } catch (err) {
      if (!(err instanceof SysError && err.errno === Errno.EBUSY)) throw err;
      report.busy.push(m.mountPoint);
    }
  }
  return report;
}
