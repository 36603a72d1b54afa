/**
 * A command that changed metadata ends without closing its SQLite connection, so the WAL it wrote
 * stays for the next command (see releaseDatabase in src/db.ts). What a user relies on: every
 * change is seen by the next command, by a process that reads the files with SQLite itself, and by
 * commands running alongside; the WAL stays short. (A stopped serve leaves no WAL: serve.test.ts.)
 */
import { Database } from "bun:sqlite";
import { expect, test } from "bun:test";
import { statSync } from "node:fs";
import { join } from "node:path";
import { TestRoot } from "./helpers.ts";

const walBytes = (db: string) => statSync(`${db}-wal`, { throwIfNoEntry: false })?.size ?? 0;

test("the WAL stays short over many writes, and every write is seen", () => {
  const r = new TestRoot();
  try {
    const db = join(r.path, "snapshots/native/metadata.db");
    r.ok(["snapshot", "-s", "native", "prepare", "a"]);
    const sizes: number[] = [];
    for (let i = 0; i < 150; i++) {
      r.ok(["snapshot", "-s", "native", "label", "a", `n=${i}`, `k${i}=v`]);
      sizes.push(walBytes(db));
    }
    // Kept between commands (it grows), checkpointed once past 256 KiB (a label adds about 12 KiB).
    expect(sizes.filter((s, i) => i > 0 && s > sizes[i - 1]!).length).toBeGreaterThan(100);
    expect(sizes.filter((s, i) => i > 0 && s < sizes[i - 1]!).length).toBeGreaterThan(3);
    expect(Math.max(...sizes)).toBeLessThan(512 * 1024);
    const labels = JSON.parse(r.ok(["snapshot", "-s", "native", "info", "a"])).Labels;
    expect(labels.n).toBe("149");
    expect(Object.keys(labels)).toHaveLength(151);
    // Another SQLite reader of the files sees the same.
    const other = new Database(db, { readonly: true });
    try {
      expect(other.query("SELECT count(*) AS n FROM labels").get()).toEqual({ n: 151 });
    } finally {
      other.close();
    }
  } finally {
    r.close();
  }
});

test("commands running at once each see the others' committed writes", async () => {
  const r = new TestRoot();
  try {
    r.ok(["volume", "create", "seed"]);
    const results = await r.parallel(Array.from({ length: 12 }, (_, i) => ["volume", "create", `v${i}`]));
    expect(results.map((x) => x.code)).toEqual(Array(12).fill(0));
    const names = r.ok(["volume", "ls", "-q"]).trim().split("\n").sort();
    expect(names).toEqual(["seed", ...Array.from({ length: 12 }, (_, i) => `v${i}`)].sort());
  } finally {
    r.close();
  }
});
