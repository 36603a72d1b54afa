/** How an error becomes its one line: each part bounded, however long the input it names. */
import { describe as group, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ExitCode, InvalidArgumentError, describe, exitCodeOf } from "../../src/errors.ts";

group("describe", () => {
  test("a short error is as it was made", () => {
    expect(describe(new InvalidArgumentError('label "k"', "expected KEY=VALUE"))).toBe('label "k": expected KEY=VALUE');
  });

  test("a long part loses its middle, keeping its head and its tail", () => {
    const line = describe(new InvalidArgumentError(`label "${"L".repeat(100_000)}"`, `entry "${"e".repeat(2000)}": leads outside`));
    expect(line).toMatch(/^label "L+…L+": entry "e+…e+": leads outside$/);
    expect(line.length).toBeLessThan(1040);
  });

  test("the cut never splits a surrogate pair", () => {
    for (const pad of ["", "x"]) {
      const line = describe(new InvalidArgumentError(`${pad}${"😀".repeat(1000)}`, "why"));
      expect(line).not.toMatch(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/);
    }
  });

  test("a system error's path is bounded too", () => {
    const err = Object.assign(new Error(`ENOENT: no such file or directory, open '/${"d".repeat(5000)}'`), { code: "ENOENT", syscall: "open", path: `/${"d".repeat(5000)}` });
    expect(describe(err)).toMatch(/^open \/d+…d+: no such file or directory$/);
  });
});

group("exitCodeOf", () => {
  test("a database whose write lock another connection holds past the busy timeout is in use (5), not an internal error", () => {
    const dir = mkdtempSync(join(tmpdir(), "stor-busy-"));
    try {
      const holder = new Database(join(dir, "db"), { create: true });
      holder.run("PRAGMA journal_mode = WAL; CREATE TABLE t (x); BEGIN IMMEDIATE");
      const other = new Database(join(dir, "db"));
      other.run("PRAGMA busy_timeout = 0");
      let err: unknown;
      try {
        other.run("BEGIN IMMEDIATE");
      } catch (e) {
        err = e;
      }
      expect(exitCodeOf(err)).toBe(ExitCode.precondition);
      expect(exitCodeOf(new Error("anything else"))).toBe(ExitCode.internal);
      other.close();
      holder.close();
    } finally {
      rmSync(dir, { recursive: true });
    }
  });
});
