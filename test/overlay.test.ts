/** Overlay beyond the shared suite: chains to the kernel's 500-layer limit, and unusable backing filesystems. */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { LoopFs, STOR, TestRoot, isRoot, need, sh } from "./helpers.ts";

/** The directory a prepared snapshot's own changes go to, from its mounts. */
function upperOf(mounts: { Type: string; Source: string; Options: string[] }[]): string {
  const m = mounts[0]!;
  if (m.Type === "bind") return m.Source;
  return m.Options.find((o) => o.startsWith("upperdir="))!.slice("upperdir=".length);
}

describe.skipIf(!need(isRoot(), "overlay mounts need root"))("deep chains", () => {
  let r: TestRoot;
  const DEPTH = 500;
  beforeAll(() => {
    r = new TestRoot();
    for (let i = 1; i <= DEPTH; i++) {
      const parent = i === 1 ? [] : [`l${i - 1}`];
      const mounts = JSON.parse(r.ok(["snapshot", "-s", "overlay", "prepare", "--mounts", `l${i}-a`, ...parent]));
      writeFileSync(join(upperOf(mounts), `f${i}`), String(i));
      r.ok(["snapshot", "-s", "overlay", "commit", `l${i}`, `l${i}-a`]);
    }
  }, 300_000);
  afterAll(() => r?.close());

  /** Mounts `key` and reads every file f1..fN through the mount. */
  function readThrough(key: string, n: number, env: Record<string, string> = {}): string[] {
    const t = r.dir(`t-${key}`);
    r.ok(["-s", "overlay", "mount", key, t], { env });
    try {
      const names = readdirSync(t);
      expect(names.filter((x) => x.startsWith("f"))).toHaveLength(n);
      return Array.from({ length: n }, (_, i) => readFileSync(join(t, `f${i + 1}`), "utf8"));
    } finally {
      r.ok(["unmount", t]);
    }
  }
  const expected = (n: number) => Array.from({ length: n }, (_, i) => String(i + 1));

  for (const [api, env] of [["new mount API", {}], ["relative-path fallback", { STOR_MOUNT_API: "legacy" }]] as const) {
    test(`128 layers through the ${api}`, () => {
      r.ok(["snapshot", "-s", "overlay", "view", `v128-${api}`, "l128"]);
      const opts: string = JSON.parse(r.ok(["snapshot", "-s", "overlay", "view", "--mounts", `v128b-${api}`, "l128"]))[0].Options.join(",");
      expect(opts.length).toBeGreaterThan(4096); // past what one mount(2) page can carry
      expect(readThrough(`v128-${api}`, 128, env)).toEqual(expected(128));
    });

    test(`500 layers (the kernel's limit) through the ${api}, view and active`, () => {
      r.ok(["snapshot", "-s", "overlay", "view", `v500-${api}`, `l${DEPTH}`]);
      expect(readThrough(`v500-${api}`, DEPTH, env)).toEqual(expected(DEPTH));
      // An active snapshot on top: 500 lower layers plus its upper, writable.
      r.ok(["snapshot", "-s", "overlay", "prepare", `top-${api}`, `l${DEPTH}`]);
      const t = r.dir(`top-${api}`);
      r.ok(["-s", "overlay", "mount", `top-${api}`, t], { env });
      writeFileSync(join(t, "new"), "written");
      expect(readFileSync(join(t, "f1"), "utf8")).toBe("1");
      r.ok(["unmount", t]);
      expect(r.ok(["snapshot", "-s", "overlay", "usage", "-b", `top-${api}`])).toMatch(/ 2 +\n$/);
    });
  }
});

describe("unusable backing filesystems", () => {
  test.skipIf(!need(isRoot(), "loop devices need root"))("a filesystem without d_type is refused for overlay, and the default falls back to native", () => {
    const fs = new LoopFs("ext4", 32, ["-O", "^filetype"]);
    try {
      const root = join(fs.mountPoint, "stor");
      const stor = (...a: string[]) => sh([STOR, "--root", root, "--config", "/dev/null", ...a]);
      const refused = stor("snapshot", "-s", "overlay", "prepare", "a");
      expect(refused.code).toBe(5);
      expect(refused.stderr).toMatch(/^stor: snapshotter overlay: .*d_type.*\n$/);
      const fallback = stor("--log-level", "info", "snapshot", "prepare", "--mounts", "a");
      expect(fallback.code).toBe(0);
      expect(fallback.stderr).toMatch(/snapshotter overlay unusable: .*d_type/);
      expect(JSON.parse(fallback.stdout)[0].Source).toStartWith(join(root, "snapshots/native/"));
    } finally {
      fs.close();
    }
  });

  test.skipIf(!need(isRoot(), "mounting needs root"))('a root whose path holds "," ":" or "\\" is refused for overlay, and the default falls back to native, which mounts', () => {
    for (const c of [",", ":", "\\"]) {
      const r = new TestRoot(`stor-test-a${c}b-`);
      try {
        const refused = r.stor(["snapshot", "-s", "overlay", "prepare", "a"]);
        expect([refused.code, refused.stdout]).toEqual([5, ""]);
        expect(refused.stderr).toBe(`stor: snapshotter overlay: ${r.path}/snapshots/overlay holds "," ":" or "\\", which overlayfs options cannot carry\n`);
        expect(readdirSync(r.path)).toEqual(["stor.ini"]); // refused before anything is made
        r.ok(["snapshot", "prepare", "base-a"]);
        r.ok(["snapshot", "commit", "base", "base-a"]);
        r.ok(["snapshot", "prepare", "work", "base"]);
        const t = r.dir("mnt");
        r.ok(["mount", "work", t]);
        writeFileSync(join(t, "f"), "through the mount");
        r.ok(["unmount", t]);
        expect(r.ok(["snapshot", "ls"])).toContain("work base   Active");
        expect(readdirSync(join(r.path, "snapshots"))).toEqual(["native"]);
      } finally {
        r.close();
      }
    }
  });

  test.skipIf(!need(isRoot(), "overlay mounts need root"))("overlayfs itself cannot hold upper directories", () => {
    const r = new TestRoot();
    try {
      // A stor root that lives inside an overlay mount.
      r.ok(["snapshot", "-s", "overlay", "prepare", "base-a"]);
      r.ok(["snapshot", "-s", "overlay", "commit", "base", "base-a"]);
      r.ok(["snapshot", "-s", "overlay", "prepare", "ov", "base"]);
      const t = r.dir("ovmnt");
      r.ok(["-s", "overlay", "mount", "ov", t]);
      const inner = sh([STOR, "--root", join(t, "inner"), "--config", "/dev/null", "snapshot", "-s", "overlay", "prepare", "x"]);
      expect(inner.code).toBe(5);
      expect(inner.stderr).toContain("is on overlayfs");
      r.ok(["unmount", t]);
    } finally {
      r.close();
    }
  });
});
