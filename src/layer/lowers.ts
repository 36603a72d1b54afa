/**
 * The parent layers of an overlay snapshot, looked up as overlayfs looks them up: the nearest
 * layer that has a name decides, a whiteout there means the name is gone, and a symlink, a
 * non-directory or an opaque directory on the way hides whatever the layers below have under it.
 */
import { Errno, SysError } from "../sys/libc.ts";
import { getXattrAt, readdirAt, readlinkAt } from "../sys/dirfd.ts";
import { closeSync, fstatSync, type BigIntStats } from "../nodeFs.ts";
import { O, RESOLVE, mustOpenat2, openat2 } from "../sys/openat2.ts";
import { isOverlayWhiteout, OVERLAY_OPAQUE_XATTR } from "./whiteout.ts";

const { ENOENT } = Errno;

/** Read-only lookups in a snapshot's parents, nearest first; descriptors open on first use. */
export class Lowers {
  readonly #paths: readonly string[];
  readonly #fds: number[] = [];
  /** Whether directory `<layer>\0<path>` is opaque in its layer, or missing there, as looked up so far. */
  readonly #opaque = new Map<string, boolean | "missing">();

  constructor(paths: readonly string[]) {
    this.#paths = paths;
  }

  /** What the parents show at `path` (components joined by `/`): its lstat, or undefined. */
  find(path: string): BigIntStats | undefined {
    return this.#locate(path)?.st;
  }

  /** The target of the symlink the parents show at `path`. */
  readlink(path: string): string {
    const found = this.#locate(path);
    if (!found?.st.isSymbolicLink()) throw new SysError(`readlink ${path} in the parents`, Errno.EINVAL);
    return readlinkAt(found.layer, path);
  }

  /** Every name some parent has at its root, shown or not: which of them the mount shows is {@link find}'s to say. */
  namesAtRoot(): Set<string> {
    const names = new Set<string>();
    for (let i = 0; i < this.#paths.length; i++) for (const name of readdirAt(this.#layer(i), ".")) names.add(name);
    return names;
  }

  /** The root of parent `i`. */
  #layer(i: number): number {
    return (this.#fds[i] ??= mustOpenat2(-100, this.#paths[i]!, O.PATH | O.DIRECTORY, 0, () => `open ${this.#paths[i]}`));
  }

  /** The nearest parent that has `path`, and its lstat there. */
  #locate(path: string): { layer: number; st: BigIntStats } | undefined {
    for (let i = 0; i < this.#paths.length; i++) {
      // No symlink is followed: overlayfs merges directories by name, not through links.
      const fd = openat2(this.#layer(i), path, O.PATH | O.NOFOLLOW, RESOLVE.BENEATH | RESOLVE.NO_SYMLINKS);
      if (fd === -ENOENT) {
        if (this.#opaqueAbove(i, path)) return undefined; // the layers below are hidden there
        continue;
      }
      if (fd < 0) return undefined; // ELOOP or ENOTDIR: hidden by a symlink or a file in this layer
      try {
        const st = fstatSync(fd, { bigint: true });
        return isOverlayWhiteout(st) ? undefined : { layer: this.#fds[i]!, st };
      } finally {
        closeSync(fd);
      }
    }
    return undefined;
  }

  /**
   * Whether a directory above `path` in layer `i` is opaque. Called when layer `i` has no `path`:
   * the directories above it there are real ones (a symlink would have stopped the lookup) down
   * to the first that is missing, below which there is nothing.
   */
  #opaqueAbove(i: number, path: string): boolean {
    for (let end = path.indexOf("/"); end > 0; end = path.indexOf("/", end + 1)) {
      const dir = path.slice(0, end);
      const key = `${i}\0${dir}`;
      let opaque = this.#opaque.get(key);
      if (opaque === undefined) {
        try {
          opaque = getXattrAt(this.#fds[i]!, dir, OVERLAY_OPAQUE_XATTR)?.toString() === "y";
        } catch (err) {
          if (!(err instanceof SysError && (err.errno === ENOENT || err.errno === Errno.ENOTDIR))) throw err;
          opaque = "missing"; // remembered too: a layer that adds many files under it asks again for each
        }
        this.#opaque.set(key, opaque);
      }
      if (opaque === "missing") return false;
      if (opaque) return true;
    }
    return false;
  }

  close(): void {
    for (const fd of this.#fds) if (fd !== undefined) closeSync(fd);
  }
}
