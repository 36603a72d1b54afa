/**
 * Where renameat2 has no RENAME_NOREPLACE (NFS, 9p, FUSE without rename2 answer EINVAL), stor's
 * rename to a trash name falls back to rename(2) over an empty directory it made with mkdtemp.
 * test/withoutNoReplace.ts runs a command on this kernel with that answer given by a seccomp
 * filter, so the fallback runs on a real filesystem.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { STOR, TestRoot, isRoot, need, sh } from "./helpers.ts";

const LAUNCHER = resolve(import.meta.dir, "withoutNoReplace.ts");
const PATH_CALLS = resolve(import.meta.dir, "../src/sys/pathCalls.ts");
const PROBE = resolve(import.meta.dir, "renameProbe.ts");

/** `argv` run with RENAME_NOREPLACE refused. */
const withoutNoReplace = (argv: string[]) => sh([process.execPath, LAUNCHER, ...argv]);

/** Whether the filter can be installed and acts here: the launcher checks that a rename with the flag is refused and one without it is not. */
const filtered = withoutNoReplace(["true"]).code === 0;
const why = "seccomp filters, to answer renameat2's RENAME_NOREPLACE with EINVAL";

let r: TestRoot;
let scratch: string;
beforeAll(() => {
  r = new TestRoot();
  scratch = mkdtempSync("/tmp/stor-rename-fallback-");
});
afterAll(() => {
  r.close();
  rmSync(scratch, { recursive: true, force: true });
});

test.skipIf(!need(filtered, why))("the filter reaches the command: a rename with the flag is refused there, one without it is not", () => {
  // A rename of nothing: ENOENT (2) when the call is let through, EINVAL (22) when it is refused.
  expect(sh([process.execPath, PROBE]).stdout).toBe("2 2");
  expect(withoutNoReplace([process.execPath, PROBE]).stdout).toBe("22 2");
});

test.skipIf(!need(filtered, why))("renameAway moves a tree to a fresh name of its prefix, replacing nothing that was there", () => {
  const home = join(scratch, "home");
  mkdirSync(join(home, "vol", "_data"), { recursive: true });
  writeFileSync(join(home, "vol", "_data", "f"), "data");
  // Earlier trash, full and empty: neither may be replaced, though rename(2) replaces an empty directory.
  mkdirSync(join(home, ".rm-full", "_data"), { recursive: true });
  writeFileSync(join(home, ".rm-full", "_data", "g"), "kept");
  mkdirSync(join(home, ".rm-empty"));
  const script = `import { renameAway } from ${JSON.stringify(PATH_CALLS)};
process.stdout.write(renameAway(${JSON.stringify(join(home, "vol"))}, ${JSON.stringify(join(home, ".rm-"))}));`;
  const res = withoutNoReplace([process.execPath, "-e", script]);
  expect(res.stderr).toBe("");
  expect(res.code).toBe(0);
  const to = res.stdout;
  expect(to).toMatch(new RegExp(`^${home}/\\.rm-[A-Za-z0-9]{6}$`));
  expect(readFileSync(join(to, "_data", "f"), "utf8")).toBe("data");
  expect(existsSync(join(home, "vol"))).toBe(false);
  expect(readFileSync(join(home, ".rm-full", "_data", "g"), "utf8")).toBe("kept");
  expect(readdirSync(join(home, ".rm-empty"))).toEqual([]);
  // One name more than before, the one returned: no empty directory of the fallback's left over.
  expect(readdirSync(home).sort()).toEqual([".rm-empty", ".rm-full", to.slice(home.length + 1)].sort());
});

test.skipIf(!need(filtered && isRoot(), `${why}; root, to run stor`))("volume rm removes the volume and its data, and leaves nothing behind", () => {
  r.ok(["volume", "create", "gone"]);
  r.ok(["volume", "create", "kept"]);
  const volumes = join(r.path, "volumes");
  writeFileSync(join(volumes, "gone", "_data", "f"), "data");
  writeFileSync(join(volumes, "kept", "_data", "f"), "kept");
  const res = withoutNoReplace([STOR, "--root", r.path, "--config", r.config, "volume", "rm", "gone"]);
  expect(res.stderr).toBe("");
  expect(res.code).toBe(0);
  expect(res.stdout).toBe("gone\n");
  expect(r.ok(["volume", "ls", "-q"])).toBe("kept\n");
  expect(readdirSync(volumes).sort()).toEqual([".meta", "kept"]);
  expect(readFileSync(join(volumes, "kept", "_data", "f"), "utf8")).toBe("kept");
  // The name is free again.
  r.ok(["volume", "create", "gone"]);
  expect(readdirSync(join(volumes, "gone", "_data"))).toEqual([]);
});

