/**
 * A config file with content is validated by zod once (src/configCache.ts): the next command with
 * the same text takes zod's result from the cache instead of loading zod. Seen through STOR_TRACE,
 * whose "(ini, zod load)" line says when a command loaded it.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { TestRoot, isRoot, need } from "./helpers.ts";

// Only root keeps the cache (and the tests need the compiled binary, which they run).
describe.skipIf(!need(isRoot(), "the cache is root's"))("the config cache", () => {
  let r: TestRoot;
  let cacheDir: string;
  beforeAll(() => {
    r = new TestRoot();
    cacheDir = mkdtempSync("/tmp/stor-config-cache-");
    chmodSync(cacheDir, 0o700);
  });
  afterAll(() => {
    r.close();
    rmSync(cacheDir, { recursive: true, force: true });
  });

  const entry = () => join(cacheDir, "config.json");

  /** Runs a traced `stor snapshot ls` with config text `text`: its output, and whether it loaded zod. */
  function run(text: string, args = ["snapshot", "ls"]): { code: number; stdout: string; stderr: string; zod: boolean } {
    writeFileSync(r.config, text);
    const res = r.stor(args, { env: { STOR_TRACE: "1", STOR_CONFIG_CACHE_DIR: cacheDir } });
    return { ...res, zod: res.stderr.includes("stor trace: (ini, zod load)") };
  }

  test("the first command with a config validates it with zod; the next ones with the same text do not load zod", () => {
    const text = "[snapshot]\ndefault = native\n";
    const first = run(text);
    expect(first.code).toBe(0);
    expect(first.zod).toBe(true);
    expect(JSON.parse(readFileSync(entry(), "utf8"))).toMatchObject({ text, config: { snapshot: { default: "native" }, volume: {} } });
    for (let i = 0; i < 2; i++) {
      const again = run(text, ["snapshot", "prepare", `n${i}`]);
      expect(again.code).toBe(0);
      expect(again.zod).toBe(false);
    }
    // The cached result is used: the snapshots went to the configured snapshotter.
    expect(existsSync(join(r.path, "snapshots/native/metadata.db"))).toBe(true);
    expect(existsSync(join(r.path, "snapshots/overlay"))).toBe(false);
  });

  test("other text is validated again, and its result replaces the entry", () => {
    const changed = run("[snapshot]\ndefault = overlay\n", ["snapshot", "prepare", "o1"]);
    expect(changed.code).toBe(0);
    expect(changed.zod).toBe(true);
    expect(existsSync(join(r.path, "snapshots/overlay/metadata.db"))).toBe(true);
    expect(run("[snapshot]\ndefault = overlay\n").zod).toBe(false);
    expect(run("[snapshot]\ndefault = native\n").zod).toBe(true);
  });

  /** Runs once with `text` so that the cache holds it, and checks it does. */
  function seed(text: string): void {
    run(text);
    expect(run(text).zod).toBe(false);
  }

  test("a config zod refuses is refused every time, and never kept", () => {
    seed("[snapshot]\ndefault = native\n");
    const before = readFileSync(entry(), "utf8");
    for (let i = 0; i < 2; i++) {
      const bad = run("[snapshot]\ndefault = zfs\n");
      expect(bad.code).toBe(2);
      expect(bad.stderr.split("\n")[0]).toStartWith(`stor: config ${r.config}: snapshot.default:`);
      expect(bad.zod).toBe(true);
    }
    expect(readFileSync(entry(), "utf8")).toBe(before);
  });

  test("an entry in a directory others may write is not trusted: zod validates each time", () => {
    const text = "[snapshot]\ndefault = native\n";
    seed(text);
    chmodSync(cacheDir, 0o777);
    try {
      expect(run(text).zod).toBe(true);
      expect(run(text).zod).toBe(true);
    } finally {
      chmodSync(cacheDir, 0o700);
    }
    expect(run(text).zod).toBe(false); // closed again, the entry (root's, unchanged meanwhile) serves
  });

  test("the installed file (comments and empty sections) is validated by nothing and kept nowhere; an empty unknown section is refused", () => {
    const installed = /<<'INI'\n([\s\S]*?)\nINI\n/.exec(readFileSync(new URL("../install.sh", import.meta.url), "utf8"))![1]! + "\n";
    expect(installed).toContain("[snapshot]\n");
    expect(installed).toContain("[volume]\n");
    rmSync(entry(), { force: true });
    for (let i = 0; i < 2; i++) {
      const res = run(installed, ["snapshot", "prepare", `installed${i}`]);
      expect(res.code).toBe(0);
      expect(res.zod).toBe(false);
    }
    expect(existsSync(entry())).toBe(false);
    // Its defaults hold: the first supported snapshotter (overlay here) was used.
    expect(existsSync(join(r.path, "snapshots/overlay/metadata.db"))).toBe(true);
    for (const text of ["[bogus]\n", `${installed}[bogus]\n`]) {
      const bad = run(text);
      expect(bad.code).toBe(2);
      expect(bad.stderr.split("\n")[0]).toBe(`stor: config ${r.config}: bogus: unknown key`);
    }
  });

  test("only blank lines, comments and the known headers skip ini and zod; any other line is theirs to judge", () => {
    for (const text of ["", " \n\t\n", "\t; c\n# c\n", "[snapshot]  \r\n[volume]\r\n", "[snapshot]\n[snapshot]\n", "\ufeff; c\n", "; c\r[volume]\r"]) {
      const res = run(text);
      expect([res.code, res.zod]).toEqual([0, false]);
    }
    // Read by ini, and found empty: valid, as before.
    expect(run("[ snapshot ]\n").code).toBe(0);
    // Not headers to ini (indented, after a BOM, with a comment after), or hiding one after a CR: refused.
    for (const [text, key] of [
      ["  [snapshot]\n", "[snapshot]"],
      ["\ufeff[snapshot]\n", "[snapshot]"],
      ["[snapshot] ; x\n", "[snapshot]"],
      ["[snapshot]\r[bogus]\n", "bogus"],
      ["; c\r[bogus]\n", "bogus"],
      ["# c\r\r[bogus]\r", "bogus"],
      ["[snapshot.x]\n", "snapshot.x"],
    ]) {
      const res = run(text!);
      expect(res.code).toBe(2);
      expect(res.zod).toBe(true);
      expect(res.stderr.split("\n")[0]).toBe(`stor: config ${r.config}: ${key}: unknown key`);
    }
  });

  test("an entry of another executable, or for other text, is not used", () => {
    const text = "[snapshot]\ndefault = native\n";
    seed(text);
    const e = JSON.parse(readFileSync(entry(), "utf8"));
    writeFileSync(entry(), JSON.stringify({ ...e, stamp: "1:2:3", config: { snapshot: { default: "overlay" }, volume: {} } }));
    expect(run(text).zod).toBe(true);
    writeFileSync(entry(), JSON.stringify({ ...e, text: "[snapshot]\ndefault = overlay\n" }));
    expect(run(text).zod).toBe(true);
    writeFileSync(entry(), "{ not json");
    expect(run(text).zod).toBe(true);
    expect(run(text).zod).toBe(false);
  });
});
