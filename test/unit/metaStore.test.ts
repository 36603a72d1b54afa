/** The snapshot metadata store (src/snapshot/metaStore.ts) on a throw-away database. */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { join } from "node:path";
import { MetaStore } from "../../src/snapshot/metaStore.ts";

let dir: string;
let store: MetaStore;
beforeAll(() => {
  dir = mkdtempSync("/tmp/stor-unit-meta-");
  store = new MetaStore(join(dir, "metadata.db"), "write");
});
afterAll(() => {
  store.close();
  rmSync(dir, { recursive: true, force: true });
});

const T = "2026-01-01T00:00:00.000000000Z";

test("a chain: ancestors nearest first, children known, commit renames and records usage", () => {
  const base = store.write(() => store.insert({ key: "base-a", kind: "active", parentId: null, created: T, updated: T }));
  store.write(() => store.commit(base, "base", { size: 4096, inodes: 3 }, T));
  const child = store.write(() => store.insert({ key: "child", kind: "active", parentId: base, created: T, updated: T }));
  expect(store.byKey("base")).toMatchObject({ id: base, kind: "committed", size: 4096, inodes: 3 });
  expect(store.byKey("base-a")).toBeUndefined();
  expect(store.ancestors(child).map((s) => s.key)).toEqual(["base"]);
  expect(store.hasChildren(base)).toBe(true);
  expect(store.all().map((s) => s.key)).toEqual(["base", "child"]);
});

test("labels: set, an empty value removes one, replace keeps only the new ones", () => {
  const id = store.write(() => store.insert({ key: "labelled", kind: "active", parentId: null, created: T, updated: T }));
  store.write(() => store.setLabels(id, { a: "1", b: "2" }));
  store.write(() => store.setLabels(id, { a: "" , c: "3" }));
  expect(store.labels(id)).toEqual({ b: "2", c: "3" });
  store.write(() => store.replaceLabels(id, { d: "4" }));
  expect(store.labels(id)).toEqual({ d: "4" });
});

test("a failed write transaction leaves nothing", () => {
  expect(() =>
    store.write(() => {
      store.insert({ key: "half", kind: "active", parentId: null, created: T, updated: T });
      throw new Error("crash");
    }),
  ).toThrow("crash");
  expect(store.byKey("half")).toBeUndefined();
});
