/**
 * The volume metadata store, `<root>/volumes/metadata.db`: volumes with their driver, creation
 * time, labels and options, the references that hold them, the local driver's active-mount
 * counts and the quota project ids it hands out. A daemon keeps references in memory; stor runs
 * as separate processes, so they live here and change in transactions. It owns every SQL
 * statement about volumes; callers group calls in {@link VolumeStore.write} or
 * {@link VolumeStore.read} transactions.
 */
import type { Database } from "bun:sqlite";
import { touchFile } from "../sys/pathCalls.ts";
import { inFreeingTransaction, inTransaction, namingErrors, openDatabase, releaseDatabase, type Access } from "../db.ts";
import { stringMap } from "../stringMap.ts";

/** A volume's row with everything attached to it. */
export interface VolumeRecord {
  name: string;
  /**
   * Given when the volume is recorded and never again, to no other volume: a volume removed and
   * made again under its name has another, so a command that chose a volume before taking its
   * lock can tell it is still the one it chose. 0 for a volume stor has no record of (a plugin's, listed).
   */
  id: number;
  driver: string;
  /** RFC 3339, to the second, as docker prints CreatedAt. */
  created: string;
  labels: Record<string, string>;
  options: Record<string, string>;
  /** What holds the volume (e.g. container ids), sorted. */
  refs: string[];
  /** The driver's count of active mounts (the local driver mounts on the first, unmounts on the last). */
  active: number;
}

const MIGRATIONS = [
  `CREATE TABLE volumes (
     name TEXT PRIMARY KEY,
     driver TEXT NOT NULL,
     created TEXT NOT NULL,
     active INTEGER NOT NULL DEFAULT 0 CHECK (active >= 0)
   );
   CREATE TABLE labels (
     volume TEXT NOT NULL REFERENCES volumes(name) ON DELETE CASCADE,
     name TEXT NOT NULL,
     value TEXT NOT NULL,
     PRIMARY KEY (volume, name)
   );
   CREATE TABLE options (
     volume TEXT NOT NULL REFERENCES volumes(name) ON DELETE CASCADE,
     name TEXT NOT NULL,
     value TEXT NOT NULL,
     PRIMARY KEY (volume, name)
   );
   CREATE TABLE refs (
     volume TEXT NOT NULL REFERENCES volumes(name) ON DELETE CASCADE,
     ref TEXT NOT NULL,
     PRIMARY KEY (volume, ref)
   );
   -- Reserved before the volume's row exists (the driver creates first), so no foreign key.
   CREATE TABLE quota_projects (
     volume TEXT PRIMARY KEY,
     project INTEGER NOT NULL UNIQUE
   );`,
  // The boot a reference was taken in: one of an earlier boot is held by nothing alive.
  `ALTER TABLE refs ADD COLUMN boot TEXT;`,
  // How many times a counted reference was taken (see VolumeService.mount): 1 for the others.
  `ALTER TABLE refs ADD COLUMN uses INTEGER NOT NULL DEFAULT 1;`,
  // Each volume's id (see VolumeRecord.id), from a counter: a rowid of a deleted last row is given again.
  `ALTER TABLE volumes ADD COLUMN id INTEGER NOT NULL DEFAULT 0;
   UPDATE volumes SET id = rowid;
   CREATE TABLE last_volume_id (id INTEGER NOT NULL);
   INSERT INTO last_volume_id SELECT coalesce(max(id), 0) FROM volumes;`,
];

type Row = { name: string; id: number; driver: string; created: string; active: number };
type Pair = { volume: string; name: string; value: string };
type RefRow = { volume: string; ref: string };

/** The references {@link VolumeStore.staleRefs} selects; parameters: boot, unknown, all. */
const STALE = "(boot IS NOT NULL AND boot != ?1) OR (boot IS NULL AND ?2) OR ?3";

/** Volume metadata. */
export class VolumeStore {
  readonly #db: Database;
  readonly #path: string;

  constructor(path: string, access: Access) {
    this.#path = path;
    // Options may carry passwords: the file (and SQLite's -wal and -shm, which copy its mode) is root's alone.
    if (access === "write") touchFile(path, 0o600);
    this.#db = openDatabase(path, MIGRATIONS, access);
    return namingErrors(this, path); // what every caller gets: see namingErrors
  }

