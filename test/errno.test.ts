/**
 * errno read where the call left it: a command's outcome never depends on what the runtime does
 * between a failed libc call and stor's read of its errno. Every write command's mkdir of its
 * existing root fails (EEXIST) on purpose; while stor bound __errno_location on its first read,
 * the runtime's work on the way once turned that into "resource temporarily unavailable" and an
 * rm exited 1. Here test/clobberErrno.c makes the runtime's every dlopen, mmap, munmap, mprotect
 * and madvise leave errno set, every time, and the commands must answer as they always do.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { TestRoot, have, isRoot, must, need, sh } from "./helpers.ts";
import { tar, type TarEntry } from "./layer-helpers.ts";

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

  test("layers: apply (a whiteout among them), an escaping entry refused, changes and diff answer as without it", () => {
    const layers = join(dir, "layers");
    mkdirSync(layers);
    const layer = (name: string, entries: TarEntry[]) => writeFileSync(join(layers, `${name}.tar`), tar(entries));
    layer("l1", [{ name: "d/", type: "5", mode: 0o755 }, { name: "d/f", data: "one" }, { name: "g", data: "two" }]);
    layer("l2", [{ name: ".wh.g" }, { name: "n", data: "new" }]);
    layer("bad", [{ name: "ok", data: "x" }, { name: "../escape", data: "x" }]);
    /** The answers of a layer session on a fresh root, with `extra` in the environment. */
    const session = (extra: Record<string, string>) => {
      const t = new TestRoot();
      try {
        const run = (...a: string[]) => {
          const res = t.stor(["snapshot", "-s", "overlay", ...a], { env: extra });
          return [a[0], res.code, res.stdout, res.stderr];
        };
        const out = [run("prepare", "a"), run("apply", "a", join(layers, "l1.tar")), run("commit", "A", "a"), run("prepare", "b", "A")];
        out.push(run("apply", "b", join(layers, "l2.tar")), run("apply", "b", join(layers, "bad.tar")), run("changes", "b"));
        const diff = join(t.dir("out"), "b.tar");
        out.push([...run("diff", "b", "-o", diff).slice(0, 2), must(`tar -tf ${diff}`)]);
        return out;
      } finally {
        t.close();
      }
    };
    const plain = session({});
    expect(plain.map((r) => r[1])).toEqual([0, 0, 0, 0, 0, 2, 0, 0]);
    expect(plain[6]![2]).toBe("D /g\nA /n\n");
    expect(session(env)).toEqual(plain);
  });

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
