/**
 * No valid name can break the store: volume names that are the store's own file names, a root
 * of the older layout (the volume database beside the volumes) migrated and repaired on open, and
 * lock files that leave nothing behind.
 */
import { afterEach, expect, test } from "bun:test";
import { mkdirSync, readFileSync, readdirSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { loadConfig } from "../src/config.ts";
import { openVolumes } from "../src/services.ts";
import { TestRoot, isRoot, must, sh } from "./helpers.ts";

let r: TestRoot | undefined;
afterEach(() => {
  r?.close();
  r = undefined;
});

/**
 * Valid volume names that are, or were, the names of files the store keeps: its databases and
 * SQLite's side files, lock and record files, its own directories.
 */
const STORE_NAMES = [
  "metadata.db",
  "metadata.db-journal",
  "metadata.db-wal",
  "metadata.db-shm",
  "metadata.db.tmp",
  "metadata.reserve",
  "locks",
  "meta",
  "serve.lock",
  "restore.boot",
  "restore.boot.tmp",
  "snapshots",
  "volumes",
  "opts.json",
  "labels.json",
] as const;

test("every valid name that is a store file's name is a volume like any other", () => {
  r = new TestRoot();
  for (const name of STORE_NAMES) {
    expect(r.ok(["volume", "create", name])).toBe(`${name}\n`);
    writeFileSync(join(r.path, "volumes", name, "_data/file"), name);
  }
  expect(r.ok(["volume", "ls", "-q"]).split("\n").filter(Boolean).sort()).toEqual([...STORE_NAMES].sort());
  expect(r.stor(["restore"]).code).toBe(0);
  for (const name of STORE_NAMES) {
    r.ok(["volume", "mount", name, "c1"]);
    r.ok(["volume", "unmount", name, "c1"]);
    expect(readFileSync(join(r.path, "volumes", name, "_data/file"), "utf8")).toBe(name);
  }
  expect(r.ok(["volume", "rm", ...STORE_NAMES])).toBe(STORE_NAMES.map((n) => `${n}\n`).join(""));
  expect(r.ok(["volume", "ls", "-q"])).toBe("");
});

test("snapshot keys that are file names or paths name no file", () => {
  r = new TestRoot();
  const keys = ["metadata.db", "metadata.db-wal", "metadata.reserve", "snapshots", "../../volumes", "/etc", "new-1", "rm-1", "1"];
  for (const k of keys) r.ok(["snapshot", "-s", "native", "prepare", k]);
  expect(r.ok(["snapshot", "-s", "native", "ls"]).split("\n").slice(1).filter(Boolean).length).toBe(keys.length);
  expect(r.ok(["snapshot", "-s", "native", "cleanup"])).toBe("");
  for (const k of keys) r.ok(["snapshot", "-s", "native", "rm", k]);
  expect(readdirSync(join(r.path, "snapshots/native/snapshots"))).toEqual([]);
});

test("a root of the older layout, broken by a volume named after SQLite's journal, is migrated and works", () => {
  r = new TestRoot();
  r.ok(["volume", "create", "--label", "k=v", "kept"]);
  r.ok(["volume", "mount", "kept", "c1"]);
  // The older layout: the database beside the volumes, and the volumes that broke it.
  const vols = join(r.path, "volumes");
  renameSync(join(vols, ".meta/metadata.db"), join(vols, "metadata.db"));
  for (const side of ["metadata.db-journal", "metadata.db-wal"]) mkdirSync(join(vols, side, "_data"), { recursive: true });
  mkdirSync(join(vols, ".locks"));
  writeFileSync(join(vols, ".locks/kept"), "");

  const out = r.ok(["restore"]);
  expect(out).toContain(`moved ${vols}/metadata.db into volumes/.meta: the volume database of an older layout`);
  expect(out).toContain('adopted volume "metadata.db-journal": found without metadata');
  expect(out).toContain('adopted volume "metadata.db-wal": found without metadata');
  expect(r.ok(["volume", "ls", "-q"])).toBe("kept\nmetadata.db-journal\nmetadata.db-wal\n");
  expect(JSON.parse(r.ok(["volume", "inspect", "kept"]))[0].Labels).toEqual({ k: "v" });
  expect(r.stor(["volume", "rm", "kept"]).code).toBe(5); // its reference came along
  expect(r.ok(["volume", "rm", "metadata.db-journal", "metadata.db-wal"])).toBe("metadata.db-journal\nmetadata.db-wal\n");
  expect(readdirSync(vols).sort()).toEqual([".meta", "kept"]);
});

test("any volume command migrates an older root, once, even when many run at once", async () => {
  r = new TestRoot();
  r.ok(["volume", "create", "a1"]);
  const vols = join(r.path, "volumes");
  renameSync(join(vols, ".meta/metadata.db"), join(vols, "metadata.db"));
  const results = await r.parallel(Array.from({ length: 8 }, (_, i) => ["volume", "create", `p${i}`]));
  expect(results.map((x) => x.code)).toEqual(Array(8).fill(0));
  expect(r.ok(["volume", "ls", "-q"]).split("\n").filter(Boolean).length).toBe(9);
});

test.skipIf(!isRoot())(
  "10,000 create and rm cycles, and refused creates, leave no lock file behind",
  async () => {
    r = new TestRoot();
    // On a tmpfs, where fsync costs nothing: the cycles measure lock files, not the disk.
    must(`mount -t tmpfs tmpfs ${r.path}`);
    writeFileSync(r.config, "");
    const service = await openVolumes(loadConfig({ root: r.path, config: r.config }), "write");
    try {
      for (let i = 0; i < 10_000; i++) {
        const name = `cycle-${i}`;
        await service.create(name);
        await service.remove(name);
      }
      for (let i = 0; i < 100; i++) await expect(service.create(`refused-${i}`, { options: { nosuch: "x" } })).rejects.toThrow();
    } finally {
      service.close();
    }
    expect(readdirSync(join(r.path, "volumes/.meta/locks"))).toEqual([]);
    expect(sh(["ls", "-A", join(r.path, "volumes")]).stdout).toBe(".meta\n");
  },
  600_000,
);
