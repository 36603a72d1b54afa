/**
 * Opening a SQLite database the way every stor store needs it: WAL, a busy timeout so parallel
 * processes wait instead of failing, synchronous=FULL so a returned command is durable, foreign
 * keys, and schema migrations keyed by `PRAGMA user_version`. Read-only commands open without
 * creating or changing anything, on a read-only filesystem too. So that stor works on a disk out
 * of space or of inodes, a command that writes keeps the store's reserve (src/spaceReserve.ts) and
 * leaves its -wal and -shm ({@link keepIndexFiles}); no database is made on a filesystem where a
 * full disk would crash SQLite ({@link smallBlocks}).
 */
import { constants as SQLITE, Database } from "bun:sqlite";
import { notWritable, pathExists, statPath } from "./sys/pathCalls.ts";
import { dirname } from "./path.ts";
import { PreconditionError, StorError, exitCodeOf } from "./errors.ts";
import { trace } from "./trace.ts";
import { keepReserve, takeBackReserve, withRoom } from "./spaceReserve.ts";
import { filesystemBlockSize } from "./sys/file.ts";

const BUSY_TIMEOUT_MS = 60_000;

/** A WAL longer than this is checkpointed into the database when a command releases its connection. */
const WAL_LIMIT_BYTES = 256 * 1024;

/** How long a releasing command waits for others before leaving a long WAL to the next one. */
const CHECKPOINT_WAIT_MS = 100;

/** What a command does with the store: `read` creates and changes nothing, `write` makes what it needs. */
export type Access = "read" | "write";

/**
 * Opens the database at `path`. To write: created if needed, pending migrations applied. To read:
 * see {@link openForReading}. When the disk is too full for SQLite to open it, the store's reserve
 * is given up and the open tried again (see src/spaceReserve.ts).
 */
export function openDatabase(path: string, migrations: readonly string[], access: Access = "write"): Database {
  // The first connection makes SQLite's index (-shm) and its WAL, when a command before left none:
  // on a full disk that fails, and would fail every command, a read's too, and restore.
  const db = withRoom(path, sqliteFull, () => (access === "read" ? openForReading : openForWriting)(path, migrations));
  if (access === "write") keepReserve(path);
  return db;
}

/** Opens the database at `path` to write: see {@link openDatabase}. */
function openForWriting(path: string, migrations: readonly string[]): Database {
  // SQLite would open a database it cannot write read-only, now that its WAL is there to be read.
  const readOnly = whyNotWritable(dirname(path));
  if (readOnly) throw new StorError(`open ${path}`, `cannot write here${readOnly}`);
  if ((statPath(path)?.size ?? 0) === 0) {
    // A database about to be made (an empty file is one too): see smallBlocks.
    const why = smallBlocks(dirname(path));
    if (why) throw new PreconditionError(`open ${path}`, why);
  }
  let db: Database;
  try {
    db = new Database(path, { create: true, strict: true });
    keepIndexFiles(db);
  } catch (err) {
    throw new StorError(`open ${path}`, `${(err as Error).message}${whyNotWritable(dirname(path))}`);
  }
  trace("sqlite open");
  try {
    // One statement list and one query, not six statements: each costs a command a prepare.
    db.run(`PRAGMA busy_timeout = ${BUSY_TIMEOUT_MS}; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; ${KEPT_WAL_EMPTIED}`);
    // Processes opening a database nobody has made yet race to make it WAL and to migrate it, and
    // SQLite answers some of them busy at once, without waiting (where waiting could deadlock): they
    // try again, as long as the busy timeout.
    const deadline = Date.now() + BUSY_TIMEOUT_MS;
    for (let pause = 1; ; pause = Math.min(pause * 2, 50)) {
      try {
        setUp(db, path, migrations);
        break;
      } catch (err) {
        if ((err as { code?: unknown }).code !== "SQLITE_BUSY" || Date.now() > deadline) throw err;
        Atomics.wait(PAUSE, 0, 0, pause);
      }
    }
  } catch (err) {
    db.close();
    if (err instanceof StorError) throw err;
    throw new StorError(`open ${path}`, `${(err as Error).message}${whyNotWritable(dirname(path))}`, exitCodeOf(err), { cause: err });
  }
  trace("pragmas, schema");
  return db;
}

