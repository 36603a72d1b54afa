/**
 * What a layer apply changed in a tree, kept so that a refused layer leaves the tree exactly as
 * it was. A layer streams: a truncation or a bad header may come after a thousand entries are
 * written, so they cannot all be checked first. Instead every change is one of three, each undone
 * cheaply in reverse order: a name made (removed again), a name removed (moved aside into a trash
 * directory on the same filesystem, moved back), and an existing directory's contents or metadata
 * changed (its owner, mode, xattrs and times saved first, put back). A layer that only adds, the
 * common case, costs a list of names and no trash directory.
 *
 * Paths are kept as the kernel resolved them (no symlink in them), relative to the root, and are
 * resolved again without following any: undone in reverse, each step finds the tree as it was
 * just after that step.
 */
import { closeSync, readlinkSync, renameSync, type BigIntStats } from "../nodeFs.ts";
import { dirname, join } from "../path.ts";
import { decodeName, nameBuffer } from "../fileName.ts";
import { removeTree } from "../fs/removeTree.ts";
import { APPLY_TRASH_PREFIX } from "../layout.ts";
import { getXattrAt, lstatAt, procPath, setTimesAt, setXattrAt } from "../sys/dirfd.ts";
import { chmodAt, chownAt, removeDir } from "../sys/pathCalls.ts";
import { listXattrs, makeLockedTempDir, removeXattr, type FileLock } from "../sys/file.ts";
import { Errno, SysError } from "../sys/libc.ts";
import { log } from "../log.ts";
import { PreconditionError, describe } from "../errors.ts";
import { mountsUsing, readMountInfo, type MountInfo } from "../sys/mountinfo.ts";
import { O, RESOLVE, openat2 } from "../sys/openat2.ts";
import type { ConfinedDir } from "./confined.ts";
import { inside } from "./paths.ts";

type Step =
  | { op: "made"; dir: string; name: string }
  | { op: "moved"; dir: string; name: string; trashName: string }
  | { op: "saved"; path: string; stat: BigIntStats; xattrs: Map<string, Buffer> };

/** The journal of one apply to the tree of `root`. */
export class UndoJournal {
  readonly #root: ConfinedDir;
  /** The root's path as the kernel names it: what descriptors' paths start with. */
  readonly #rootPath: string;
  readonly #steps: Step[] = [];
  /** Directories saved, or made by this apply: their state before needs no saving. */
  readonly #known = new Set<string>();
  #trash: { path: string; fd: number; lock: FileLock } | undefined;
  /** The host's mounts, read at the apply's first removal. */
  #mounts: MountInfo[] | undefined;

  constructor(root: ConfinedDir) {
    this.#root = root;
    this.#rootPath = fdPath(root.fd);
  }