  /** Runs `fn` in a write transaction (BEGIN IMMEDIATE: one writer at a time, no lock upgrade). */
  write<T>(fn: () => T): T {
    return inTransaction(this.#db, "write", fn);
  }

  /** Runs `fn` in a write transaction that frees space or lets it be freed, on a full disk too (see inFreeingTransaction): `fn` may run twice. */
  freeing<T>(fn: () => T): T {
    return inFreeingTransaction(this.#db, this.#path, fn);
  }

  /** Runs `fn` in a read transaction: one consistent view of the database. */
  read<T>(fn: () => T): T {
    return inTransaction(this.#db, "read", fn);
  }

  /** The volume `name`, or undefined. */
  get(name: string): VolumeRecord | undefined {
    // One statement, not four: each costs a command a prepare. Row 0 is the volume, then its
    // labels (1), options (2) and references (3), each by name.
    const rows = this.#db
      .query<{ k: number; a: string; b: string; c: string; d: number; e: number }, [string]>(
        `SELECT 0 AS k, name AS a, driver AS b, created AS c, active AS d, id AS e FROM volumes WHERE name = ?1
         UNION ALL SELECT 1, name, value, NULL, NULL, NULL FROM labels WHERE volume = ?1
         UNION ALL SELECT 2, name, value, NULL, NULL, NULL FROM options WHERE volume = ?1
         UNION ALL SELECT 3, ref, NULL, NULL, NULL, NULL FROM refs WHERE volume = ?1
         ORDER BY k, a`,
      )
      .all(name);
    const head = rows[0];
    if (head?.k !== 0) return undefined;
    const v: VolumeRecord = { name: head.a, id: head.e, driver: head.b, created: head.c, active: head.d, labels: stringMap(), options: stringMap(), refs: [] };
    for (let i = 1; i < rows.length; i++) {
      const r = rows[i]!;
      if (r.k === 1) v.labels[r.a] = r.b;
      else if (r.k === 2) v.options[r.a] = r.b;
      else v.refs.push(r.a);
    }
    return v;
  }

  /**
   * Every volume, or those of `names` that exist, ordered by name: a handful of queries however
   * many there are.
   */
  all(names?: readonly string[]): VolumeRecord[] {
    const params = names ? [JSON.stringify(names)] : [];
    const where = (column: string) => (names ? `WHERE ${column} IN (SELECT value FROM json_each(?))` : "");
    const rows = this.#db.query<Row, string[]>(`SELECT name, id, driver, created, active FROM volumes ${where("name")} ORDER BY name`).all(...params);
    const byVolume = (table: string) =>
      groupPairs(this.#db.query<Pair, string[]>(`SELECT volume, name, value FROM ${table} ${where("volume")} ORDER BY volume, name`).all(...params));
    const labels = byVolume("labels");
    const options = byVolume("options");
    const refs = groupRefs(this.#db.query<RefRow, string[]>(`SELECT volume, ref FROM refs ${where("volume")} ORDER BY volume, ref`).all(...params));
    return rows.map((r) => ({ ...r, labels: labels.get(r.name) ?? {}, options: options.get(r.name) ?? {}, refs: refs.get(r.name) ?? [] }));
  }

  /** Records a new volume (without references), with an id of its own. */
  insert(v: Omit<VolumeRecord, "id" | "refs" | "active">): void {
    this.#db.query("UPDATE last_volume_id SET id = id + 1").run();
    this.#db.query("INSERT INTO volumes (name, id, driver, created) SELECT ?, id, ?, ? FROM last_volume_id").run(v.name, v.driver, v.created);
    const put = (table: string, map: Record<string, string>) => {
      const q = this.#db.query(`INSERT INTO ${table} (volume, name, value) VALUES (?, ?, ?)`);
      for (const [k, value] of Object.entries(map)) q.run(v.name, k, value);
    };
    put("labels", v.labels);
    put("options", v.options);
  }

  /** Forgets volume `name` with its labels, options and references; false when it was not there. */
  delete(name: string): boolean {
    return this.#db.query("DELETE FROM volumes WHERE name = ?").run(name).changes > 0;
  }

  /** Adds reference `ref`, taken in boot `boot`, to `name` and sets its active-mount count. */
  addRef(name: string, ref: string, active: number, boot: string): void {
    this.#db.query("INSERT OR IGNORE INTO refs (volume, ref, boot) VALUES (?, ?, ?)").run(name, ref, boot);
    this.#db.query("UPDATE volumes SET active = ? WHERE name = ?").run(active, name);
  }

  /** Counts one more use of reference `ref`, which `name` has. */
  addUse(name: string, ref: string): void {
    this.#db.query("UPDATE refs SET uses = uses + 1 WHERE volume = ? AND ref = ?").run(name, ref);
  }

  /** Counts one use less of reference `ref` of `name`, unless it is its last; false when it was. */
  dropUse(name: string, ref: string): boolean {
    return this.#db.query("UPDATE refs SET uses = uses - 1 WHERE volume = ? AND ref = ? AND uses > 1").run(name, ref).changes > 0;
  }

  /** Drops reference `ref` from `name` and sets its active-mount count. */
  removeRef(name: string, ref: string, active: number): void {
    this.#db.query("DELETE FROM refs WHERE volume = ? AND ref = ?").run(name, ref);
    this.#db.query("UPDATE volumes SET active = ? WHERE name = ?").run(active, name);
  }

  /**
   * The references, by volume, that {@link releaseRefs} with the same arguments would drop:
   * those taken in another boot than `boot`; with `unknown`, also those of unknown boot (taken
   * by an older stor); with `all`, every one.
   */
  staleRefs(boot: string, unknown: boolean, all: boolean): Map<string, string[]> {
    return groupRefs(this.#db.query<RefRow, [string, number, number]>(`SELECT volume, ref FROM refs WHERE ${STALE} ORDER BY volume, ref`).all(boot, Number(unknown), Number(all)));
  }

  /**
   * Drops those of references `refs` (by volume, as {@link staleRefs} gave them) that it would
   * still name with the same arguments, but those of the volumes in `spare`; a reference taken
   * since (a `volume mount` meanwhile) stays. Lowers each volume's active-mount count to the
   * references it keeps; returns what was dropped, by volume (a volume with an empty list only had
   * its count lowered).
   */
  releaseRefs(boot: string, unknown: boolean, all: boolean, refs: ReadonlyMap<string, readonly string[]>, spare: readonly string[] = []): Map<string, string[]> {
    const pairs: [string, string][] = [];
    for (const [volume, names] of refs) if (!spare.includes(volume)) for (const ref of names) pairs.push([volume, ref]);
    const dropped = groupRefs(
      this.#db
        .query<RefRow, [string, number, number, string]>(
          `DELETE FROM refs WHERE (${STALE}) AND (volume, ref) IN (SELECT value ->> 0, value ->> 1 FROM json_each(?4)) RETURNING volume, ref`,
        )
        .all(boot, Number(unknown), Number(all), JSON.stringify(pairs)),
    );
    const lowered = this.#db
      .query<{ name: string }, []>("UPDATE volumes SET active = (SELECT count(*) FROM refs WHERE volume = volumes.name) WHERE active > (SELECT count(*) FROM refs WHERE volume = volumes.name) RETURNING name")
      .all();
    for (const r of lowered) if (!dropped.has(r.name)) dropped.set(r.name, []);
    for (const refs of dropped.values()) refs.sort();
    return dropped;
  }

  /**
   * The quota project id of volume `name`: the one it was given before, else the next free one
   * from `min` up. Kept until {@link releaseProject}, so a project id never serves two volumes.
   */
  reserveProject(name: string, min: number): number {
    this.#db
      .query("INSERT INTO quota_projects (volume, project) SELECT ?, max(?, coalesce(max(project) + 1, 0)) FROM quota_projects WHERE true ON CONFLICT (volume) DO NOTHING")
      .run(name, min);
    return this.#db.query<{ project: number }, [string]>("SELECT project FROM quota_projects WHERE volume = ?").get(name)!.project;
  }

  /**
   * Records project `id`, which volume `name`'s data is in already, as `name`'s; false when another
   * volume has it.
   */
  claimProject(name: string, id: number): boolean {
    const owner = this.#db.query<{ volume: string }, [number]>("SELECT volume FROM quota_projects WHERE project = ?").get(id)?.volume;
    if (owner !== undefined) return owner === name;
    this.#db.query("INSERT INTO quota_projects (volume, project) VALUES (?, ?) ON CONFLICT (volume) DO UPDATE SET project = excluded.project").run(name, id);
    return true;
  }

  /** Frees the quota project id of `name`, if it has one. */
  releaseProject(name: string): void {
    this.#db.query("DELETE FROM quota_projects WHERE volume = ?").run(name);
  }

  close(): void {
    this.#db.close();
  }

  /** Ends a command's use of the store (see releaseDatabase). */
  release(): void {
    releaseDatabase(this.#db, this.#path);
  }
}

function groupRefs(rows: readonly RefRow[]): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const r of rows) {
    const refs = out.get(r.volume);
    if (refs) refs.push(r.ref);
    else out.set(r.volume, [r.ref]);
  }
  return out;
}

function groupPairs(pairs: readonly Pair[]): Map<string, Record<string, string>> {
  const out = new Map<string, Record<string, string>>();
  for (const p of pairs) {
    let m = out.get(p.volume);
    if (!m) out.set(p.volume, (m = stringMap()));
    m[p.name] = p.value;
  }
  return out;
}
