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

test("a chain: lineage nearest first, children known, commit renames and records usage", () => {
  const base = store.write(() => store.insert({ key: "base-a", kind: "active", parentId: null, created: T, updated: T }));
  store.write(() => store.commit(base, "base", { size: 4096, inodes: 3 }, T));
  const child = store.write(() => store.insert({ key: "child", kind: "active", parentId: base, created: T, updated: T }));
  expect(store.byKey("base")).toMatchObject({ id: base, kind: "committed", size: 4096, inodes: 3 });
  expect(store.byKey("base-a")).toBeUndefined();
  const grandchild = store.write(() => store.insert({ key: "grandchild", kind: "active", parentId: child, created: T, updated: T }));
  expect(store.lineage("id", grandchild).map((s) => s.key)).toEqual(["grandchild", "child", "base"]);
  expect(store.lineage("key", "grandchild").map((s) => s.key)).toEqual(["grandchild", "child", "base"]);
  expect(store.lineage("id", child).map((s) => s.key)).toEqual(["child", "base"]);
  expect(store.lineage("key", "none")).toEqual([]);
  expect(store.hasChildren(base)).toBe(true);
  expect(store.all().map((s) => s.key)).toEqual(["base", "child", "grandchild"]);
});

test("described: the snapshot, its parent's key and its labels by name, in one statement", () => {
  const parent = store.write(() => store.insert({ key: "d-parent", kind: "committed", parentId: null, created: T, updated: T }));
  const id = store.write(() => store.insert({ key: "d-child", kind: "active", parentId: parent, created: T, updated: T }));
  store.write(() => store.setLabels(id, { zeta: "26", alpha: "1", mid: "" }));
  store.write(() => store.setLabels(id, { beta: "2", "containerd.io/gc.root": "yes" }));
  expect(store.described("d-child")).toEqual({
    record: expect.objectContaining({ id, key: "d-child", kind: "active", parentId: parent }),
    parentKey: "d-parent",
    labels: { alpha: "1", beta: "2", "containerd.io/gc.root": "yes", zeta: "26" },
  });
  expect(Object.keys(store.described("d-child")!.labels)).toEqual(["alpha", "beta", "containerd.io/gc.root", "zeta"]);
  expect(store.described("d-parent")).toEqual({ record: expect.objectContaining({ id: parent, key: "d-parent" }), parentKey: undefined, labels: {} });
  expect(store.described("d-none")).toBeUndefined();
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
