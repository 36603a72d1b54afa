/**
 * Applying an OCI layer to an active snapshot, streaming: one entry at a time, file contents in
 * the chunks they arrive in. Every name is resolved inside the snapshot's tree by the kernel
 * ({@link ConfinedDir}), so no entry can reach outside it, and nothing but that tree is written:
 * the parents of an overlay snapshot are only read.
 *
 * Whiteouts follow the OCI image spec: `.wh.NAME` deletes NAME, `.wh..wh..opq` empties its
 * directory, and neither removes what the same layer brought, before or after them in the layer.
 * On overlay the deletion is also recorded the way overlayfs reads it (a 0/0 character device, the
 * opaque xattr), so that the mounted snapshot hides what its parents still hold. No name with the
 * whiteout prefix ever reaches the disk as a file.
 *
 * All or nothing: every change is journalled ({@link UndoJournal}) and undone when the layer is
 * refused or fails part-way, so the snapshot is then as it was.
 */
import { ftruncateSync, type BigIntStats } from "../nodeFs.ts";
import { describe, ExitCode, exitCodeOf, InvalidArgumentError, StorError } from "../errors.ts";
import type { SnapshotService } from "../snapshot/service.ts";
import { failpoint } from "../failpoint.ts";
import { listXattrs, removeXattr, setTimes, setXattr, writeAllAt } from "../sys/file.ts";
import { Errno, SysError } from "../sys/libc.ts";
import { makedev } from "../sys/devno.ts";
import { asCreated, inherited, type AsCreated, type Inherited } from "../fs/newFiles.ts";
import { getXattrAt, lstatAt, procPath, readdirAt, readlinkAt, setTimesAt, setXattrAt } from "../sys/dirfd.ts";
import { chmodAt, chmodFd, chownAt, chownFd, closeFd, existsAt, linkAt, mkdirAt, mknodAt, openAt, S, statAt, symlinkAt } from "../sys/pathCalls.ts";
import { oneLine } from "../oneLine.ts";
import { O } from "../sys/openat2.ts";
import { ConfinedDir } from "./confined.ts";
import { HashRing } from "./hashRing.ts";
import { uncompressedChunks, type LayerInput } from "./layerInput.ts";
import { Lowers } from "./lowers.ts";
import { entryParts, inside } from "./paths.ts";
import { malformed, type TarHeader } from "./tarFormat.ts";
import { TarReader } from "./tarReader.ts";
import { UndoJournal } from "./undoJournal.ts";
import { OPAQUE_MARKER, OVERLAY_OPAQUE_XATTR, WHITEOUT_META_PREFIX, WHITEOUT_PREFIX, isOverlayWhiteout, isOverlayXattr } from "./whiteout.ts";

const { ENOENT, EEXIST, ENOTDIR, ELOOP, EOPNOTSUPP, EPERM } = Errno;
/** As the kernel's limit on symlinks followed in one path walk. */
const MAX_SYMLINK_HOPS = 40;
const DEVICE_TYPE_BITS = { char: S.IFCHR, block: S.IFBLK, fifo: S.IFIFO } as const;
type DeviceType = keyof typeof DEVICE_TYPE_BITS;
/** Directories an apply holds open for the entries to come (see Applier's #dirs): deeper than most trees. */
const OPEN_DIRS = 32;
/** How often, at most, an apply reports its progress. */
const PROGRESS_MS = 100;
/**
 * Errors a system call gives for what the layer asks, not for the state of the machine: a name
 * too long, a file too large, an entry below a file. The layer is refused as invalid (exit 2).
 */
const INPUT_ERRNOS = new Set(["EINVAL", "ENAMETOOLONG", "ELOOP", "ENOTDIR", "EISDIR", "EFBIG", "E2BIG", "ERANGE", "EMLINK", "EEXIST"]);

/** How far an apply has got: uncompressed bytes read and entries applied. */
export interface ApplyProgress {
  bytes: number;
  entries: number;
}

/**
 * Applies the layer read from `input` (plain, gzip or zstd) to active snapshot `key` and returns
 * its diffID: the sha256 of the uncompressed stream, as an image config's rootfs.diff_ids records
 * it. `source` names the input in errors. A failure leaves every snapshot as it was. `onProgress`
 * hears how far it has got, at most every {@link PROGRESS_MS} ms and once at the end.
 */
