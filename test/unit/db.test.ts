/** inTransaction (src/db.ts), the transactions both metadata stores run in, on a real SQLite file. */
import { afterEach, beforeEach, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { inTransaction } from "../../src/db.ts";

let dir: string;
let db: Database;
const names = () => db.query<{ name: string }, []>("SELECT name FROM t ORDER BY name").all().map((r) => r.name);
const add = (name: string) => db.query("INSERT INTO t (name) VALUES (?)").run(name);

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "stor-db-"));
  db = new Database(join(dir, "t.db"), { create: true, strict: true });
  db.run("PRAGMA journal_mode = WAL");
  db.run("CREATE TABLE t (name TEXT PRIMARY KEY)");
});
afterEach(() => {
  db.close();
  rmSync(dir, { recursive: true, force: true });
});

test("a write commits and returns what its function returns", () => {
  expect(inTransaction(db, "write", () => (add("a"), 7))).toBe(7);
  expect(names()).toEqual(["a"]);
  expect(db.inTransaction).toBe(false);
});

test("a function that throws rolls everything back and the error goes on", () => {
  expect(() => inTransaction(db, "write", () => (add("a"), add("b"), void (() => { throw new Error("boom"); })()))).toThrow("boom");
  expect(names()).toEqual([]);
  expect(db.inTransaction).toBe(false);
});

test("a failing statement rolls back the statements before it", () => {
  add("a");
  expect(() => inTransaction(db, "write", () => (add("b"), add("a")))).toThrow(/UNIQUE/);
  expect(names()).toEqual(["a"]);
  expect(db.inTransaction).toBe(false);
});

test("nested, an inner failure caught by the outer undoes only the inner", () => {
  inTransaction(db, "write", () => {
    add("outer");
    expect(() => inTransaction(db, "write", () => (add("inner"), add("outer")))).toThrow(/UNIQUE/);
    inTransaction(db, "write", () => add("second"));
  });
  expect(names()).toEqual(["outer", "second"]);
  expect(db.inTransaction).toBe(false);
});

test("nested, when a failure already ended the whole transaction, its own error goes on", () => {
  expect(() =>
    inTransaction(db, "write", () => {
      add("outer");
      inTransaction(db, "write", () => {
        db.run("ROLLBACK"); // as SQLite does itself on SQLITE_FULL or an I/O error
        throw new Error("disk full");
      });
    }),
  ).toThrow("disk full");
  expect(names()).toEqual([]);
  expect(db.inTransaction).toBe(false);
});

test("a write takes the write lock at once: another connection cannot write until it ends", () => {
  const other = new Database(join(dir, "t.db"), { strict: true });
  other.run("PRAGMA busy_timeout = 0");
  try {
    inTransaction(db, "write", () => {
      expect(() => other.run("INSERT INTO t (name) VALUES ('x')")).toThrow(/locked|busy/i);
    });
    other.run("INSERT INTO t (name) VALUES ('x')");
    expect(names()).toEqual(["x"]);
  } finally {
    other.close();
  }
});

test("a read sees one state of the database, whatever commits meanwhile", () => {
  add("a");
  const other = new Database(join(dir, "t.db"), { strict: true });
  try {
    const seen = inTransaction(db, "read", () => {
      const before = names();
      other.run("INSERT INTO t (name) VALUES ('b')");
      return [before, names()];
    });
    expect(seen).toEqual([["a"], ["a"]]);
    expect(names()).toEqual(["a", "b"]);
  } finally {
    other.close();
  }
});
