/**
 * A directory tree that layer entries may change and never leave. Every path is resolved by the
 * kernel with openat2(RESOLVE_IN_ROOT): `..` stops at the root and symlinks, absolute or
 * relative, chained or not, are followed as if the root were `/`. What is then created, changed or
 * removed is one name inside a directory held open by descriptor, never a path.
 */
import { closeSync } from "../nodeFs.ts";
import { removeTreeAt } from "../fs/removeTree.ts";
import { O, RESOLVE, mustOpenat2, openat2 } from "../sys/openat2.ts";

const IN_ROOT = RESOLVE.IN_ROOT | RESOLVE.NO_MAGICLINKS;

/** A directory opened as the root of confined changes. */
export class ConfinedDir {
  /** O_PATH descriptor of the root. */
  readonly fd: number;
  readonly path: string;

  constructor(path: string) {
    this.path = path;
    this.fd = mustOpenat2(-100 /* AT_FDCWD */, path, O.PATH | O.DIRECTORY, 0, () => `open ${path}`);
  }

  /**
   * Opens directory `parts` (components below the root) as an O_PATH descriptor, or returns the
   * negated errno (ENOENT: some component is missing; ENOTDIR: one is not a directory).
   */
  openDir(parts: readonly string[]): number {
    return openat2(this.fd, parts.join("/") || ".", O.PATH | O.DIRECTORY, IN_ROOT);
  }

  /**
   * Opens directory `parts` as {@link openDir} does, when no symlink is on the way: then it is
   * exactly at `parts` below the root. Else the negated errno (ELOOP: a symlink is).
   */
  openDirExactly(parts: readonly string[]): number {
    return openat2(this.fd, parts.join("/") || ".", O.PATH | O.DIRECTORY, RESOLVE.BENEATH | RESOLVE.NO_SYMLINKS | RESOLVE.NO_MAGICLINKS);
  }

  /** Removes `name` in directory `dir` and, for a directory, everything below it, never through a symlink. */
  removeAll(dir: number, name: string): void {
    removeTreeAt(dir, name, `${this.path}/…/${name}`);
  }

  close(): void {
    closeSync(this.fd);
  }
}
