/**
 * The snapshot service: containerd's snapshot semantics over one snapshotter and its metadata
 * store. It owns the directory life cycle, so every snapshotter gets the same crash safety:
 *
 * - a new snapshot is built in a locked temporary `new-*` directory, renamed to its id inside
 *   the write transaction that records it; a crash before the commit leaves a directory no
 *   snapshot owns, which {@link SnapshotService.cleanup} removes;
 * - a removed snapshot loses its metadata first and its directory after, with the same result.
 */
import { readdirSync } from "../nodeFs.ts";
import { dirname, join } from "../path.ts";
import type { Access } from "../db.ts";
import { AlreadyExistsError, ExitCode, InvalidArgumentError, NotFoundError, PreconditionError, StorError, describe } from "../errors.ts";
import { diskUsage, type Usage } from "../fs/diskUsage.ts";
import { failpoint } from "../failpoint.ts";
import { utf8ByteLength } from "../fileName.ts";
import { log } from "../log.ts";
import { APPLY_TRASH_PREFIX, applyTrashPath, rootError, snapshotDb, snapshotDirs, snapshotterDir } from "../layout.ts";
import { fsyncDir, lockPath, makeLockedTempDir, type FileLock } from "../sys/file.ts";
import { errnoCode } from "../sys/libc.ts";
import type { Mount } from "../sys/mount.ts";
import { makeDirs, pathExists, renameAway, renamePath } from "../sys/pathCalls.ts";
import { nowNs, rfc3339Nano } from "../timefmt.ts";
import { isContainerdKey } from "./containerdKeys.ts";
import { MetaStore, type SnapshotRecord } from "./metaStore.ts";
import { mountTables, treeRemoval } from "../lazy.ts";
import type { DiffStyle, Kind, Snapshotter, SnapshotDirs } from "./snapshotter.ts";

/** What `stat` tells of a snapshot, as containerd's snapshots.Info. */
export interface Info {
  name: string;
  parent?: string;
  kind: Kind;
  labels: Record<string, string>;
  created: string;
  updated: string;
}

/** An {@link Info} without labels and times: what a listing that shows none needs. */
export type Summary = Pick<Info, "name" | "parent" | "kind">;

/** The parent's key of each of `all`, a whole listing (every parent is in it). */
function parentKeys(all: readonly SnapshotRecord[]): (s: SnapshotRecord) => string | undefined {
  const keyOf = new Map<number, string>();
  for (const s of all) keyOf.set(s.id, s.key);
  return (s) => (s.parentId === null ? undefined : keyOf.get(s.parentId));
}

/** The Info of record `s`, whose parent is keyed `parent` and whose labels are `labels`. */
function info(s: SnapshotRecord, parent: string | undefined, labels: Record<string, string>): Info {
  return { name: s.key, parent, kind: s.kind, labels, created: s.created, updated: s.updated };
}

export type { Usage };

const MAX_KEY_BYTES = 4096;
const MAX_LABEL_BYTES = 4096;

/** Checks a snapshot key or name: non-empty, at most 4096 bytes, no NUL. */
export function validateKey(key: string, what = "key"): void {
  if (key === "") throw new InvalidArgumentError(`snapshot ${what}`, "must not be empty");
  if (key.includes("\0")) throw new InvalidArgumentError(`snapshot ${what}`, "must not contain NUL");
  if (utf8ByteLength(key) > MAX_KEY_BYTES) throw new InvalidArgumentError(`snapshot ${what}`, `longer than ${MAX_KEY_BYTES} bytes`);
}

function validateLabels(labels: Record<string, string>): void {
  for (const [k, v] of Object.entries(labels)) {
    if (k === "") throw new InvalidArgumentError("label", "name must not be empty");
    if (utf8ByteLength(k) + utf8ByteLength(v) > MAX_LABEL_BYTES) {
      throw new InvalidArgumentError(`label "${k}"`, `longer than ${MAX_LABEL_BYTES} bytes`);
    }
  }
}

const snap = (key: string) => `snapshot "${key}"`;

