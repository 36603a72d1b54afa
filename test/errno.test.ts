/**
 * errno read where the call left it: a command's outcome never depends on what the runtime does
 * between a failed libc call and stor's read of its errno. Every write command's mkdir of its
 * existing root fails (EEXIST) on purpose; while stor bound __errno_location on its first read,
 * the runtime's work on the way once turned that into "resource temporarily unavailable" and an
 * rm exited 1. Here test/clobberErrno.c makes the runtime's every dlopen, mmap, munmap, mprotect
 * and madvise leave errno set, every time, and the commands must answer as they always do.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { TestRoot, have, isRoot, need, sh } from "./helpers.ts";

const runs = need(isRoot(), "the commands mount, which needs root") && need(have("cc"), "a C compiler, to build test/clobberErrno.c (test/setup.sh installs gcc)");

let dir = "";
let env: Record<string, string> = {};

beforeAll(() => {
  if (!runs) return;
  dir = mkdtempSync("/tmp/stor-errno-");
  const so = join(dir, "clobberErrno.so");
  const cc = sh(["cc", "-shared", "-fPIC", "-O2", "-o", so, join(import.meta.dir, "clobberErrno.c"), "-ldl"]);
  if (cc.code !== 0) throw new Error(`cc clobberErrno.c: ${cc.stderr}`);
  env = { LD_PRELOAD: so, STOR_TEST_CLOBBER_MARK: join(dir, "loaded") };
});
afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** `stor ARGS` on `t` with the runtime clobbering errno. */
const clobbered = (t: TestRoot, ...args: string[]) => t.stor(args, { env });

describe.skipIf(!runs)("with the runtime setting errno in its own calls", () => {
  for (const snapshotter of ["overlay", "native"]) {
    test(`${snapshotter}: prepare, mount, commit, refusals and rm answer as always`, () => {
      const t = new TestRoot();
      try {
        const target = t.dir("mnt");
        const snap = (...a: string[]) => clobbered(t, "snapshot", "-s", snapshotter, ...a);
        expect(snap("prepare", "a-active")).toMatchObject({ code: 0, stderr: "" });
        expect(existsSync(env.STOR_TEST_CLOBBER_MARK!)).toBe(true); // the shim ran inside stor
        expect(clobbered(t, "-s", snapshotter, "mount", "a-active", target)).toMatchObject({ code: 0, stderr: "" });
        writeFileSync(join(target, "f"), "kept");
        expect(clobbered(t, "unmount", target)).toMatchObject({ code: 0, stderr: "" });
        expect(snap("commit", "a", "a-active")).toMatchObject({ code: 0, stderr: "" });
        expect(snap("prepare", "b", "a")).toMatchObject({ code: 0, stderr: "" });
        expect(snap("view", "b", "a")).toMatchObject({ code: 4, stderr: 'stor: snapshot "b": already exists\n' });
        expect(snap("rm", "a")).toMatchObject({ code: 5, stderr: 'stor: snapshot "a": has children\n' });
        expect(snap("rm", "missing")).toMatchObject({ code: 3, stderr: 'stor: snapshot "missing": not found\n' });
        expect(JSON.parse(snap("info", "a").stdout)).toMatchObject({ Name: "a", Kind: "Committed" });
        expect(snap("rm", "b", "a")).toMatchObject({ code: 0, stderr: "" });
        expect(snap("ls")).toMatchObject({ code: 0, stdout: "KEY PARENT KIND \n" });
      } finally {
        t.close();
      }
    });
  }

  test("volumes: create, inspect, create again, rm, and rm of one gone answer as always", () => {
    const t = new TestRoot();
    try {
      expect(clobbered(t, "volume", "create", "data")).toMatchObject({ code: 0, stdout: "data\n", stderr: "" });
      expect(JSON.parse(clobbered(t, "volume", "inspect", "data").stdout)[0]).toMatchObject({ Name: "data", Driver: "local" });
      expect(clobbered(t, "volume", "create", "data")).toMatchObject({ code: 0, stdout: "data\n", stderr: "" }); // there already: as docker, the same volume
      expect(clobbered(t, "volume", "rm", "data")).toMatchObject({ code: 0, stdout: "data\n", stderr: "" });
      expect(clobbered(t, "volume", "rm", "data")).toMatchObject({ code: 3, stderr: 'stor: volume "data": not found\n' });
    } finally {
      t.close();
    }
  });
});