/**
 * Why no database should be made on the filesystem holding `dir`, or undefined. SQLite's
 * shared-memory index (-shm) grows by a byte at the end of each 4 KiB, as if blocks were 4 KiB: on
 * a filesystem of smaller blocks that leaves holes, and once the disk is full, SQLite's first store
 * into one kills the process with SIGBUS, a read's as well as a write's.
 */
export function smallBlocks(dir: string): string | undefined {
  const size = filesystemBlockSize(dir);
  if (size >= SHM_BLOCK_BYTES) return undefined;
  return `its filesystem's blocks are ${size} bytes: stor's metadata (SQLite) needs blocks of ${SHM_BLOCK_BYTES} or more, or a full disk crashes it (mkfs.ext4 -b ${SHM_BLOCK_BYTES})`;
}

/** The block size SQLite's -shm file assumes. */
const SHM_BLOCK_BYTES = 4096;

/**
 * Makes `db`'s close leave its -wal and -shm (SQLITE_FCNTL_PERSIST_WAL), which a last connection's
 * close would otherwise delete: every later command, a read too, would have to make them again
 * before it reads, and on a disk out of blocks or of inodes it could not. Its connection runs
 * {@link KEPT_WAL_EMPTIED} too.
 */
function keepIndexFiles(db: Database): void {
  db.fileControl(SQLITE.SQLITE_FCNTL_PERSIST_WAL, 1);
}

/**
 * A WAL kept (see keepIndexFiles) is emptied, not left full of frames, when the last connection
 * closes: what the database file holds is then all there is, as when the WAL was deleted (a backup
 * copied over it is not overlaid by stale frames, nor damage to it hidden).
 */
const KEPT_WAL_EMPTIED = "PRAGMA journal_size_limit = 0";

/** What a pause between tries waits on: nothing ever wakes it. */
const PAUSE = new Int32Array(new SharedArrayBuffer(4));

/** Makes `db` (at `path`) WAL and brings its schema to `migrations`' version. */
function setUp(db: Database, path: string, migrations: readonly string[]): void {
  const state = db
    .query<{ journal_mode: string; user_version: number }, []>("SELECT journal_mode, user_version FROM pragma_journal_mode, pragma_user_version")
    .get()!;
  if (state.journal_mode !== "wal") db.run("PRAGMA journal_mode = WAL");
  if (state.user_version < migrations.length) {
    inTransaction(db, "write", () => {
      // Checked again under the write lock: another process may have migrated meanwhile.
      const version = db.query<{ user_version: number }, []>("PRAGMA user_version").get()!.user_version;
      for (let v = version; v < migrations.length; v++) db.run(migrations[v]!);
      db.run(`PRAGMA user_version = ${migrations.length}`);
    });
  } else if (state.user_version > migrations.length) {
    throw new StorError(`open ${path}`, `schema version ${state.user_version} is newer than this stor knows (${migrations.length})`);
  }
}

/** What a database never made reads as: an in-memory one with the schema, and nothing in it. */
function neverMade(migrations: readonly string[]): Database {
  const db = new Database(":memory:", { strict: true });
  for (const m of migrations) db.run(m);
  return db;
}

/**
 * Opens `path` for queries only, leaving no file behind. A database never made reads as empty (an
 * in-memory one with the schema). A read-only connection would leave SQLite's -wal and -shm
 * behind, so where the files can be written the connection is read-write with `query_only`: when
 * it made them (no writer left a WAL), {@link releaseDatabase} closes it, which removes them;
 * a writer's it leaves (see keepIndexFiles). On a
 * read-only filesystem a WAL database needs its -shm file to be read with locking; without one,
 * nothing can be writing it, and it is opened immutable (a -wal left by a crash then goes unread).
 */
