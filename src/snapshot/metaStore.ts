/**
 * The snapshot metadata store: one SQLite database per snapshotter
 * (`<root>/snapshots/<snapshotter>/metadata.db`). It owns every SQL statement about snapshots;
 * callers group calls in {@link MetaStore.write} or {@link MetaStore.read} transactions.
 */
import { Database } from "bun:sqlite";
import type { Kind } from "./snapshotter.ts";
import { inFreeingTransaction, inTransaction, namingErrors, openDatabase, releaseDatabase, underWriteLock, type Access } from "../db.ts";
import { stringMap } from "../stringMap.ts";

/** A snapshot's row. `id` names its directory and never changes, not even at commit. */
export interface SnapshotRecord {
  id: number;
  key: string;
  kind: Kind;
  parentId: number | null;
  created: string;
  updated: string;
  size: number;
  inodes: number;
}

const MIGRATIONS = [
  `CREATE TABLE snapshots (
     id INTEGER PRIMARY KEY AUTOINCREMENT,
     key TEXT NOT NULL UNIQUE,
     kind TEXT NOT NULL CHECK (kind IN ('active', 'view', 'committed')),
     parent_id INTEGER REFERENCES snapshots(id),
     created TEXT NOT NULL,
     updated TEXT NOT NULL,
     size INTEGER NOT NULL DEFAULT 0,
     inodes INTEGER NOT NULL DEFAULT 0
   );
   CREATE INDEX snapshots_parent ON snapshots(parent_id);
   CREATE TABLE labels (
     snapshot_id INTEGER NOT NULL REFERENCES snapshots(id) ON DELETE CASCADE,
     name TEXT NOT NULL,
     value TEXT NOT NULL,
     PRIMARY KEY (snapshot_id, name)
   );`,
];

/** The columns of a {@link SnapshotRecord}, from table alias `t`. */
const columns = (t = "snapshots") =>
  `${t}.id, ${t}.key, ${t}.kind, ${t}.parent_id AS parentId, ${t}.created, ${t}.updated, ${t}.size, ${t}.inodes`;
const COLUMNS = columns();

/** Snapshot metadata of one snapshotter. */
export class MetaStore {
  readonly #db: Database;
  readonly #path: string;

  constructor(path: string, access: Access) {
    this.#path = path;
    this.#db = openDatabase(path, MIGRATIONS, access);
    return namingErrors(this, path); // what every caller gets: see namingErrors
  }