export async function applyToSnapshot(svc: SnapshotService, key: string, input: LayerInput, source: string, onProgress?: (p: ApplyProgress) => void): Promise<string> {
  // Held while written: commit and rm refuse it meanwhile (see SnapshotService.holdForWriting).
  const { view, release } = svc.holdForWriting(key);
  try {
    return await applyLayer(view.upper, view.diffStyle === "upper" ? view.parents : undefined, input, onProgress);
  } catch (err) {
    // Entry names are the layer's, and may hold a newline: the message stays one line.
    throw new StorError(`apply ${source} to snapshot "${key}"`, oneLine(describe(err)), exitCodeOf(err), { cause: err });
  } finally {
    release();
  }
}

/**
 * Applies a layer to the tree at `root` and returns its diffID. `overlayParents` (nearest first)
 * makes `root` an overlay upper directory: deletions become whiteouts and new parent directories
 * take their metadata from the parents. On failure `root` is left as it was. The trash of what
 * the layer deletes is kept beside `root` until the end, so its parent must be stor's too.
 */
export async function applyLayer(root: string, overlayParents: readonly string[] | undefined, input: LayerInput, onProgress?: (p: ApplyProgress) => void): Promise<string> {
  const applier = new Applier(root, overlayParents);
  const ring = new HashRing();
  const chunks = uncompressedChunks(input, ring);
  try {
    const reader = new TarReader(chunks);
    let entries = 0;
    let reported = performance.now();
    for (let h = await reader.next(); h; h = await reader.next()) {
      await applier.entry(h, reader);
      failpoint("apply:entry");
      entries++;
      if (onProgress && performance.now() - reported >= PROGRESS_MS) {
        reported = performance.now();
        onProgress({ bytes: reader.offset, entries });
      }
    }
    await reader.drain();
    applier.finish();
    const diffID = `sha256:${await ring.digest()}`;
    applier.commit();
    onProgress?.({ bytes: reader.offset, entries });
    return diffID;
  } catch (err) {
    applier.rollback(err);
    throw err;
  } finally {
    ring.close();
    await chunks.return(undefined); // closes the input if the apply stopped early
    applier.close();
  }
}

/** A directory held open for the entries that go in it, and what is known of it. */
interface OpenDir {
  fd: number;
  passes?: Inherited;
  /** Where it is below the root, as the journal records it. */
  at?: string;
}

/** The state of one layer being applied. */
class Applier {
  readonly #root: ConfinedDir;
  readonly #lowers: Lowers | undefined;
  readonly #journal: UndoJournal;
  /**
   * Paths this layer created or changed, and their ancestors: what its whiteouts must spare. Each
   * is where its entry resolved to in the snapshot, as {@link #at} gives it, so that no spelling
   * of a name (a symlink on the way, `./`, `//`) decides whether a whiteout spares it.
   */
  readonly #unpacked = new Set<string>();
  /** Directory times, set at the end: adding entries to a directory changes its mtime. */
  readonly #dirTimes: { parts: string[]; mtimeNs: bigint }[] = [];
  /**
   * The directories entries went in lately, by their components joined by `/`, held open for the
   * next entries: a layer lists a directory's entries together, but a subdirectory's between
   * them, so the parent's come back. Least recently used first.
   */
  readonly #dirs = new Map<string, OpenDir>();
  /** The directory of the entry under way, and its key while it is in {@link #dirs}. */
  #current: OpenDir | undefined;
  #currentKey: string | undefined;
  /**
   * Descriptors of directories forgotten while the entry under way may still use one: closed when
   * the next entry looks its directory up.
   */
  readonly #forgotten: number[] = [];

  constructor(root: string, overlayParents: readonly string[] | undefined) {
    this.#root = new ConfinedDir(root);
    this.#lowers = overlayParents && new Lowers(overlayParents);
    try {
      this.#journal = new UndoJournal(this.#root);
      this.#journal.refuseMountsInside();
    } catch (err) {
      this.#root.close();
      throw err;
    }
  }