function openForReading(path: string, migrations: readonly string[]): Database {
  let db: Database;
  // Opened read-write, it is made query-only along with the busy timeout: one statement list, not two.
  let queryOnly = false;
  let kept = false;
  try {
    if (!pathExists(path)) return neverMade(migrations);
    if (whyNotWritable(dirname(path)) === "" && whyNotWritable(path) === "") {
      db = new Database(path, { readwrite: true, create: false, strict: true });
      queryOnly = true;
      readingModes.set(db, "queryOnly");
      kept = pathExists(`${path}-wal`); // a writer's: see keepIndexFiles
      if (kept) keepIndexFiles(db);
    } else if (pathExists(`${path}-shm`)) {
      db = new Database(path, { readonly: true, strict: true });
      readingModes.set(db, "readOnly");
    } else {
      db = new Database(`file:${path.replace(/[%?#]/g, encodeURIComponent)}?immutable=1`, SQLITE.SQLITE_OPEN_READONLY | SQLITE.SQLITE_OPEN_URI);
      readingModes.set(db, "readOnly");
    }
  } catch (err) {
    throw new StorError(`open ${path}`, (err as Error).message, exitCodeOf(err), { cause: err });
  }
  trace("sqlite open");
  try {
    db.run(`PRAGMA busy_timeout = ${BUSY_TIMEOUT_MS}${queryOnly ? "; PRAGMA query_only = 1" : ""}${kept ? `; ${KEPT_WAL_EMPTIED}` : ""}`);
    let version = db.query<{ user_version: number }, []>("PRAGMA user_version").get()!.user_version;
    if (version !== migrations.length) {
      // Looked at again, the version and the schema in one read: a writer may have just made the
      // file, and set it up since (or have been killed before it did).
      const state = db.query<{ user_version: number; made: number }, []>("SELECT user_version, EXISTS (SELECT 1 FROM sqlite_master) AS made FROM pragma_user_version").get()!;
      version = state.user_version;
      if (version === 0 && !state.made) {
        db.close();
        return neverMade(migrations);
      }
    }
    if (version !== migrations.length) {
      const why = version > migrations.length ? "newer than this stor knows" : "older than this stor's; a command that writes updates it";
      throw new StorError(`open ${path}`, `schema version ${version} is ${why} (${migrations.length})`);
    }
  } catch (err) {
    db.close();
    if (err instanceof StorError) throw err;
    throw new StorError(`open ${path}`, (err as Error).message, exitCodeOf(err), { cause: err });
  }
  trace("pragmas, schema");
  return db;
}

/**
 * Runs `fn` in a transaction on `db` and returns what it returns; if it throws, the transaction is
 * rolled back. To `write`, BEGIN IMMEDIATE: one writer at a time, and no read lock to upgrade
 * later. To `read`, BEGIN DEFERRED: one consistent view. Inside another transaction, a savepoint.
 * What bun:sqlite's `transaction()` does, without its JavaScript wrapper, which a command paid
 * about 0.2 ms to compile.
 */
export function inTransaction<T>(db: Database, access: Access, fn: () => T): T {
  const nested = db.inTransaction;
  db.run(nested ? "SAVEPOINT stor" : access === "write" ? "BEGIN IMMEDIATE" : "BEGIN DEFERRED");
  try {
    const result = fn();
    db.run(nested ? "RELEASE stor" : "COMMIT");
    return result;
  } catch (err) {
    // A failed statement may have ended the whole transaction already (SQLITE_FULL, IOERR…):
    // then there is nothing to undo, and trying would hide the error behind "no such savepoint".
    if (db.inTransaction) {
      if (nested) {
        db.run("ROLLBACK TO stor");
        db.run("RELEASE stor");
      } else db.run("ROLLBACK");
    }
    throw err;
  }
}

/**
 * Runs `fn` in a write transaction, as {@link inTransaction}, for a change that frees space (a
 * removal) or lets it be freed (a reference released). When SQLite finds the disk too full to
 * write it, the reserve beside the database at `path` is given up (see src/spaceReserve.ts) and
 * `fn` runs again, so it must be one that can: its first run was rolled back. A reserve this
 * process gave up before is made again first, if there is room now: a long-running `stor serve`
 * opens its stores once.
 */
export function inFreeingTransaction<T>(db: Database, path: string, fn: () => T): T {
  takeBackReserve(path);
  return withRoom(path, sqliteFull, () => inTransaction(db, "write", fn));
}

/**
 * Whether `err` is SQLite finding no room: to write its WAL or its database, to grow its -shm, or
 * to reset it (the first connection truncates it, which on btrfs takes metadata). The last also
 * stands for a -shm that cannot be opened at all: giving up the reserve then changes nothing.
 */
const sqliteFull = (err: unknown) => causedBy(err, "SQLITE_FULL", "SQLITE_IOERR_SHMSIZE", "SQLITE_IOERR_SHMOPEN");

