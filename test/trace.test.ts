/** STOR_TRACE=1: where one command's time goes, on stderr; without it, not a word more. */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { TestRoot } from "./helpers.ts";

let r: TestRoot;
beforeAll(() => {
  r = new TestRoot();
  r.ok(["snapshot", "-s", "native", "prepare", "a"]);
});
afterAll(() => r.close());

/** The phases a traced command printed, with their microseconds. */
function phases(stderr: string): [string, number][] {
  return stderr
    .split("\n")
    .filter(Boolean)
    .map((line) => {
      const m = /^stor trace: (.+?) +(\d+) µs  \(at (\d+) µs\)$/.exec(line);
      if (!m) throw new Error(`not a trace line: ${line}`);
      return [m[1]!, Number(m[2])];
    });
}

test("a traced read prints its phases in order, from start-up to exit, and the same output", () => {
  const plain = r.stor(["snapshot", "-s", "native", "ls"]);
  const traced = r.stor(["snapshot", "-s", "native", "ls"], { env: { STOR_TRACE: "1" } });
  expect(traced.code).toBe(0);
  expect(traced.stdout).toBe(plain.stdout);
  expect(plain.stderr).toBe("");
  const names = phases(traced.stderr).map(([p]) => p);
  expect(names).toEqual(["start-up, bundle load", "command load, parse", "config", "root check", "sqlite open", "pragmas, schema", "query, format", "exit"]);
});

test("a traced write and a traced failure end with exit too", () => {
  const write = r.stor(["snapshot", "-s", "native", "label", "a", "k=v"], { env: { STOR_TRACE: "1" } });
  expect(write.stdout).toBe("k=v\n");
  expect(phases(write.stderr).at(-1)![0]).toBe("exit");
  const failed = r.stor(["snapshot", "-s", "native", "info", "nosuch"], { env: { STOR_TRACE: "1" } });
  expect(failed.code).toBe(3);
  const [first, ...rest] = failed.stderr.split("\n");
  expect(first).toBe('stor: snapshot "nosuch": not found');
  expect(phases(rest.join("\n")).at(-1)![0]).toBe("exit");
});
