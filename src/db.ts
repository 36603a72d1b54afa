/**
 * Opening a SQLite database the way every stor store needs it: WAL, a busy timeout so parallel
 * processes wait instead of failing, synchronous=FULL so a returned command is durable, foreign
 * keys, and schema migrations keyed by `PRAGMA user_version`.
 */
import { Database } from "bun:sqlite";
import { accessSync, constants } from "node:fs";
import { dirname } from "node:path";
import { StorError } from "./errors.ts";

const BUSY_TIMEOUT_MS = 60_000;

/** Opens (creating if needed) the database at `path` and applies any pending migrations. */
export function openDatabase(path: string, migrations: readonly string[]): Database {
  let db: Database;
  try {
    db = new Database(path, { create: true, strict: true });
  } catch (err) {
    throw new StorError(`open ${path}`, `${(err as Error).message}${whyNotWritable(dirname(path))}`);
  }
  try {
    db.run(`PRAGMA busy_timeout = ${BUSY_TIMEOUT_MS}`);
    if (db.query<{ journal_mode: string }, []>("PRAGMA journal_mode").get()?.journal_mode !== "wal") {
      db.run("PRAGMA journal_mode = WAL");
    }
    db.run("PRAGMA synchronous = FULL");
    db.run("PRAGMA foreign_keys = ON");
    const version = () => db.query<{ user_version: number }, []>("PRAGMA user_version").get()!.user_version;
    if (version() < migrations.length) {
      db.transaction(() => {
        // Checked again under the write lock: another process may have migrated meanwhile.
        for (let v = version(); v < migrations.length; v++) db.run(migrations[v]!);
        db.run(`PRAGMA user_version = ${migrations.length}`);
      }).immediate();
    } else if (version() > migrations.length) {
      throw new StorError(`open ${path}`, `schema version ${version()} is newer than this stor knows (${migrations.length})`);
    }
  } catch (err) {
    db.close();
    if (err instanceof StorError) throw err;
    throw new StorError(`open ${path}`, `${(err as Error).message}${whyNotWritable(dirname(path))}`);
  }
  return db;
}

/** ` (read-only file system)` and the like when `dir` cannot be written, else "". */
function whyNotWritable(dir: string): string {
  try {
    accessSync(dir, constants.W_OK);
    return "";
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return code === "EROFS" ? " (read-only file system)" : code === "EACCES" ? " (permission denied)" : "";
  }
}