/** Whether SQLite's result `code` (`SQLITE_FULL`…) is behind `err`: it, or what caused it. */
export function causedBy(err: unknown, ...codes: string[]): boolean {
  for (let e = err as { code?: unknown; cause?: unknown } | undefined; e; e = e.cause as typeof e) {
    if (typeof e.code === "string" && codes.includes(e.code)) return true;
  }
  return false;
}

/**
 * `store`, whose methods run statements on the database at `path`, with SQLite's own errors from
 * them naming that database: "database or disk is full" says neither which file nor what it is.
 * A store runs statements with and without a transaction around them, so the naming is where
 * every call of a store passes, not in {@link inTransaction}. A store's constructor returns it.
 */
export function namingErrors<T extends object>(store: T, path: string): T {
  return new Proxy(store, {
    get(target, key) {
      const value: unknown = Reflect.get(target, key);
      if (typeof value !== "function") return value;
      return (...args: unknown[]) => {
        try {
          return value.apply(target, args);
        } catch (err) {
          const code = (err as { code?: unknown } | null)?.code;
          if (err instanceof StorError || typeof code !== "string" || !code.startsWith("SQLITE_")) throw err;
          throw new StorError(`metadata ${path}`, (err as Error).message, exitCodeOf(err), { cause: err });
        }
      };
    },
  });
}

/** How {@link openForReading} opened a connection: read-write with `query_only`, or read-only. */
const readingModes = new WeakMap<Database, "queryOnly" | "readOnly">();

/**
 * Runs `fn` holding `db`'s write lock without writing, on a connection opened to read or to
 * write: a writer that checks something under the lock (rm, what is mounted) then sees what `fn`
 * did, or did its own work first. A connection opened to read is query-only, which refuses the
 * lock, so that is lifted meanwhile. A read-only one has no writer to wait for (its filesystem
 * cannot be written): a read transaction does there.
 */
export function underWriteLock<T>(db: Database, fn: () => T): T {
  const mode = readingModes.get(db);
  if (mode === "readOnly") return inTransaction(db, "read", fn);
  const lift = mode === "queryOnly";
  if (lift) db.run("PRAGMA query_only = 0");
  try {
    return inTransaction(db, "write", fn);
  } finally {
    if (lift) db.run("PRAGMA query_only = 1");
  }
}

/** ` (read-only file system)` and the like when `dir` cannot be written, else "". */
function whyNotWritable(dir: string): string {
  const code = notWritable(dir);
  return code === "EROFS" ? " (read-only file system)" : code === "EACCES" ? " (permission denied)" : "";
}

/** Connections left open for the process's end (see {@link releaseDatabase}), held so no finalizer closes them. */
const released: Database[] = [];

/**
 * Ends a command's use of `db`, the database at `path`. While SQLite's WAL holds transactions, the
 * connection is left open for the process to end without closing it ({@link databasesReleased}
 * tells stor's main to): closing the last connection would copy them into the database file and
 * delete the WAL (two fsyncs), and the next command would make the WAL again (its header and its
 * directory entry synced: two more). A commit is durable in the WAL already (synchronous=FULL), and
 * the next connection reads the WAL, as after any process that ended without closing. A WAL past
 * {@link WAL_LIMIT_BYTES} is checkpointed and truncated first, so no command reads a long one. A
 * connection with an empty WAL (a read, or a command that changed nothing) is closed, which leaves
 * the WAL and its index a writer made (see keepIndexFiles), and deletes those a read made.
 */
export function releaseDatabase(db: Database, path: string): void {
  let wal = statPath(`${path}-wal`)?.size ?? 0;
  if (wal > WAL_LIMIT_BYTES) {
    try {
      db.run(`PRAGMA busy_timeout = ${CHECKPOINT_WAIT_MS}`);
      if (db.query<{ busy: number }, []>("PRAGMA wal_checkpoint(TRUNCATE)").get()?.busy === 0) wal = 0;
    } catch {
      // Read-only, or busy past the wait: the next writer checkpoints.
    }
  }
  if (wal === 0) db.close();
  else released.push(db);
}

/** Whether this process released a connection it must not close: it ends with `exitNow` (src/sys/libc.ts). */
export function databasesReleased(): boolean {
  return released.length > 0;
}
