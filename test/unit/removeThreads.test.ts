/**
 * RemoveThreads (src/fs/removeThread.ts) when its threads cannot run: every removal still ends, the
 * ones given after the threads ended removed on the caller's thread. A script of its own is the
 * executable here, whose worker threads fail as they start.
 */
import { expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";

test("with its threads dead, remove still settles every tree, and later ones are removed all the same", () => {
  const dir = mkdtempSync("/tmp/stor-remove-threads-");
  try {
    const trees = ["t1", "t2", "t3"].map((t) => join(dir, t));
    for (const t of trees) {
      mkdirSync(join(t, "sub"), { recursive: true });
      writeFileSync(join(t, "sub", "f"), "x");
    }
    const script = join(dir, "main.ts");
    writeFileSync(
      script,
      `import { RemoveThreads } from ${JSON.stringify(resolve(import.meta.dir, "../../src/fs/removeThread.ts"))};
if (!Bun.isMainThread) throw new Error("no thread here");
const r = new RemoveThreads(2);
const first = await r.remove(${JSON.stringify(trees[0])});
await Bun.sleep(300); // both threads have failed by now
const later = await Promise.all([r.remove(${JSON.stringify(trees[1])}), r.remove(${JSON.stringify(trees[2])})]);
r.close();
console.log(JSON.stringify({ first: first ?? null, later }));
`,
    );
    const p = Bun.spawnSync([process.execPath, script], { stdout: "pipe", stderr: "pipe", timeout: 20_000 });
    expect(p.exitCode).toBe(0);
    const out = JSON.parse(p.stdout.toString());
    // The first was given to a thread that died: why, and the tree left for a later cleanup.
    expect(typeof out.first).toBe("string");
    expect(out.later).toEqual([null, null]);
    expect(trees.map(existsSync)).toEqual([true, false, false]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
