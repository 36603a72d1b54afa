/** How an error becomes its one line: each part bounded, however long the input it names. */
import { describe as group, expect, test } from "bun:test";
import { InvalidArgumentError, describe } from "../../src/errors.ts";

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