  /** Runs `fn` in a write transaction (BEGIN IMMEDIATE: one writer at a time, no lock upgrade). */
  write<T>(fn: () => T): T {
    return inTransaction(this.#db, "write", fn);
  }

  /** Runs `fn` holding the write lock without writing, whichever way the store was opened (see underWriteLock). */
  locked<T>(fn: () => T): T {
    return underWriteLock(this.#db, fn);
  }

  /** Runs `fn` in a write transaction that frees space or lets it be freed, on a full disk too (see inFreeingTransaction): `fn` may run twice. */
  freeing<T>(fn: () => T): T {
    return inFreeingTransaction(this.#db, this.#path, fn);
  }

  /** Runs `fn` in a read transaction: one consistent view of the database. */
  read<T>(fn: () => T): T {
    return inTransaction(this.#db, "read", fn);
  }

  byKey(key: string): SnapshotRecord | undefined {
    return this.#db.query<SnapshotRecord, [string]>(`SELECT ${COLUMNS} FROM snapshots WHERE key = ?`).get(key) ?? undefined;
  }

  /** Every snapshot, ordered by key. */
  all(): SnapshotRecord[] {
    return this.#db.query<SnapshotRecord, []>(`SELECT ${COLUMNS} FROM snapshots ORDER BY key`).all();
  }

  /**
   * Snapshot `key` (or, by `id`, the one of that id) and its ancestors, nearest first; empty when
   * there is none. One statement: consistent without a transaction.
   */
  lineage(by: "key" | "id", value: string | number): SnapshotRecord[] {
    return this.#db
      .query<SnapshotRecord, [string | number]>(
        `WITH RECURSIVE chain(id, depth) AS (
           SELECT id, 0 FROM snapshots WHERE ${by} = ?
           UNION ALL
           SELECT s.parent_id, c.depth + 1 FROM snapshots s JOIN chain c ON s.id = c.id WHERE s.parent_id IS NOT NULL
         )
         SELECT ${columns("s")} FROM chain c JOIN snapshots s ON s.id = c.id ORDER BY c.depth`,
      )
      .all(value);
  }

  /**
   * Snapshot `key` with its parent's key and its labels (by name), or undefined. One statement,
   * not a transaction of three. Row 0 is the snapshot (no label), the others its labels.
   */
  described(key: string): { record: SnapshotRecord; parentKey: string | undefined; labels: Record<string, string> } | undefined {
    const rows = this.#db
      .query<SnapshotRecord & { parentKey: string | null; label: string | null; value: string | null }, [string]>(
        `SELECT ${columns("s")}, p.key AS parentKey, NULL AS label, NULL AS value
           FROM snapshots s LEFT JOIN snapshots p ON p.id = s.parent_id WHERE s.key = ?1
         UNION ALL
         SELECT NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, l.name, l.value
           FROM labels l JOIN snapshots s ON s.id = l.snapshot_id WHERE s.key = ?1
         ORDER BY label`,
      )
      .all(key);
    const head = rows[0];
    if (head === undefined || head.label !== null) return undefined;
    const labels = stringMap();
    for (let i = 1; i < rows.length; i++) labels[rows[i]!.label!] = rows[i]!.value!;
    return { record: head, parentKey: head.parentKey ?? undefined, labels };
  }

  /**
   * Up to `limit` snapshots (a negative limit: all) whose keys sort after `after`, in key order,
   * each with its parent's key and its labels, read in one transaction: the whole listing, or one
   * page of a walk that holds no transaction from one page to the next.
   */
  page(after: string, limit: number): { record: SnapshotRecord; parentKey: string | undefined; labels: Record<string, string> }[] {
    return this.read(() => {
      const rows = this.#db
        .query<SnapshotRecord & { parentKey: string | null }, [string, number]>(
          `SELECT ${columns("s")}, p.key AS parentKey FROM snapshots s LEFT JOIN snapshots p ON p.id = s.parent_id WHERE s.key > ? ORDER BY s.key LIMIT ?`,
        )
        .all(after, limit);
      if (rows.length === 0) return [];
      const labels = new Map<number, Record<string, string>>();
      const labelRows = this.#db
        .query<{ id: number; name: string; value: string }, [string, string]>(
          "SELECT l.snapshot_id AS id, l.name, l.value FROM labels l JOIN snapshots s ON s.id = l.snapshot_id WHERE s.key > ? AND s.key <= ? ORDER BY l.snapshot_id, l.name",
        )
        .all(after, rows[rows.length - 1]!.key);
      for (const r of labelRows) {
        let own = labels.get(r.id);
        if (!own) labels.set(r.id, (own = stringMap()));
        own[r.name] = r.value;
      }
      return rows.map((record) => ({ record, parentKey: record.parentKey ?? undefined, labels: labels.get(record.id) ?? stringMap() }));
    });
  }

  hasChildren(id: number): boolean {
    return this.#db.query<{ n: number }, [number]>("SELECT 1 AS n FROM snapshots WHERE parent_id = ? LIMIT 1").get(id) !== null;
  }

  /** Inserts a snapshot and returns its id. */
  insert(s: Omit<SnapshotRecord, "id" | "size" | "inodes">): number {
    const row = this.#db
      .query<{ id: number }, [string, string, number | null, string, string]>(
        "INSERT INTO snapshots (key, kind, parent_id, created, updated) VALUES (?, ?, ?, ?, ?) RETURNING id",
      )
      .get(s.key, s.kind, s.parentId, s.created, s.updated);
    return row!.id;
  }

  /** Turns active snapshot `id` into committed `name`, recording its usage. */
  commit(id: number, name: string, usage: { size: number; inodes: number }, time: string): void {
    this.#db
      .query("UPDATE snapshots SET key = ?, kind = 'committed', size = ?, inodes = ?, created = ?, updated = ? WHERE id = ?")
      .run(name, usage.size, usage.inodes, time, time, id);
  }

  touch(id: number, time: string): void {
    this.#db.query("UPDATE snapshots SET updated = ? WHERE id = ?").run(time, id);
  }

  delete(id: number): void {
    this.#db.query("DELETE FROM snapshots WHERE id = ?").run(id);
  }

  /** Labels of snapshot `id`, sorted by name. */
  labels(id: number): Record<string, string> {
    const labels = stringMap();
    for (const r of this.#db.query<{ name: string; value: string }, [number]>("SELECT name, value FROM labels WHERE snapshot_id = ? ORDER BY name").all(id)) {
      labels[r.name] = r.value;
    }
    return labels;
  }

  /** Sets labels of snapshot `id`; an empty value removes the label. */
  setLabels(id: number, labels: Record<string, string>): void {
    if (Object.keys(labels).length === 0) return; // no statement prepared for nothing
    const put = this.#db.query("INSERT INTO labels (snapshot_id, name, value) VALUES (?, ?, ?) ON CONFLICT DO UPDATE SET value = excluded.value");
    const del = this.#db.query("DELETE FROM labels WHERE snapshot_id = ? AND name = ?");
    for (const [name, value] of Object.entries(labels)) {
      if (value === "") del.run(id, name);
      else put.run(id, name, value);
    }
  }

  /** Makes `labels` the only labels of snapshot `id` (a commit's: containerd carries none of the active's over). */
  replaceLabels(id: number, labels: Record<string, string>): void {
    this.#db.query("DELETE FROM labels WHERE snapshot_id = ?").run(id);
    this.setLabels(id, labels);
  }

  /** `PRAGMA quick_check`: "ok", or what SQLite found wrong. */
  check(): string {
    return this.#db.query<{ quick_check: string }, []>("PRAGMA quick_check").all().map((r) => r.quick_check).join("; ");
  }

  close(): void {
    this.#db.close();
  }

  /** Ends a command's use of the store (see releaseDatabase). */
  release(): void {
    releaseDatabase(this.#db, this.#path);
  }
}