// What is mounted and removing a tree are for writes (rm, cleanup, a failed prepare): a command
// that only reads never loads their code, one that writes loads it ahead (see loadForWriting).

/**
 * Loads ahead, with `import()`, the code that writes with `snapshotter` may need and reads never
 * do: see src/lazy.ts. {@link ../services.ts} does, when it opens the service to write.
 */
export async function loadForWriting(snapshotter: Snapshotter): Promise<void> {
  await Promise.all([mountTables.load(), treeRemoval.load(), snapshotter.load?.()]);
}

/** Undoes a killed apply from the trash it left (see src/layer/undoJournal.ts): loaded only then. */
const recoverApply = (trash: string) => (require("../layer/undoJournal.ts") as typeof import("../layer/undoJournal.ts")).recoverApply(trash);

/**
 * Undoes the killed apply whose trash is at `trash`, if one is there and nobody holds it (a live
 * apply, or another undoing it), holding it meanwhile. True when there was one.
 */
function recoverUnheld(trash: string): boolean {
  let lock;
  try {
    lock = lockPath(trash, { wait: false });
  } catch (err) {
    if (errnoCode(err) === "ENOENT") return false;
    throw err;
  }
  if (!lock) return false;
  try {
    if (!pathExists(trash)) return false; // undone by another just before
    recoverApply(trash);
    return true;
  } finally {
    lock.release();
  }
}

/** A snapshot as `stor df` reports it (see {@link SnapshotService.diskUsage}). */
export interface SnapshotDiskUsage {
  info: Info;
  /** Bytes; undefined where they could not be had. */
  size: number | undefined;
  /** Active or a view, or an ancestor of one: not reclaimable. */
  inUse: boolean;
}

/** Snapshots of one snapshotter below `<root>/snapshots/<name>`. */
export class SnapshotService {
  readonly snapshotter: Snapshotter;
  /** `<root>/snapshots/<name>`. */
  readonly home: string;
  /** Where snapshot directories live, named by id. */
  readonly dirs: string;
  readonly #root: string;
  readonly #store: MetaStore;
  /** Where to check the snapshotter's support before the first snapshot is made; undefined once checked, or when not wanted. */
  #probe: string | undefined;
  readonly #forContainerd: boolean;

  /**
   * Opened through {@link ../services.ts}; to `read`, nothing is created, not even the database.
   * With `probe`, a prepare or view first checks that the snapshotter can run there: the other
   * commands work on snapshots that exist, so they pay nothing for the check. `forContainerd`:
   * the caller is containerd (through stor serve), the one maker of keys of its shape.
   */
  constructor(root: string, snapshotter: Snapshotter, access: Access, opts: { probe?: string; forContainerd?: boolean } = {}) {
    const { probe } = opts;
    this.#root = root;
    this.snapshotter = snapshotter;
    this.#probe = probe;
    this.#forContainerd = opts.forContainerd ?? false;
    this.home = snapshotterDir(root, snapshotter.name);
    this.dirs = snapshotDirs(root, snapshotter.name);
    // A snapshotter never used here is checked before its metadata is made: an unusable one leaves nothing.
    if (probe !== undefined && !pathExists(snapshotDb(root, snapshotter.name))) this.#checkSupport();
    if (access === "write") {
      try {
        makeDirs(root, 0o711);
        makeDirs(this.dirs, 0o700);
      } catch (err) {
        throw rootError(root, err);
      }
    }
    this.#store = new MetaStore(snapshotDb(root, snapshotter.name), access);
  }

