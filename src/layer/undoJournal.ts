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
 *
 * The journal is also written, a line a step, to `journal` in the trash directory (made by the
 * first step, locked while the apply runs, one name a tree: {@link applyTrashPath}), so that an
 * apply killed part-way (SIGKILL, Ctrl-C, a crash) is undone ({@link recoverApply}) instead of
 * leaving the tree half applied and its replaced files in a trash nobody puts back: by whatever
 * writes the snapshot next (an apply, a commit, a mount), before it does, or else by `snapshot
 * cleanup` and `stor restore`. Undone later than that, it would take away what came after it. Each
 * step is written before it is taken: a removal, and a name to make, which the apply makes only
 * where nothing has the name (it removes what has it first), so that undoing a make a kill cut
 * short removes nothing of the tree's; a make that fails after all is taken back with a line of
 * its own. A name made inside a directory this apply made needs no step: undoing the directory
 * removes it. Lines are not synced: a killed process's writes are in the page cache;
 * a power cut may lose both the changes and their lines.
 *
 * Undoing, live or after a kill, cuts each step's line off the journal once the step is undone,
 * so an undo killed part-way is taken up where it stopped: done again, a step undone already would
 * take away what an earlier one put back (a name made is removed, and by then the name is the
 * original's, moved back). Kept, the apply's changes stay: the journal is emptied before the trash
 * goes, so a kill during its removal leaves nothing to undo.
 */
import { closeSync, ftruncateSync, readlinkSync, renameSync } from "../nodeFs.ts";
import { basename, dirname, join } from "../path.ts";
import { decodeName, nameBuffer, utf8ByteLength } from "../fileName.ts";
import { removeTree } from "../fs/removeTree.ts";
import { applyTrashPath } from "../layout.ts";
import { getXattrAt, lstatAt, procPath, setTimesAt, setXattrAt } from "../sys/dirfd.ts";
import { chmodAt, chownAt, closeFd, makeDir, openPath, pathExists, readText, writeText } from "../sys/pathCalls.ts";
import { listXattrs, lockPath, removeXattr, type FileLock } from "../sys/file.ts";
import { Errno, SysError } from "../sys/libc.ts";
import { log } from "../log.ts";
import { failpoint } from "../failpoint.ts";
import { PreconditionError, describe } from "../errors.ts";
import { mountsUnder, mountsUsing, readMountInfo, type MountInfo } from "../sys/mountinfo.ts";
import { O, RESOLVE, openat2 } from "../sys/openat2.ts";
import { ConfinedDir } from "./confined.ts";
import { inside } from "./paths.ts";

/** A change and, once written, where its line starts in the journal's file (`at`). */
type Step = (
  | { op: "made"; dir: string; name: string }
  | { op: "moved"; dir: string; name: string; trashName: string }
  | { op: "saved"; path: string; uid: number; gid: number; mode: number; atimeNs: bigint; mtimeNs: bigint; xattrs: Map<string, Buffer> }
) & { at?: number };

/** The journal's name in the trash directory. */
const JOURNAL = "journal";

/** The journal of one apply to the tree of `root`. */
export class UndoJournal {
  readonly #root: ConfinedDir;
  /** The root's path as the kernel names it: what descriptors' paths start with. */
  readonly #rootPath: string;
  readonly #steps: Step[] = [];
  /** Directories saved, or made by this apply: their state before needs no saving. */
  readonly #known = new Set<string>();
  /** Directories made by this apply: what is made in them needs no step. */
  readonly #madeDirs = new Set<string>();
  #trash: { path: string; fd: number; lock: FileLock | undefined; journal: number } | undefined;
  /** The journal file's length: where the next line starts. */
  #length = 0;
  /** The host's mounts, read at the apply's first removal. */
  #mounts: MountInfo[] | undefined;

  constructor(root: ConfinedDir) {
    this.#root = root;
    this.#rootPath = fdPath(root.fd);
  }

  /**
   * Refuses a tree with something mounted inside it (a bind an operator or a runtime left): what
   * the layer writes there would go through the mount, onto another directory or filesystem.
   * containerd applies through a mount of its own, where no such mount is.
   */
  refuseMountsInside(): void {
    const inside = mountsUnder(this.#rootPath, (this.#mounts ??= readMountInfo())).filter((m) => m.mountPoint !== this.#rootPath);
    if (inside.length > 0) throw new PreconditionError(this.#root.path, `has ${inside.map((m) => m.mountPoint).join(", ")} mounted inside it: no layer is applied through a mount`);
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
      const { uid, gid, mode, atimeNs, mtimeNs } = stat;
      this.#record({ op: "saved", path, uid: Number(uid), gid: Number(gid), mode: Number(mode) & 0o7777, atimeNs, mtimeNs, xattrs });
    } finally {
      closeSync(dir);
    }
  }

  /** Whether directory `dir` was made by this apply: what is made in it needs no step. */
  madeHere(dir: string): boolean {
    return this.#madeDirs.has(dir);
  }

  /**
   * Records that `name`, which nothing has in directory `dir` (saved before), is about to be made;
   * {@link made} once it is, {@link notMade} if it could not be. Returns the step, if one was needed.
   */
  making(dir: string, name: string): Step | undefined {
    if (this.#madeDirs.has(dir)) return undefined;
    const step: Step = { op: "made", dir, name };
    this.#record(step);
    return step;
  }

  /** `name` in `dir` is made; `isDir` when it is a directory, whose contents then need no step. */
  made(dir: string, name: string, isDir: boolean): void {
    if (!isDir) return;
    const path = inside(dir, name);
    this.#known.add(path);
    this.#madeDirs.add(path);
  }

  /**
   * The make that `step` ({@link making}'s) announced did not happen: it is taken back, here and
   * in the file, where an "x" line takes back the line before it (see {@link read}). It is the
   * last step: nothing is recorded between a making and its make.
   */
  notMade(step: Step | undefined): void {
    if (!step) return;
    this.#steps.pop();
    this.#append(this.#trashDir().journal, `${JSON.stringify(["x"])}\n`);
  }

  /** Adds `step` to the journal, in memory and in its file. */
  #record(step: Step): void {
    this.#write(step);
    this.#steps.push(step);
  }

  /** Appends `step`'s line to the journal's file, made with the trash on the first step. */
  #write(step: Step): void {
    const line =
      step.op === "made"
        ? ["m", step.dir, step.name]
        : step.op === "moved"
          ? ["v", step.dir, step.name, step.trashName]
          : ["s", step.path, step.uid, step.gid, step.mode, String(step.atimeNs), String(step.mtimeNs), Object.fromEntries([...step.xattrs].map(([k, v]) => [k, v.toString("base64")]))];
    this.#append(this.#trashDir().journal, `${JSON.stringify(line)}\n`, step);
  }

  /** Writes `text` at the journal's end; `step`, the line's, learns where it starts. */
  #append(journal: number, text: string, step?: Step): void {
    if (step) step.at = this.#length;
    writeText(journal, text);
    this.#length += utf8ByteLength(text);
  }

  /** Cuts the journal's file to its first `length` bytes. */
  #cut(length: number): void {
    if (this.#trash && this.#trash.journal >= 0) ftruncateSync(this.#trash.journal, length);
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
    const step: Step = { op: "moved", dir, name, trashName: String(this.#steps.length) };
    // Written first: a kill after the move must find where to put it back.
    this.#write(step);
    try {
      renameSync(nameBuffer(procPath(dirFd, name)), nameBuffer(procPath(trash.fd, step.trashName)));
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === "ENOENT") return; // nothing had the name
      // Not on the trash's filesystem, or not to be moved: a subvolume a container made inside a
      // btrfs snapshot, a read-only one.
      if (code === "EXDEV") throw new PreconditionError(`${path} in ${this.#root.path}`, "the layer removes it, and it is on a subvolume or filesystem of its own, where its removal could not be undone");
      if (code === "EROFS") throw new PreconditionError(`${path} in ${this.#root.path}`, "the layer removes it, and it is read-only (a read-only subvolume)");
      throw err;
    }
    this.#steps.push(step);
  }

  /**
   * Puts the tree back as it was before the first step. What holds a name a removal's step puts
   * back is the apply's, made after the original went (unrecorded: made in a directory the apply
   * made, or, after a kill, before its line): it goes first. After a kill (`recovering`), a removal
   * may not have happened (its line is written before it): it is passed.
   */
  rollback(recovering = false): void {
    for (let step = this.#steps.pop(); step; step = this.#steps.pop()) {
      this.#undo(step, recovering);
      failpoint("apply:undone");
      if (step.at !== undefined) this.#cut(step.at); // undone: a later undo must not do it again
    }
    this.#dropTrash();
  }

  #undo(step: Step, recovering: boolean): void {
    if (step.op === "saved") return this.#restore(step);
    const dir = this.#openDir(step.dir);
    try {
      if (step.op === "made") this.#root.removeAll(dir, step.name);
      else {
        const from = nameBuffer(procPath(this.#trash!.fd, step.trashName));
        if (recovering && !lstatAt(this.#trash!.fd, step.trashName)) return;
        this.#root.removeAll(dir, step.name);
        renameSync(from, nameBuffer(procPath(dir, step.name)));
      }
    } finally {
      closeSync(dir);
    }
  }

  /** Keeps the changes: what was removed goes for good. */
  commit(): void {
    // Emptied first: a trash without a journal is one to remove, never one to undo. Should that
    // fail, the steps are still here for the apply's rollback.
    this.#cut(0);
    this.#steps.length = 0;
    try {
      this.#dropTrash();
    } catch (err) {
      // The layer is applied: what is left of the trash is only disk space, freed with the snapshot or by cleanup.
      log.warn(`remove ${this.#root.path}'s trash: ${describe(err)}`);
    }
  }

  /**
   * Puts back what `step` saved of a directory, only where it differs now: a directory the layer
   * never got to change may be one nothing can change (a read-only subvolume a container made),
   * where setting even what it has fails, and the undo with it.
   */
  #restore({ path, uid, gid, mode, atimeNs, mtimeNs, xattrs }: Extract<Step, { op: "saved" }>): void {
    const [dir, name] = this.#open(path);
    const what = () => `restore ${path || "/"}`;
    try {
      const now = lstatAt(dir, name);
      if (!now) return;
      const chown = Number(now.uid) !== uid || Number(now.gid) !== gid;
      if (chown) chownAt(dir, name, uid, gid, what);
      if (chown || (Number(now.mode) & 0o7777) !== mode) chmodAt(dir, name, mode, what); // a chown clears setuid and setgid
      const file = procPath(dir, name);
      for (const key of listXattrs(file)) if (!xattrs.has(key)) removeXattr(file, key);
      for (const [key, value] of xattrs) if (!getXattrAt(dir, name, key)?.equals(value)) setXattrAt(dir, name, key, value);
      if (now.atimeNs !== atimeNs || now.mtimeNs !== mtimeNs) setTimesAt(dir, name, atimeNs, mtimeNs, what);
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

  /**
   * The trash directory, made on first use beside the root (on its filesystem, outside its tree),
   * with the journal's file, which first names the root, by its name there.
   */
  #trashDir(): { fd: number; journal: number } {
    if (this.#trash) return this.#trash;
    // One name a tree, so that whoever writes the tree next finds a killed apply's trash at once
    // and undoes it first (see recoverApply); a live apply holds its lock.
    const path = applyTrashPath(this.#rootPath);
    if (!makeDir(path, 0o700)) throw new PreconditionError(this.#root.path, "the changes of an interrupted apply are still to be undone (stor snapshot cleanup)");
    const lock = lockPath(path)!;
    const fd = openat2(-100, path, O.PATH | O.DIRECTORY, 0);
    let journal: number;
    try {
      if (fd < 0) throw new SysError(`open ${path}`, -fd);
      journal = openPath(join(path, JOURNAL), O.WRONLY | O.CREAT | O.EXCL, 0o600);
      this.#append(journal, `${JSON.stringify({ root: basename(this.#rootPath) })}\n`);
    } catch (err) {
      if (fd >= 0) closeSync(fd);
      lock.release(); // left to cleanup: a trash without a journal changed nothing yet
      throw err;
    }
    this.#trash = { path, fd, lock, journal };
    return this.#trash;
  }

  #dropTrash(): void {
    const trash = this.#trash;
    if (!trash) return;
    this.#trash = undefined;
    closeSync(trash.fd);
    if (trash.journal >= 0) closeFd(trash.journal);
    try {
      removeTree(trash.path);
    } finally {
      trash.lock?.release();
    }
  }

  /**
   * The journal of the apply that left trash `path` (unlocked, its apply killed), read back:
   * `lines` are its steps' lines, which start `start` bytes into the file (after the header).
   */
  static read(path: string, root: ConfinedDir, lines: string[], start: number): UndoJournal {
    const journal = new UndoJournal(root);
    const fd = openat2(-100, path, O.PATH | O.DIRECTORY, 0);
    if (fd < 0) throw new SysError(`open ${path}`, -fd);
    let file: number;
    try {
      file = openPath(join(path, JOURNAL), O.WRONLY);
    } catch (err) {
      closeSync(fd);
      throw err;
    }
    journal.#trash = { path, fd, lock: undefined, journal: file };
    let at = start;
    for (const line of lines) {
      const f = JSON.parse(line) as unknown[];
      const str = (i: number) => String(f[i]);
      let step: Step;
      if (f[0] === "x") {
        // The make the line before announced did not happen.
        journal.#steps.pop();
        at += utf8ByteLength(line) + 1;
        continue;
      }
      if (f[0] === "m") step = { op: "made", dir: str(1), name: str(2) };
      else if (f[0] === "v") step = { op: "moved", dir: str(1), name: str(2), trashName: str(3) };
      else {
        const xattrs = new Map(Object.entries(f[7] as Record<string, string>).map(([k, v]) => [k, Buffer.from(v, "base64")]));
        step = { op: "saved", path: str(1), uid: Number(f[2]), gid: Number(f[3]), mode: Number(f[4]), atimeNs: BigInt(str(5)), mtimeNs: BigInt(str(6)), xattrs };
      }
      step.at = at;
      at += utf8ByteLength(line) + 1;
      journal.#steps.push(step);
    }
    return journal;
  }
}

/**
 * Undoes the apply that left trash directory `path` (a `new-apply-*` nobody holds: its apply was
 * killed; the caller holds its lock now) from the journal in it, then removes it. The tree it names beside it goes back to what
 * it was before the apply; a trash without a journal (made, then killed) changed nothing. A line
 * the kill cut short is the last, and a step not taken.
 */
export function recoverApply(path: string): void {
  const lines = readText(join(path, JOURNAL))?.split("\n") ?? [];
  lines.pop(); // a line the kill cut short, or the nothing after the last newline
  const header = lines.shift();
  const rootPath = header === undefined ? undefined : join(dirname(path), String((JSON.parse(header) as { root: unknown }).root));
  if (rootPath === undefined || !pathExists(rootPath)) return removeTree(path); // nothing to put back, or nowhere
  const root = new ConfinedDir(rootPath);
  try {
    UndoJournal.read(path, root, lines, utf8ByteLength(header!) + 1).rollback(true);
  } finally {
    root.close();
  }
}

/** The path the kernel gives descriptor `fd`. */
const fdPath = (fd: number) => decodeName(readlinkSync(`/proc/self/fd/${fd}`, { encoding: "buffer" }));
