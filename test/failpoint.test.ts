/**
 * The failpoints' `+hold` action, which tests use to act while one thread of stor waits at a
 * named point and the rest go on (serve.test.ts holds one of serve's threads with it): seen here
 * on a command's own thread.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { STOR, TestRoot, holdAt, untilHeld } from "./helpers.ts";

let r: TestRoot;
beforeAll(() => {
  r = new TestRoot();
});
afterAll(() => r?.close());

test("+hold: the command waits at its failpoint, having made the file, until the file is removed; then it goes on", async () => {
  const held = join(r.dir("run"), "held");
  const p = Bun.spawn([STOR, "--root", r.path, "--config", r.config, "snapshot", "-s", "native", "prepare", "a"], {
    env: { ...process.env, ...holdAt("prepare:made", held) },
    stdout: "pipe",
    stderr: "pipe",
  });
  let ended = false;
  void p.exited.then(() => (ended = true));
  try {
    if (!(await untilHeld(held, () => ended))) throw new Error(`prepare ended, never held at prepare:made: ${await new Response(p.stderr).text()}`);
    await Bun.sleep(200);
    expect(ended).toBe(false); // still held
    expect(r.ok(["snapshot", "-s", "native", "ls"])).not.toMatch(/^a\s/m); // not made yet
    rmSync(held);
    expect(await p.exited).toBe(0);
    expect(r.ok(["snapshot", "-s", "native", "ls"])).toMatch(/^a\s+Active/m);
  } finally {
    if (!ended) p.kill("SIGKILL");
  }
});

test("+hold without the file to make is refused in one line, and nothing is held", () => {
  const res = r.stor(["snapshot", "-s", "native", "prepare", "b"], { env: { STOR_FAILPOINT: "prepare:made+hold" }, timeout: 10_000 });
  expect(res.code).toBe(2);
  expect(res.stderr).toBe("stor: environment variable STOR_FAILPOINT: +hold needs STOR_FAILPOINT_HOLD, the file that says the thread is held\n");
  expect(r.ok(["snapshot", "-s", "native", "ls"])).not.toMatch(/^b\s/m);
  expect(readdirSync(join(r.path, "snapshots/native/snapshots")).filter((d) => d.startsWith("new-"))).toEqual([]); // nothing half made
});