  /** The path below the root (`""` for the root) of directory descriptor `fd`. */
  where(fd: number): string {
    const path = fdPath(fd);
    if (path === this.#rootPath) return "";
    if (!path.startsWith(`${this.#rootPath}/`)) throw new SysError(`locate ${path} in ${this.#root.path}`, Errno.EXDEV);
    return path.slice(this.#rootPath.length + 1);
  }

  /** Saves directory `path`'s metadata before its first change (entries added or removed count). */
  save(path: string): void {
    if (this.#known.has(path)) return;
    this.#known.add(path);
    const [dir, name] = this.#open(path);
    try {
      const stat = lstatAt(dir, name);
      if (!stat) return;
      const xattrs = new Map<string, Buffer>();
      for (const key of listXattrs(procPath(dir, name))) xattrs.set(key, getXattrAt(dir, name, key)!);
      this.#steps.push({ op: "saved", path, stat, xattrs });
    } finally {
      closeSync(dir);
    }
  }

  /** Records `name`, just made in directory `dir` (saved before); `isDir` when it is a directory. */
  made(dir: string, name: string, isDir: boolean): void {
    this.#steps.push({ op: "made", dir, name });
    if (isDir) this.#known.add(inside(dir, name));
  }

  /**
   * Removes `name` in directory `dirFd` (at `dir`), if anything has it, by moving it aside. A tree
   * a mount uses (a mount point in it, a bind of something in it, an overlay layer in it) is
   * refused, as rm refuses a mounted snapshot: moved aside, the mount would go with it into the
   * trash, and the trash's removal would empty it.
   */
  remove(dirFd: number, dir: string, name: string): void {
    const path = inside(dir, name);
    // Real already (the root's from /proc, the rest the journal's): not mountPointsUsing, whose
    // realpath would follow a symlink the layer removes to what it points at.
    const used = mountsUsing(join(this.#rootPath, path), (this.#mounts ??= readMountInfo()));
    if (used.length > 0) {
      let points = "";
      for (const m of used) points += `${points === "" ? "" : ", "}${m.mountPoint}`;
      throw new PreconditionError(`${path} in ${this.#root.path}`, `the layer removes it, and it is mounted at ${points}`);
    }
    this.save(dir);
    const trash = this.#trashDir();
    const trashName = String(this.#steps.length);
    try {
      renameSync(nameBuffer(procPath(dirFd, name)), nameBuffer(procPath(trash.fd, trashName)));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return; // nothing had the name
      throw err;
    }
    this.#steps.push({ op: "moved", dir, name, trashName });
  }

  /** Puts the tree back as it was before the first step. */
  rollback(): void {
    for (let step = this.#steps.pop(); step; step = this.#steps.pop()) {
      if (step.op === "saved") this.#restore(step);
      else {
        const dir = this.#openDir(step.dir);
        try {
          if (step.op === "made") this.#root.removeAll(dir, step.name);
          else renameSync(nameBuffer(procPath(this.#trash!.fd, step.trashName)), nameBuffer(procPath(dir, step.name)));
        } finally {
          closeSync(dir);
        }
      }
    }
    this.#dropTrash();
  }

  /** Keeps the changes: what was removed goes for good. */
  commit(): void {
    this.#steps.length = 0;
    try {
      this.#dropTrash();
    } catch (err) {
      // The layer is applied: what is left of the trash is only disk space, freed with the snapshot or by cleanup.
      log.warn(`remove ${this.#root.path}'s trash: ${describe(err)}`);
    }
  }

  #restore({ path, stat, xattrs }: Extract<Step, { op: "saved" }>): void {
    const [dir, name] = this.#open(path);
    const what = () => `restore ${path || "/"}`;
    try {
      chownAt(dir, name, Number(stat.uid), Number(stat.gid), what);
      chmodAt(dir, name, Number(stat.mode) & 0o7777, what);
      const file = procPath(dir, name);
      for (const key of listXattrs(file)) if (!xattrs.has(key)) removeXattr(file, key);
      for (const [key, value] of xattrs) setXattrAt(dir, name, key, value);
      setTimesAt(dir, name, stat.atimeNs, stat.mtimeNs, what);
    } finally {
      closeSync(dir);
    }
  }

  /** The parent directory of `path` and its last name (`.` for the root). */
  #open(path: string): [number, string] {
    if (path === "") return [this.#openDir(""), "."];
    const slash = path.lastIndexOf("/");
    return [this.#openDir(slash < 0 ? "" : path.slice(0, slash)), path.slice(slash + 1)];
  }

  /** Directory `path`, opened without following any symlink: the journal's paths have none. */
  #openDir(path: string): number {
    const fd = openat2(this.#root.fd, path || ".", O.PATH | O.DIRECTORY, RESOLVE.BENEATH | RESOLVE.NO_SYMLINKS);
    if (fd < 0) throw new SysError(`open ${path || "/"} in ${this.#root.path}`, -fd);
    return fd;
  }

  /** The trash directory, made on first use beside the root (on its filesystem, outside its tree). */
  #trashDir(): { fd: number } {
    if (this.#trash) return this.#trash;
    // Locked, as the snapshot service's `new-*`: cleanup takes it only after a crash. A cleanup
    // may take it in the moment before the lock: then it is gone (or going), and another is made.
    for (;;) {
      const { path, lock } = makeLockedTempDir(join(dirname(this.#rootPath), APPLY_TRASH_PREFIX));
      const fd = openat2(-100, path, O.PATH | O.DIRECTORY, 0);
      if (fd === -Errno.ENOENT) {
        lock.release();
        continue;
      }
      if (fd < 0) {
        try {
          removeDir(path);
        } catch {
          // Left to cleanup once unlocked; the open's failure is what is reported.
        }
        lock.release();
        throw new SysError(`open ${path}`, -fd);
      }
      this.#trash = { path, fd, lock };
      return this.#trash;
    }
  }

  #dropTrash(): void {
    const trash = this.#trash;
    if (!trash) return;
    this.#trash = undefined;
    closeSync(trash.fd);
    try {
      removeTree(trash.path);
    } finally {
      trash.lock.release();
    }
  }
}

/** The path the kernel gives descriptor `fd`. */
const fdPath = (fd: number) => decodeName(readlinkSync(`/proc/self/fd/${fd}`, { encoding: "buffer" }));