  async entry(h: TarHeader, reader: TarReader): Promise<void> {
    const parts = entryParts(h.path);
    const name = parts.at(-1);
    if (name === undefined && h.type !== "dir") throw malformed(`entry "${h.path}" names the root but is not a directory`);
    // A layer's directory names are real names, and one with the prefix could never be diffed back.
    for (let i = 0; i < parts.length - 1; i++) {
      if (parts[i]!.startsWith(WHITEOUT_PREFIX)) throw malformed(`entry "${h.path}": directory "${parts[i]}" has the whiteout prefix`);
    }
    // The snapshot's root is the snapshotter's, not the layer's: containerd passes over an entry
    // that names it, and `snapshot diff` never writes one, so apply(diff(x)) is x.
    if (name === undefined) return;
    try {
      if (name.startsWith(WHITEOUT_PREFIX)) return this.#whiteout(parts.slice(0, -1), name, h.path);
      const path = parts.join("/");
      const dir = this.#entryDir(parts.length === 1 ? "" : path.slice(0, path.length - name.length - 1), parts, h.path);
      // On overlay a new name can hide what the parents show there, a symlink a path was followed through.
      if (this.#lowers) this.#forgetBelow(path);
      if (h.type === "file") await this.#writeFile(dir, name, h, reader);
      else {
        if (h.type === "dir") this.#inheritanceMayChange();
        this.#create(dir, name, h);
        if (h.type !== "link") this.#metadata(nameTarget(dir, name, h.path), h, parts);
      }
      this.#brought(this.#at(dir), name);
    } catch (err) {
      // A failed system call, stor's own or node's (fchown, ftruncate), is named by its entry.
      const failed = err instanceof SysError ? err.errnoName : (err as NodeJS.ErrnoException)?.syscall ? (err as NodeJS.ErrnoException).code : undefined;
      if (failed === undefined) throw err;
      const what = `entry "${h.path}"`;
      throw INPUT_ERRNOS.has(failed) ? new InvalidArgumentError(what, describe(err), { cause: err }) : new StorError(what, describe(err), exitCodeOf(err), { cause: err });
    }
  }

  /**
   * The directory of entry `parts` (`key`: all but the last joined by `/`), from {@link #dirs}
   * when an entry went there lately.
   */
  #entryDir(key: string, parts: string[], path: string): number {
    if (key === this.#currentKey) return this.#current!.fd;
    // The entry before is done: what was forgotten meanwhile can be closed.
    while (this.#forgotten.length > 0) closeFd(this.#forgotten.pop()!);
    this.#current = this.#currentKey = undefined;
    let dir = this.#dirs.get(key);
    if (dir) this.#dirs.delete(key); // set again below: now the most recently used
    else {
      if (this.#dirs.size >= OPEN_DIRS) {
        const [oldest, { fd }] = this.#dirs.entries().next().value!;
        this.#dirs.delete(oldest);
        closeFd(fd);
      }
      // Reached through no symlink, a directory is where the entry names it: the journal need not
      // ask the kernel where its descriptor is (a readlink a directory, 2–3% of an apply).
      const exact = this.#root.openDirExactly(parts.slice(0, -1));
      dir = exact >= 0 ? { fd: exact, at: key } : { fd: this.#parentDir(parts.slice(0, -1), path) };
    }
    this.#dirs.set(key, dir);
    this.#current = dir;
    this.#currentKey = key;
    return dir.fd;
  }

  /** Records that this layer brought `name` in directory `at`, and with it `at` and its ancestors. */
  #brought(at: string, name: string): void {
    this.#unpacked.add(inside(at, name));
    for (let p = at; p !== "" && !this.#unpacked.has(p); p = p.slice(0, Math.max(0, p.lastIndexOf("/")))) this.#unpacked.add(p);
  }

  /** Forgets the directories at `path` and below it: they may now be elsewhere. */
  #forgetBelow(path: string): void {
    const below = `${path}/`;
    for (const key of this.#dirs.keys()) if (key === path || key.startsWith(below)) this.#forgetDir(key);
  }

  /**
   * A directory entry may change the setgid bit or default ACL of a directory that is held open
   * under any name (a symlink to it is one): what each passes on is asked again when next needed.
   */
  #inheritanceMayChange(): void {
    for (const dir of this.#dirs.values()) dir.passes = undefined;
    if (this.#current) this.#current.passes = undefined;
  }

  /** Forgets directory `key`: what it is held under may now lead elsewhere. */
  #forgetDir(key: string): void {
    const dir = this.#dirs.get(key);
    if (!dir) return;
    this.#dirs.delete(key);
    this.#forgotten.push(dir.fd);
    if (key === this.#currentKey) {
      this.#current = { fd: dir.fd }; // still the entry's, no longer looked up
      this.#currentKey = undefined;
    }
  }

  /** Forgets every directory held: a removal may make any name lead elsewhere. */
  #forgetAll(): void {
    for (const key of this.#dirs.keys()) this.#forgetDir(key);
  }

  /**
   * What of `h`'s metadata a file just created in the entry's directory already has, so that it
   * need not be set again: the process's user, the group when the directory's is the process's
   * too (a setgid directory or a `grpid` mount gives a new file the directory's group), and the
   * mode it was created with, if the umask and no default ACL took anything from it.
   */
  #asCreated(h: TarHeader): AsCreated {
    const dir = this.#current!;
    dir.passes ??= inherited(dir.fd);
    return asCreated(dir.passes, h.uid, h.gid, h.mode);
  }

  /** Where directory `dir` is below the root, as the journal records it. */
  #at(dir: number): string {
    const current = this.#current;
    return dir === current?.fd ? (current.at ??= this.#journal.where(dir)) : this.#journal.where(dir);
  }

  /** Saves what `dir` was like before anything in it changes (its mtime will). */
  #changing(dir: number): void {
    this.#journal.save(this.#at(dir));
  }

  /**
   * Makes `name` in `dir` (which {@link #changing} saved, and where nothing has the name) with
   * `make`, journalled first: a kill between the two leaves a step whose undo finds the name, or
   * nothing, but never what was there before.
   */
  #make<T>(dir: number, name: string, make: () => T, isDir = false): T {
    const at = this.#at(dir);
    const step = this.#journal.making(at, name);
    let made: T;
    try {
      made = make();
    } catch (err) {
      this.#journal.notMade(step);
      throw err;
    }
    this.#journal.made(at, name, isDir);
    return made;
  }