  /** Throws when the snapshotter cannot run where {@link SnapshotService.#probe} says; checks once. */
  #checkSupport(): void {
    if (this.#probe === undefined) return;
    const why = this.snapshotter.unsupported(this.home, this.#probe);
    if (why) throw new PreconditionError(`snapshotter ${this.snapshotter.name}`, why);
    this.#probe = undefined;
  }

  /** Creates an active snapshot `key` on committed `parent` (or on nothing). Returns its mounts. */
  prepare(key: string, parent?: string, labels: Record<string, string> = {}): Mount[] {
    return this.#create("active", key, parent, labels);
  }

  /** Creates a read-only view `key` of committed `parent` (or of nothing). Returns its mounts. */
  view(key: string, parent?: string, labels: Record<string, string> = {}): Mount[] {
    return this.#create("view", key, parent, labels);
  }

  #create(kind: Kind, key: string, parent: string | undefined, labels: Record<string, string>): Mount[] {
    validateKey(key);
    this.#mayMake(key);
    if (parent !== undefined) validateKey(parent, "parent");
    validateLabels(labels);
    this.#checkSupport();
    // Checked before any copying (the transaction that records the snapshot checks again), and
    // the directory made and locked under the write lock, so cleanup never sees it unlocked.
    const [parentId, parents, temp, lock] = this.#store.write(() => {
      const id = this.#checkCreate(key, parent);
      const chain = id === null ? [] : this.#chainDirs(id);
      const { path, lock } = makeLockedTempDir(join(this.dirs, "new-"));
      return [id, chain, path, lock] as const;
    });
    try {
      failpoint("prepare:made");
      this.snapshotter.populate({ kind, dir: temp, parents });
      failpoint("prepare:populated");
      return this.#store.write(() => {
        const pid = this.#checkCreate(key, parent);
        if (pid !== parentId) throw new PreconditionError(`parent ${snap(parent!)}`, "changed while preparing");
        const time = rfc3339Nano(nowNs());
        const id = this.#store.insert({ key, kind, parentId, created: time, updated: time });
        this.#store.setLabels(id, labels);
        const dir = this.#dir(id);
        // An id whose transaction never committed can be handed out again; its directory is garbage.
        if (pathExists(dir)) this.#removeDir(dir);
        renamePath(temp, dir);
        try {
          fsyncDir(this.dirs);
          failpoint("prepare:renamed");
          return this.snapshotter.mounts({ kind, dir, parents });
        } catch (err) {
          // Thrown inside the transaction, which rolls back: the directory goes with it. (A failed
          // COMMIT leaves it to cleanup: whether SQLite kept the row is not known here.)
          this.#removeDir(dir);
          throw err;
        }
      });
    } catch (err) {
      this.#removeDir(temp);
      // Errors of the user's making stand as they are; failures of the machine get the context.
      if (err instanceof StorError && err.code !== ExitCode.internal) throw err;
      // A parent removed while its tree was copied fails the copy: that it is gone is what to say.
      if (parent !== undefined && this.#store.read(() => this.#checkCreate(key, parent)) !== parentId) {
        throw new PreconditionError(`parent ${snap(parent)}`, "changed while preparing");
      }
      throw new StorError(`${kind === "view" ? "view" : "prepare"} ${snap(key)}`, describe(err), ExitCode.internal, { cause: err });
    } finally {
      lock.release();
    }
  }

  /**
   * Refuses a snapshot named `key` of containerd's shape to any maker but containerd: stor serve
   * shows containerd those as its own, and its garbage collector removes every one it did not make.
   */
  #mayMake(key: string): void {
    if (!this.#forContainerd && isContainerdKey(key)) {
      throw new InvalidArgumentError(snap(key), "has the shape of containerd's keys (NAMESPACE/NUMBER/NAME), which only containerd may make: its garbage collector, through stor serve, removes those it did not");
    }
  }

  /** Returns the parent's id (or null); throws if `key` exists or the parent is unusable. */
  #checkCreate(key: string, parent: string | undefined): number | null {
    if (this.#store.byKey(key)) throw new AlreadyExistsError(snap(key));
    if (parent === undefined) return null;
    const p = this.#store.byKey(parent);
    if (!p) throw new NotFoundError(`parent ${snap(parent)}`);
    if (p.kind !== "committed") throw new PreconditionError(`parent ${snap(parent)}`, `is ${p.kind}, not committed`);
    return p.id;
  }

  /** The directories of snapshot `id` and its ancestors, nearest first. */
  #chainDirs(id: number): string[] {
    return this.#dirsFrom(this.#store.lineage("id", id), 0);
  }

  /**
   * The directories of `records` from index `start` on. A loop: Array.prototype.map is compiled
   * from its source on its first call in a process, which a prepare paid for on this path.
   */
  #dirsFrom(records: readonly SnapshotRecord[], start: number): string[] {
    const dirs: string[] = [];
    for (let i = start; i < records.length; i++) dirs.push(this.#dir(records[i]!.id));
    return dirs;
  }

  #dir(id: number): string {
    return join(this.dirs, String(id));
  }

  #get(key: string): SnapshotRecord {
    const s = this.#store.byKey(key);
    if (!s) throw new NotFoundError(snap(key));
    return s;
  }

  /** The kind and directories of `key` and of its ancestors, from one statement. */
  #dirsOf(key: string): SnapshotDirs {
    const chain = this.#store.lineage("key", key);
    const s = chain[0];
    if (!s) throw new NotFoundError(snap(key));
    return { kind: s.kind, dir: this.#dir(s.id), parents: this.#dirsFrom(chain, 1) };
  }

  /** The mounts of active or view snapshot `key`. */
  mounts(key: string): Mount[] {
    validateKey(key);
    return this.#mountsOf(key);
  }

  /**
   * Whether the next use of active snapshot `key` first undoes an interrupted apply, work that
   * grows with the layer (serve runs such a call on a thread); false for a key that is not there.
   */
  hasInterruptedApply(key: string): boolean {
    validateKey(key);
    const s = this.#store.byKey(key);
    return s?.kind === "active" && pathExists(this.#applyTrashOf(this.#dir(s.id)));
  }

  /**
   * Mounts `key` on `target` (see mountAll), holding the store's write lock: rm checks what is
   * mounted under the same lock, so it either sees this mount or has removed `key` before this
   * looks it up. Opened to read, the store is only locked: nothing is written or made.
   */
  async mount(key: string, target: string): Promise<void> {
    validateKey(key);
    // Loaded here: only this command mounts (with import(), see src/lazy.ts).
    const { mountAll } = await import("../mounting.ts");
    this.#store.locked(() => mountAll(this.#mountsOf(key), target, snap(key), this.#root));
  }

  /**
   * Undoes what a killed apply did to the active snapshot in `dir`, before anything reads or writes
   * its tree: mounted, its half-applied tree would be written on, and the later undo would take
   * those writes away; measured, committed, diffed, it would be recorded or exported half applied.
   */
  #undoKilledApply(dir: string): void {
    const trash = this.#applyTrashOf(dir);
    if (pathExists(trash) && recoverUnheld(trash)) log.warn(`${trash}: undid the changes of an interrupted apply first`);
  }

  /** Where an apply into the snapshot in `dir` keeps what it replaced: there, it was killed. */
  #applyTrashOf(dir: string): string {
    return applyTrashPath(this.snapshotter.upperDir(dir));
  }

  #mountsOf(key: string): Mount[] {
    const d = this.#dirsOf(key);
    if (d.kind === "committed") throw new PreconditionError(snap(key), "is committed, not active or view");
    if (d.kind === "active") this.#undoKilledApply(d.dir);
    return this.snapshotter.mounts(d);
  }

  /**
   * Where the layer tools read and write `key`: the snapshotter's diff style, the kind, the
   * snapshot's upper directory and its ancestors' upper directories, nearest first.
   */
  layerView(key: string): { diffStyle: DiffStyle; kind: Kind; upper: string; parents: string[] } {
    validateKey(key);
    const d = this.#dirsOf(key);
    if (d.kind === "active") this.#undoKilledApply(d.dir);
    const up = this.snapshotter.upperDir;
    return { diffStyle: this.snapshotter.diffStyle, kind: d.kind, upper: up(d.dir), parents: d.parents.map(up) };
  }

  /**
   * Runs `read` (diff, changes) on the {@link layerView} of `key`. It reads the tree outside any
   * lock, so an rm that gets in takes the tree from under it: the snapshot is then not found, as
   * when the rm came first, not a file gone.
   */
  async readLayer<T>(key: string, read: (view: ReturnType<SnapshotService["layerView"]>) => T | Promise<T>): Promise<T> {
    const view = this.layerView(key);
    const id = this.#store.byKey(key)?.id;
    try {
      return await read(view);
    } catch (err) {
      if (this.#store.byKey(key)?.id !== id) throw new NotFoundError(snap(key));
      throw err;
    }
  }

  /**
   * {@link layerView} of active `key`, held for writing into it outside a mount (a layer's apply)
   * until `release`: commit and rm refuse it meanwhile, and another hold waits. The hold is a
   * flock on the snapshot's directory; it is taken, then `key` looked up again, so a commit or rm
   * that got there first is seen.
   */
  holdForWriting(key: string): { view: ReturnType<SnapshotService["layerView"]>; release(): void } {
    validateKey(key);
    const id = this.#get(key).id;
    const dir = this.#dir(id);
    const hold = lockPath(dir)!; // waits for another hold, a commit or an rm under way
    try {
      const view = this.layerView(key); // a killed apply undone first
      if (view.upper !== this.snapshotter.upperDir(dir)) throw new PreconditionError(snap(key), "changed while being opened");
      if (view.kind !== "active") throw new PreconditionError(snap(key), `is ${view.kind}, not active`);
      return { view, release: () => hold.release() };
    } catch (err) {
      hold.release();
      throw err;
    }
  }

  /** Refuses `key` (in directory `dir`) while a {@link holdForWriting} has it; else holds it until released. */
  #notBeingWritten(key: string, dir: string): FileLock {
    let hold: FileLock | undefined;
    try {
      hold = lockPath(dir, { wait: false });
    } catch (err) {
      if (errnoCode(err) === "ENOENT") return { release() {} }; // gone already (a crash's): nothing writes into it
      throw err;
    }
    if (!hold) throw new PreconditionError(snap(key), "is being applied to (a layer is being written into it)");
    return hold;
  }

  /**
   * The usage of snapshot `id`, keyed `key`, measured now. The walk runs outside the lock: an rm
   * that gets in takes the tree from under it, and the snapshot is then not found, as when the rm
   * came first, not an lstat of a file gone.
   */
  #measure(key: string, id: number): Usage {
    const dir = this.#dir(id);
    this.#undoKilledApply(dir);
    try {
      return this.snapshotter.usage ? this.snapshotter.usage(dir) : diskUsage(this.snapshotter.upperDir(dir));
    } catch (err) {
      if (this.#store.byKey(key)?.id !== id) throw new NotFoundError(snap(key));
      throw err;
    }
  }

  /**
   * Commits active `key` as `name`: `key` is gone, `name` is committed and its usage recorded. A
   * mounted one cannot be: unmount it first, as containerd's clients do.
   */
  commit(name: string, key: string, labels: Record<string, string> = {}): void {
    validateKey(name, "name");
    this.#mayMake(name);
    validateKey(key);
    validateLabels(labels);
    const checkCommit = () => {
      const s = this.#get(key);
      if (s.kind !== "active") throw new PreconditionError(snap(key), `is ${s.kind}, not active`);
      if (this.#store.byKey(name)) throw new AlreadyExistsError(snap(name));
      return s;
    };
    const before = this.#store.read(checkCommit);
    // Measured outside the write lock: it reads the whole upper tree.
    const usage = this.#measure(key, before.id);
    // Held until the transaction has ended: an apply that waited then finds `key` committed.
    let hold: FileLock | undefined;
    try {
      this.#store.write(() => {
        const s = checkCommit();
        if (s.id !== before.id) throw new PreconditionError(snap(key), "changed while committing");
        // A mount could still write into the layer once it is committed, under its children.
        this.#notMounted(key, s.id);
        hold = this.#notBeingWritten(key, this.#dir(s.id));
        this.#undoKilledApply(this.#dir(s.id)); // committed, it could no longer be undone (measured after one undone above)
        this.#store.commit(s.id, name, usage, rfc3339Nano(nowNs()));
        failpoint("commit:updated");
        this.#store.replaceLabels(s.id, labels);
      });
    } finally {
      hold?.release();
    }
    // After the metadata: a crash in between leaves a committed snapshot that is still writable
    // (cleanup seals it), never an active one that is not.
    failpoint("commit:committed");
    this.snapshotter.commit?.(this.#dir(before.id));
  }

  /**
   * Removes `key`. A snapshot with children cannot be removed, nor one whose directory a mount
   * uses (mountinfo says so, whoever mounted it). One containerd made (its key has the shape
   * containerd gives keys) is containerd's: its records still name it, so only `force` removes
   * it — as `stor serve` does on containerd's behalf.
   */
  remove(key: string, force = false): void {
    validateKey(key);
    // The directory's lock, held until it is removed: an apply that waited then finds `key` gone,
    // and a cleanup leaves the directory to this removal (it would take it for a leftover).
    let hold: FileLock | undefined;
    try {
      // Freeing: on a full disk the transaction may run twice (see MetaStore.freeing), so a hold
      // from a first run is let go before it is taken again.
      const id = this.#store.freeing(() => {
        hold?.release();
        hold = undefined;
        const s = this.#get(key);
        if (!force && isContainerdKey(key)) {
          throw new PreconditionError(snap(key), "was made by containerd, which still records it: remove it with ctr (or --force)");
        }
        if (this.#store.hasChildren(s.id)) throw new PreconditionError(snap(key), "has children");
        this.#notMounted(key, s.id);
        hold = this.#notBeingWritten(key, this.#dir(s.id));
        this.#store.delete(s.id);
        return s.id;
      });
      // Metadata first: a crash here leaves a directory that cleanup removes.
      failpoint("remove:deleted");
      const dir = this.#dir(id);
      try {
        this.#removeDir(dir);
      } catch (err) {
        // The snapshot is gone; what of its directory cannot go (an immutable file) is cleanup's,
        // as containerd leaves it with a warning, and the next keys of the command go on.
        let left = dir;
        try {
          left = this.#toTrash(dir, String(id));
        } catch {
          // Left under its id: cleanup finds it as well.
        }
        log.warn(`${snap(key)} is removed, but ${left} is left for cleanup: ${describe(err)}`);
      }
    } finally {
      hold?.release();
    }
  }

  /** Removes snapshot directory `dir` whole, as the snapshotter does it (see Snapshotter.remove). */
  #removeDir(dir: string): void {
    if (this.snapshotter.remove) this.snapshotter.remove(dir);
    else treeRemoval.get().removeTree(dir);
  }

  /** Refuses snapshot `key` (id `id`) while a mount uses its directory, in any mount namespace. */
  #notMounted(key: string, id: number): void {
    const mounted = mountTables.get().whereMounted(this.#dir(id));
    if (mounted.length > 0) throw new PreconditionError(snap(key), `is mounted at ${mounted.join(", ")}`);
  }

  /** Whether snapshot `key` is there. */
  has(key: string): boolean {
    return this.#store.byKey(key) !== undefined;
  }

  /** Information about `key`. */
  stat(key: string): Info {
    validateKey(key);
    const d = this.#store.described(key);
    if (!d) throw new NotFoundError(snap(key));
    return info(d.record, d.parentKey, d.labels);
  }

  /** Every snapshot, ordered by key, in one read: two queries, not two a snapshot. */
  list(): Info[] {
    return this.listAfter("", -1);
  }

  /**
   * Up to `limit` snapshots after key `after` ("" for the first), ordered by key: {@link list} a
   * page at a time, for a walk that must not hold every snapshot at once (serve's List, whose
   * client may read slowly). Each page is consistent; the walk is not a single view.
   */
  listAfter(after: string, limit: number): Info[] {
    return this.#store.page(after, limit).map((d) => info(d.record, d.parentKey, d.labels));
  }

  /**
   * {@link list} without the labels, for what shows none (a table, a tree, a count): one query,
   * consistent on its own, instead of a transaction of two.
   */
  summaries(): Summary[] {
    const all = this.#store.all();
    const parentOf = parentKeys(all);
    return all.map((s) => ({ name: s.key, parent: parentOf(s), kind: s.kind }));
  }

  /**
   * Sets labels of `key` (an empty value removes one) and returns all its labels. With `replace`
   * the labels become exactly `labels`: the others are removed in the same transaction.
   */
  updateLabels(key: string, labels: Record<string, string>, replace = false): Record<string, string> {
    validateKey(key);
    validateLabels(labels);
    return this.#store.write(() => {
      const s = this.#get(key);
      const changes = replace ? { ...Object.fromEntries(Object.keys(this.#store.labels(s.id)).map((k) => [k, ""])), ...labels } : labels;
      if (Object.keys(changes).length > 0) {
        this.#store.setLabels(s.id, changes);
        this.#store.touch(s.id, rfc3339Nano(nowNs()));
      }
      return this.#store.labels(s.id);
    });
  }

  /** Space used by `key` itself: measured now for an active snapshot, recorded at commit otherwise. */
  usage(key: string): Usage {
    validateKey(key);
    const s = this.#get(key); // one statement: no transaction needed
    if (s.kind === "active") return this.#measure(key, s.id);
    return { size: s.size, inodes: s.inodes };
  }

  /**
   * Every snapshot, ordered by key, with what `stor df` reports of it: its size (undefined, with a
   * warning, where it cannot be had: a tree too deep to walk, its directory gone, so that one
   * snapshot fails no other's, as a volume whose size cannot be had fails none), and whether it
   * is in use: active or a view, or an ancestor of one (as an image is while a container runs on
   * it). The rest is reclaimable.
   */
  diskUsage(): SnapshotDiskUsage[] {
    const infos = this.list();
    const byName = new Map(infos.map((i) => [i.name, i]));
    const inUse = new Set<string>();
    for (const i of infos) {
      if (i.kind === "committed") continue;
      for (let s: Info | undefined = i; s && !inUse.has(s.name); s = s.parent === undefined ? undefined : byName.get(s.parent)) inUse.add(s.name);
    }
    return infos.map((info) => ({ info, size: this.#reportedSize(info.name), inUse: inUse.has(info.name) }));
  }

  #reportedSize(key: string): number | undefined {
    try {
      return this.usage(key).size;
    } catch (err) {
      log.warn(`usage of ${snap(key)}: ${describe(err)}`);
      return undefined;
    }
  }

  /**
   * Removes directories that no snapshot owns: leftovers of crashes and removals. A `new-*`
   * directory that another process is still filling (it holds the lock) is left alone. Seals
   * committed snapshots that a crash left unsealed. Returns the names removed.
   */
  cleanup(): string[] {
    if (!pathExists(this.dirs)) return []; // a snapshotter never used here: nothing can be left over
    const recovered: string[] = [];
    const [doomed, all] = this.#store.write(() => {
      // Under the write lock no prepare can be between its rename and its commit.
      const all = this.#store.all();
      const owned = new Set(all.map((s) => String(s.id)));
      const mounts = mountTables.get().readMountTable(); // once, not once a leftover
      // Each leftover's trash, and its name as it was found (what the user could see).
      const out: { trash: string; name: string }[] = [];
      for (const name of readdirSync(this.dirs)) {
        if (owned.has(name)) continue;
        const path = join(this.dirs, name);
        const mounted = mountTables.get().whereMounted(path, mounts);
        if (mounted.length > 0) {
          // Whatever mounted it still uses it: removing it would pull the tree from under the mount.
          log.warn(`cleanup: ${path} is left: mounted at ${mounted.join(", ")}`);
          continue;
        }
        try {
          // A killed apply's trash (native's are here, beside the snapshots): its tree is put back first.
          if (name.startsWith(APPLY_TRASH_PREFIX)) {
            if (recoverUnheld(path)) recovered.push(name);
            continue;
          }
          // One being made (new-*) or removed (an rm's, under its id) is locked by its maker or remover.
          const lock = lockPath(path, { wait: false });
          if (!lock) continue;
          lock.release();
          out.push({ trash: name.startsWith("rm-") ? path : this.#toTrash(path, name), name });
        } catch (err) {
          // A removal that committed before this lock removes its directory after it: gone meanwhile, it is no leftover.
          if (!pathExists(path)) continue;
          // Said and left: one leftover that cannot be moved must not keep the others.
          log.warn(`cleanup: ${path} is left: ${describe(err)}`);
        }
      }
      return [out, all] as const;
    });
    failpoint("cleanup:renamed");
    const removed: string[] = [...recovered];
    for (const { trash, name } of doomed) {
      try {
        this.#removeDir(trash);
        removed.push(name);
      } catch (err) {
        log.warn(`cleanup: ${trash} is left: ${describe(err)}`);
      }
    }
    const left = all.flatMap((s) => this.#applyTrash(s.id));
    // The hook is idempotent: sealed snapshots cost it a look.
    if (this.snapshotter.commit) for (const s of all) if (s.kind === "committed") this.snapshotter.commit(this.#dir(s.id));
    return [...removed, ...left.map((p) => p.slice(this.dirs.length + 1))];
  }

  /**
   * Removes the active snapshots `abandoned` says their maker left (an unpack's, killed before
   * it committed or removed it). One in use (mounted, being written) is left, with a warning.
   * Returns the keys removed.
   */
  removeAbandoned(abandoned: (key: string) => boolean): string[] {
    const removed: string[] = [];
    for (const s of this.#store.read(() => this.#store.all())) {
      if (s.kind !== "active" || !abandoned(s.key)) continue;
      try {
        this.remove(s.key);
        removed.push(s.key);
      } catch (err) {
        if (!(err instanceof NotFoundError)) log.warn(`cleanup: snapshot "${s.key}" is left: ${describe(err)}`);
      }
    }
    return removed;
  }

  /**
   * Renames leftover `name` (in `path`) to its trash `rm-NAME`; to a fresh `rm-NAME-XXXXXX` where a
   * crashed cleanup left a trash of that name: an id whose snapshot never committed is handed
   * out again, and its new leftover gets the old one's name.
   */
  #toTrash(path: string, name: string): string {
    const trash = join(this.dirs, `rm-${name}`);
    try {
      renamePath(path, trash);
      return trash;
    } catch (err) {
      const code = errnoCode(err);
      if (code !== "ENOTEMPTY" && code !== "EEXIST") throw err;
      return renameAway(path, `${trash}-`);
    }
  }

  /**
   * Undoes what a killed apply on snapshot `id` did, from the trash it left (`new-apply-*` beside
   * the upper directory: inside the snapshot's directory, unless that is the snapshot's tree, whose
   * trash is among the snapshots, as native's, and recovered above), and removes the trash. A trash
   * an apply holds is left; one that cannot be undone or go (in a sealed btrfs snapshot) is said.
   * Returns the paths removed.
   */
  #applyTrash(id: number): string[] {
    const beside = dirname(this.snapshotter.upperDir(this.#dir(id)));
    if (beside === this.dirs) return [];
    let names: string[];
    try {
      names = readdirSync(beside).filter((n) => n.startsWith(APPLY_TRASH_PREFIX));
    } catch {
      return []; // a directory a crash left half made: the snapshot's own problem, not a trash
    }
    return names.flatMap((name) => {
      const path = join(beside, name);
      try {
        return recoverUnheld(path) ? [path] : [];
      } catch (err) {
        log.warn(`cleanup: ${path} is left: ${describe(err)}`);
        return [];
      }
    });
  }

  /** `PRAGMA quick_check` of the metadata database: "ok" when sound. */
  checkMetadata(): string {
    return this.#store.check();
  }

  /** Closes the metadata database: for a process that goes on (serve). */
  close(): void {
    this.#store.close();
  }

  /** Ends a command's use of the service: its process ends next (see releaseDatabase in src/db.ts). */
  release(): void {
    this.#store.release();
  }
}