  /** {@link #make}s directory `name` in `dir`; `what` names it in an error. */
  #makeDir(dir: number, name: string, what: () => string): void {
    this.#make(dir, name, () => {
      if (!mkdirAt(dir, name, 0o700, what)) throw new SysError(what(), EEXIST);
    }, true);
  }

  /** Removes `name` in `dir` and everything below it; what the layer names afterwards is resolved again. */
  #remove(dir: number, name: string): void {
    this.#forgetAll();
    this.#journal.remove(dir, this.#at(dir), name);
  }

  /**
   * Runs `create` for `name` in `dir`, having removed what had the name. In a directory this
   * apply made, which needs no step, it tries first and removes only when the name is taken:
   * one call for a new name, as almost every name of a layer unpacked onto nothing is.
   */
  #replacing<T>(dir: number, name: string, create: () => T): T {
    this.#changing(dir);
    if (this.#journal.madeHere(this.#at(dir))) {
      try {
        return create();
      } catch (err) {
        if (!(err instanceof SysError && err.errno === EEXIST)) throw err;
        this.#remove(dir, name);
        return create();
      }
    }
    if (existsAt(dir, name)) this.#remove(dir, name);
    return this.#make(dir, name, create);
  }

  /** Puts entry `h` (anything but a regular file) at `name` in `dir`; a directory stays a directory. */
  #create(dir: number, name: string, h: TarHeader): void {
    const what = () => `create ${h.path}`;
    switch (h.type) {
      case "dir": {
        this.#changing(dir);
        const existing = statAt(dir, name, false);
        if (!existing) return this.#makeDir(dir, name, what);
        if (existing.isDirectory) {
          this.#journal.save(inside(this.#at(dir), name));
          return this.#dropXattrs(dir, name, h);
        }
        this.#remove(dir, name);
        this.#makeDir(dir, name, what);
        // What it replaced (a whiteout, or a file or symlink of this layer's) hid the parents'
        // directory there; the new one would merge with it and show its old contents again.
        if (this.#lowers && this.#parentsHave(this.#at(dir), name)?.isDirectory()) setXattrAt(dir, name, OVERLAY_OPAQUE_XATTR, Buffer.from("y"));
        return;
      }
      case "symlink":
        if (h.linkpath === "") throw malformed(`symlink "${h.path}" has no target`);
        return this.#replacing(dir, name, () => symlinkAt(h.linkpath, dir, name, what));
      case "link":
        return this.#hardlink(dir, name, h);
      default:
        // overlayfs reads a 0/0 character device as a deletion: on either snapshotter it could never be diffed back.
        if (h.type === "char" && h.devMajor === 0 && h.devMinor === 0) throw malformed(`entry "${h.path}": a character device 0/0 is overlayfs's whiteout, not a file`);
        return this.#replacing(dir, name, () => mknodAt(dir, name, DEVICE_TYPE_BITS[h.type as DeviceType] | 0o600, makedev(h.devMajor, h.devMinor), what));
    }
  }

  /**
   * A regular file: created with its permission bits, its content written as it streams in, then
   * the rest of its metadata set through the open descriptor.
   */
  async #writeFile(dir: number, name: string, h: TarHeader, reader: TarReader): Promise<void> {
    const fd = this.#replacing(dir, name, () => openAt(dir, name, O.WRONLY | O.CREAT | O.EXCL, h.mode & 0o777, () => `create ${h.path}`));
    try {
      let end = 0;
      for (let piece = await reader.read(); piece; piece = await reader.read()) {
        writeAllAt(fd, piece.bytes, piece.position, () => `write ${h.path}`);
        end = piece.position + piece.bytes.length;
      }
      // A sparse file's last hole, if any, is a length, not data.
      if (end < h.size) ftruncateSync(fd, h.size);
      this.#metadata(fdTarget(fd), h, [], this.#asCreated(h));
    } finally {
      closeFd(fd);
    }
  }

  /** A hardlink to an earlier entry, found inside the snapshot like any other name. */
  #hardlink(dir: number, name: string, h: TarHeader): void {
    const target = entryParts(h.linkpath, `hardlink "${h.path}": its target "${h.linkpath}"`);
    const targetName = target.at(-1);
    if (targetName === undefined) throw malformed(`hardlink "${h.path}" points to the root`);
    const missing = () => malformed(`hardlink "${h.path}" points to "${h.linkpath}", which is not in the snapshot`);
    const targetDir = this.#root.openDir(target.slice(0, -1));
    if (targetDir === -ENOENT || targetDir === -ENOTDIR) throw missing();
    if (targetDir < 0) throw new SysError(`hardlink ${h.path} to ${h.linkpath}`, -targetDir);
    try {
      const st = lstatAt(targetDir, targetName);
      // On overlay a whiteout is a deletion, no file: a link to it would delete its new name too.
      if (!st || (this.#lowers && isOverlayWhiteout(st))) throw missing();
      if (st.isDirectory()) throw malformed(`hardlink "${h.path}" points to directory "${h.linkpath}"`);
      // Already a name of that file (the entry names its own target): nothing to do.
      const here = lstatAt(dir, name);
      if (here && here.ino === st.ino && here.dev === st.dev) return;
      this.#replacing(dir, name, () => linkAt(targetDir, targetName, dir, name, () => `hardlink ${h.path} to ${h.linkpath}`));
    } finally {
      closeFd(targetDir);
    }
  }

  /**
   * Removes the xattrs of existing directory `name` in `dir` that entry `h` does not have: its
   * metadata is the entry's now, or a diff, which lists what a directory has, could not say so.
   * overlayfs's own and the SELinux label are not a layer's to change.
   */
  #dropXattrs(dir: number, name: string, h: TarHeader): void {
    const path = procPath(dir, name);
    for (const key of listXattrs(path)) if (!h.xattrs.has(key) && !isOverlayXattr(key) && key !== "security.selinux") removeXattr(path, key);
  }

  /**
   * Owner, mode, xattrs and (except for directories, see {@link finish}) times; the owner and
   * mode only where a new file does not have them already (`asCreated`).
   */
  #metadata(target: MetadataTarget, h: TarHeader, parts: string[], asCreated?: AsCreated): void {
    // chown first: it clears setuid bits and security.capability.
    if (!asCreated?.owner) target.chown(h.uid, h.gid);
    if (h.type !== "symlink" && !asCreated?.mode) target.chmod(h.mode);
    for (const [key, value] of h.xattrs) {
      // Overlayfs's own xattrs (redirects, opaque, origin) could forge its view; only whiteouts may.
      if (isOverlayXattr(key)) continue;
      try {
        target.setXattr(key, value);
      } catch (err) {
        // The filesystem keeps none; or, for a symlink or a device, none in the user namespace (as getfattr shows).
        const unsupported = err instanceof SysError && (err.errno === EOPNOTSUPP || (err.errno === EPERM && key.startsWith("user.") && h.type !== "file" && h.type !== "dir"));
        if (!unsupported) throw err;
      }
    }
    if (h.type === "dir") this.#dirTimes.push({ parts, mtimeNs: h.mtimeNs });
    else target.setTimes(h.mtimeNs);
  }

  /**
   * Opens the directory an entry goes in, creating what is missing of it. A dangling symlink on
   * the way is followed by creating its target, as containerd does; that target, too, is inside.
   */
  #parentDir(parts: string[], path: string, hops = 0): number {
    const fd = this.#root.openDir(parts);
    if (fd >= 0) return fd;
    // On overlay, ENOTDIR may be a whiteout on the way, which a new directory replaces.
    if (-fd !== ENOENT && !(-fd === ENOTDIR && this.#lowers)) throw new SysError(`parent directory of ${path}`, -fd);
    // One component at a time, each resolved from the root again, as symlinks may lead anywhere inside.
    let dir = this.#root.openDir([]);
    try {
      for (let i = 0; i < parts.length; i++) {
        const upTo = parts.slice(0, i + 1);
        let next = this.#root.openDir(upTo);
        // What the snapshot shows there when the upper directory has nothing: the parents' (on overlay).
        // ENOTDIR too: a symlink whose target is not a directory (or, on overlay, is a whiteout,
        // where native has nothing) is followed all the same, so both snapshotters take a layer alike.
        const upper = next === -ENOENT || next === -ENOTDIR ? lstatAt(dir, parts[i]!) : undefined;
        const lower = next === -ENOENT && !upper && this.#lowers ? this.#parentsHave(this.#at(dir), parts[i]!) : undefined;
        const here = upper ?? lower;
        if (here?.isSymbolicLink()) {
          const target = upper ? readlinkAt(dir, parts[i]!) : this.#lowers!.readlink(inside(this.#at(dir), parts[i]!));
          closeFd(dir);
          dir = -1;
          if (hops >= MAX_SYMLINK_HOPS) throw new SysError(`parent directory of ${path}`, ELOOP);
          return this.#parentDir(throughLink(parts.slice(0, i), target, parts.slice(i + 1)), path, hops + 1);
        }
        const what = () => `create parent directory ${upTo.join("/")} of ${path}`;
        if (next === -ENOTDIR || next === -ENOENT) this.#changing(dir);
        if (next === -ENOTDIR && this.#lowers && isWhiteoutAt(dir, parts[i]!)) {
          // Deleted by this layer, and made again for what the layer brings there: nothing of the parents shows.
          this.#remove(dir, parts[i]!);
          this.#makeDir(dir, parts[i]!, what);
          setXattrAt(dir, parts[i]!, OVERLAY_OPAQUE_XATTR, Buffer.from("y"));
          chmodAt(dir, parts[i]!, 0o755, what);
          next = this.#root.openDir(upTo);
        } else if (next === -ENOENT && here && !here.isDirectory()) {
          throw new SysError(`parent directory ${upTo.join("/")} of ${path}`, ENOTDIR);
        } else if (next === -ENOENT) {
          // Reached through a symlink: the layer never names it, but it must not reach the disk either.
          if (parts[i]!.startsWith(WHITEOUT_PREFIX)) throw malformed(`entry "${path}": directory "${parts[i]}" has the whiteout prefix`);
          this.#makeDir(dir, parts[i]!, what);
          this.#parentMetadata(dir, parts[i]!, upTo);
          next = this.#root.openDir(upTo);
        }
        closeFd(dir);
        dir = -1;
        if (next < 0) throw new SysError(`parent directory ${upTo.join("/")} of ${path}`, -next);
        dir = next;
      }
      const opened = dir;
      dir = -1; // the caller's now
      return opened;
    } finally {
      // Not left open by a failure on the way.
      if (dir >= 0) closeFd(dir);
    }
  }

  /** A directory the layer did not list: as the parents have it on overlay, else root's 0755. */
  #parentMetadata(dir: number, name: string, parts: string[]): void {
    const lower = this.#lowers?.find(parts.join("/"));
    const what = () => `set metadata of ${parts.join("/")}`;
    if (lower?.isDirectory()) {
      chownAt(dir, name, Number(lower.uid), Number(lower.gid), what);
      chmodAt(dir, name, Number(lower.mode) & 0o7777, what);
      this.#dirTimes.push({ parts, mtimeNs: lower.mtimeNs });
    } else {
      chmodAt(dir, name, 0o755, what);
    }
  }

  #whiteout(dirParts: string[], name: string, path: string): void {
    if (name !== OPAQUE_MARKER && name.startsWith(WHITEOUT_META_PREFIX)) return; // AUFS metadata: nothing to apply
    const target = name.slice(WHITEOUT_PREFIX.length);
    if (name !== OPAQUE_MARKER && (target === "" || target === "." || target === "..")) throw malformed(`invalid whiteout "${path}"`);
    const overlay = this.#lowers !== undefined;
    let dir = this.#root.openDir(dirParts);
    if (dir === -ENOENT) {
      // Nothing to delete here; but on overlay the parents may show the directory, and it needs the whiteout.
      const shown = this.#lowers && this.#shownDir(dirParts);
      if (!shown) return;
      dir = this.#parentDir(shown, path);
    }
    if (dir === -ENOTDIR) return; // below a file (or a whiteout): nothing there to delete
    if (dir < 0) throw new SysError(`whiteout ${path}`, -dir);
    try {
      const at = this.#at(dir);
      if (name === OPAQUE_MARKER) this.#hideBelow(dir, at, path);
      else if (!this.#unpacked.has(inside(at, target))) {
        this.#remove(dir, target);
        if (overlay && this.#parentsHave(at, target)) this.#putWhiteout(dir, target, path);
      } else if (lstatAt(dir, target)?.isDirectory()) {
        // The layer brought entries below it, before the whiteout: only what was there before goes.
        const sub = openAt(dir, target, O.PATH | O.DIRECTORY, 0, () => `whiteout ${path}`);
        try {
          this.#hideBelow(sub, inside(at, target), path);
        } finally {
          closeFd(sub);
        }
      }
    } finally {
      closeFd(dir);
    }
  }

  /**
   * Where directory `parts` is in the mounted overlay snapshot, with the symlinks of the upper
   * directory and of the parents followed as the mount follows them (inside it, as on native): its
   * components, none a symlink; undefined when the mount shows no directory there.
   */
  #shownDir(parts: readonly string[], hops = 0): string[] | undefined {
    const at: string[] = [];
    for (let i = 0; i < parts.length; i++) {
      if (parts[i] === "..") {
        at.pop();
        continue;
      }
      // Every component of `at` is a directory in the upper directory or only in the parents.
      const path = inside(at.join("/"), parts[i]!);
      const upper = lstatAt(this.#root.fd, path);
      const st = upper ?? this.#parentsHave(at.join("/"), parts[i]!);
      if (st?.isSymbolicLink()) {
        if (hops >= MAX_SYMLINK_HOPS) throw new SysError(`directory ${parts.join("/")}`, ELOOP);
        const target = upper ? readlinkAt(this.#root.fd, path) : this.#lowers!.readlink(path);
        return this.#shownDir(throughLink(at, target, parts.slice(i + 1)), hops + 1);
      }
      if (!st?.isDirectory()) return undefined;
      at.push(parts[i]!);
    }
    return at;
  }

  /**
   * What the parents show at `name` in directory `dir` of the upper directory (a path without
   * symlinks) through the mount: nothing below an opaque directory. Only there is a whiteout
   * needed; overlayfs lists one anywhere else as a name that cannot be opened.
   */
  #parentsHave(dir: string, name: string): BigIntStats | undefined {
    const st = this.#lowers?.find(inside(dir, name));
    if (!st) return undefined;
    // Not the root's: overlayfs ignores the opaque xattr on the upper root.
    for (let p = dir; p !== ""; p = p.slice(0, Math.max(0, p.lastIndexOf("/")))) if (this.#isOpaque(p)) return undefined;
    return st;
  }

  /** Whether directory `at` of the upper directory is opaque; one only the parents have (see {@link #shownDir}) is not. */
  #isOpaque(at: string): boolean {
    try {
      return getXattrAt(this.#root.fd, at, OVERLAY_OPAQUE_XATTR)?.toString() === "y";
    } catch (err) {
      if (err instanceof SysError && err.errno === ENOENT) return false;
      throw err;
    }
  }

  /** Puts an overlay whiteout at `name` in `dir`, which holds nothing there now, for whiteout `path`. */
  #putWhiteout(dir: number, name: string, path: string): void {
    this.#changing(dir);
    this.#make(dir, name, () => mknodAt(dir, name, S.IFCHR, 0n, () => `whiteout ${path}`));
  }

  /**
   * Empties directory `dir` (at `at`) of all this layer did not bring, at every depth; on
   * overlay also hides what the parents have there.
   */
  #hideBelow(dir: number, at: string, path: string, top = true): void {
    for (const child of readdirAt(dir, ".")) {
      const childAt = inside(at, child);
      if (!this.#unpacked.has(childAt)) this.#remove(dir, child);
      else if (lstatAt(dir, child)?.isDirectory()) {
        const sub = openAt(dir, child, O.PATH | O.DIRECTORY, 0, () => `whiteout ${path}`);
        try {
          this.#hideBelow(sub, childAt, path, false);
        } finally {
          closeFd(sub);
        }
      }
    }
    if (this.#lowers && top) {
      this.#forgetAll(); // the parents' names below it, symlinks too, no longer show
      if (at === "") return this.#hideAtRoot(dir, path);
      this.#journal.save(at);
      setXattrAt(dir, ".", OVERLAY_OPAQUE_XATTR, Buffer.from("y"));
    }
  }

  /**
   * Hides what the parents show at the root, name by name, as native's emptied root does:
   * overlayfs ignores the opaque xattr on the upper root, whose layers are fixed at mount. A
   * directory this layer brought keeps its name but must not merge with the parents' there.
   */
  #hideAtRoot(root: number, path: string): void {
    for (const name of this.#lowers!.namesAtRoot()) {
      const lower = this.#parentsHave("", name);
      if (!lower) continue;
      const upper = lstatAt(root, name);
      if (!upper) this.#putWhiteout(root, name, path);
      else if (upper.isDirectory() && lower.isDirectory()) {
        this.#journal.save(name);
        setXattrAt(root, name, OVERLAY_OPAQUE_XATTR, Buffer.from("y"));
      }
    }
  }

  /**
   * Sets directory times, now that nothing more is added to them. Grouped by parent, each opened
   * once: setting a directory's times changes nothing of its parent's.
   */
  finish(): void {
    const byParent = new Map<string, { parent: string[]; dirs: { name: string; path: string; mtimeNs: bigint }[] }>();
    for (const { parts, mtimeNs } of this.#dirTimes) {
      const parent = parts.slice(0, -1);
      const key = parent.join("/");
      let group = byParent.get(key);
      if (!group) byParent.set(key, (group = { parent, dirs: [] }));
      group.dirs.push({ name: parts.at(-1)!, path: parts.join("/"), mtimeNs });
    }
    for (const { parent, dirs } of byParent.values()) {
      const dir = this.#root.openDir(parent);
      if (dir < 0) continue; // removed by a later whiteout
      try {
        for (const { name, path, mtimeNs } of dirs) {
          if (statAt(dir, name, false)?.isDirectory) setTimesAt(dir, name, mtimeNs, mtimeNs, () => `set times of ${path}`);
        }
      } finally {
        closeFd(dir);
      }
    }
  }

  /** Keeps what the layer did. */
  commit(): void {
    this.#journal.commit();
  }

  /** Undoes what the layer did, after `failure`; a failure to undo is reported with it. */
  rollback(failure: unknown): void {
    try {
      this.#journal.rollback();
    } catch (err) {
      throw new StorError(describe(failure), `and undoing the changes failed: ${describe(err)}`, ExitCode.internal, { cause: err });
    }
  }

  close(): void {
    for (const { fd } of this.#dirs.values()) closeFd(fd);
    while (this.#forgotten.length > 0) closeFd(this.#forgotten.pop()!);
    this.#root.close();
    this.#lowers?.close();
  }
}

/**
 * The components a path leads to when it reaches a symlink to `target` after components `before`
 * and goes on with `after`. `..` stays in: what follows it resolves it against real directories,
 * stopping at the root.
 */
function throughLink(before: readonly string[], target: string, after: readonly string[]): string[] {
  return [...(target.startsWith("/") ? [] : before), ...target.split("/").filter((p) => p !== "" && p !== "."), ...after];
}

/** True when `name` in `dir` is an overlayfs whiteout. */
function isWhiteoutAt(dir: number, name: string): boolean {
  const st = lstatAt(dir, name);
  return st !== undefined && isOverlayWhiteout(st);
}

/** Where metadata goes: an open regular file, or a name in a directory (a symlink there is not followed). */
interface MetadataTarget {
  chown(uid: number, gid: number): void;
  chmod(mode: number): void;
  setXattr(key: string, value: Uint8Array): void;
  setTimes(mtimeNs: bigint): void;
}

function fdTarget(fd: number): MetadataTarget {
  return {
    // The entry's error names it: these say what failed.
    chown: (uid, gid) => chownFd(fd, uid, gid, () => "chown"),
    chmod: (mode) => chmodFd(fd, mode, () => "chmod"),
    setXattr: (key, value) => setXattr(fd, key, value),
    setTimes: (ns) => setTimes(fd, ns, ns),
  };
}

function nameTarget(dir: number, name: string, path: string): MetadataTarget {
  const what = () => `set metadata of ${path}`;
  return {
    chown: (uid, gid) => chownAt(dir, name, uid, gid, what),
    chmod: (mode) => chmodAt(dir, name, mode, what),
    setXattr: (key, value) => setXattrAt(dir, name, key, value),
    setTimes: (ns) => setTimesAt(dir, name, ns, ns, what),
  };
}
