/** A bad environment gives one line, the contract's exit code, and nothing half-made. */
import { afterEach, expect, test } from "bun:test";
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync, writeSync } from "node:fs";
import { Database } from "bun:sqlite";
import { dlopen, FFIType } from "bun:ffi";
import { join } from "node:path";
import { LoopFs, STOR, TestRoot, fillInodes, fillUp, have, isRoot, must, need, sh } from "./helpers.ts";

const cleanups: (() => void)[] = [];
afterEach(() => {
  while (cleanups.length) cleanups.pop()!();
});
const tmp = () => {
  const r = new TestRoot();
  cleanups.push(() => r.close());
  return r;
};

test("a missing root is created", () => {
  const r = tmp();
  const root = join(r.path, "not/yet/there");
  expect(sh([STOR, "--root", root, "--config", r.config, "snapshot", "-s", "native", "prepare", "a"]).code).toBe(0);
  expect(readdirSync(join(root, "snapshots/native/snapshots"))).toHaveLength(1);
});

test("a file where the root should be", () => {
  const r = tmp();
  const file = join(r.path, "file");
  writeFileSync(file, "");
  for (const argv of [["snapshot", "prepare", "a"], ["volume", "create", "vol"], ["snapshot", "ls"], ["volume", "ls"], ["df"]]) {
    const res = sh([STOR, "--root", file, "--config", r.config, ...argv]);
    expect([res.code, res.stderr]).toEqual([2, `stor: root ${file}: is not a directory\n`]);
  }
});

test.skipIf(!need(isRoot(), "read-only bind mounts need root"))("a read-only root", () => {
  const r = tmp();
  const root = join(r.path, "ro");
  mkdirSync(root);
  expect(sh([STOR, "--root", root, "--config", r.config, "snapshot", "-s", "native", "prepare", "a"]).code).toBe(0);
  must(`mount --bind ${root} ${root} && mount -o remount,bind,ro ${root}`);
  const res = sh([STOR, "--root", root, "--config", r.config, "snapshot", "-s", "native", "prepare", "b"]);
  expect(res.code).toBe(1);
  expect(res.stderr).toMatch(/^stor: open \S+metadata\.db: .*\(read-only file system\)\n$/);
  must(`umount ${root}`);
  expect(JSON.parse(sh([STOR, "--root", root, "--config", r.config, "snapshot", "-s", "native", "ls", "--format", "json"]).stdout).map((i: { Name: string }) => i.Name)).toEqual(["a"]);
});

test.skipIf(!need(isRoot(), "loop devices need root"))("a full disk: metadata and directories stay consistent", () => {
  const fs = new LoopFs("ext4", 32);
  cleanups.push(() => fs.close());
  const root = join(fs.mountPoint, "stor");
  const stor = (...a: string[]) => sh([STOR, "--root", root, "--config", "/dev/null", "snapshot", "-s", "overlay", ...a]);
  expect(stor("prepare", "a").code).toBe(0);
  must(`dd if=/dev/zero of=${fs.mountPoint}/filler bs=1M 2>/dev/null || true`); // fill every block
  const results = Array.from({ length: 5 }, (_, i) => stor("prepare", `k${i}`));
  for (const res of results.filter((x) => x.code !== 0)) {
    expect(res.code).toBe(1);
    expect(res.stderr.split("\n")).toHaveLength(2);
    expect(res.stderr).toMatch(/no space left on device|disk is full/i);
  }
  must(`rm ${fs.mountPoint}/filler`);
  const listed = JSON.parse(stor("ls", "--format", "json").stdout).map((i: { Name: string }) => i.Name);
  expect(readdirSync(join(root, "snapshots/overlay/snapshots")).filter((d) => !d.startsWith("new-"))).toHaveLength(listed.length);
  expect(stor("cleanup").code).toBe(0);
  expect(readdirSync(join(root, "snapshots/overlay/snapshots"))).toHaveLength(listed.length);
});

test.skipIf(!need(isRoot(), "loop devices need root"))("a full disk: every removal still works, of snapshots and of volumes, with nothing of their own to free, and a volume's reference is released", () => {
  const fs = new LoopFs("ext4", 32);
  cleanups.push(() => fs.close());
  const root = join(fs.mountPoint, "stor");
  const stor = (...a: string[]) => sh([STOR, "--root", root, "--config", "/dev/null", ...a]);
  for (const argv of [["snapshot", "-s", "overlay", "prepare", "o"], ["snapshot", "-s", "native", "prepare", "n"], ["volume", "create", "v1"], ["volume", "mount", "v1", "c1"], ["volume", "create", "v2"]]) {
    expect(stor(...argv).code).toBe(0);
  }
  fillUp(fs.mountPoint);
  expect(stor("snapshot", "-s", "native", "prepare", "x").stderr).toMatch(/no space left on device|disk is full/i);
  // Empty snapshots and volumes: what each removal writes, it writes before anything is freed.
  // Each on a disk filled again, with its store's reserve (the volumes' made again by a create of
  // a volume that is there, which changes nothing): none has the room another's left.
  for (const argv of [["snapshot", "-s", "overlay", "rm", "o"], ["snapshot", "-s", "native", "rm", "n"], ["volume", "unmount", "v1", "c1"], ["volume", "rm", "v1"], ["volume", "prune", "-a", "-f"]]) {
    must(`rm ${fs.mountPoint}/filler`);
    expect(stor("volume", "create", "v2").code).toBe(0);
    fillUp(fs.mountPoint);
    const res = stor(...argv);
    expect([argv, res.code, res.stderr]).toEqual([argv, 0, ""]);
  }
  for (const name of ["overlay", "native"]) {
    expect([name, JSON.parse(stor("snapshot", "-s", name, "ls", "--format", "json").stdout)]).toEqual([name, []]);
    expect([name, readdirSync(join(root, "snapshots", name, "snapshots"))]).toEqual([name, []]);
  }
  expect(stor("volume", "ls", "-q").stdout).toBe("");
  expect(readdirSync(join(root, "volumes"))).toEqual([".meta"]);
  // Once there is room again, the next command that writes keeps room for the next full disk.
  must(`rm ${fs.mountPoint}/filler`);
  expect(stor("snapshot", "-s", "native", "prepare", "y").code).toBe(0);
  expect(statSync(join(root, "snapshots/native/metadata.reserve")).size).toBe(2 * 1024 * 1024);
});

test.skipIf(!need(isRoot(), "loop devices need root"))("a full disk, and stores left without their -wal and -shm: reads, restore and removals still work", () => {
  const fs = new LoopFs("ext4", 32);
  cleanups.push(() => fs.close());
  const root = join(fs.mountPoint, "stor");
  const stor = (...a: string[]) => sh([STOR, "--root", root, "--config", "/dev/null", ...a]);
  for (const argv of [["snapshot", "-s", "overlay", "prepare", "o"], ["snapshot", "-s", "native", "prepare", "n"], ["volume", "create", "v1"]]) {
    expect(stor(...argv).code).toBe(0);
  }
  // As a command leaves a store whose WAL it checkpointed: the last connection's close removes both.
  const dbs = [join(root, "snapshots/overlay/metadata.db"), join(root, "snapshots/native/metadata.db"), join(root, "volumes/.meta/metadata.db")];
  for (const db of dbs) {
    const conn = new Database(db);
    conn.run("PRAGMA wal_checkpoint(TRUNCATE)");
    conn.close();
    expect(existsSync(`${db}-shm`)).toBe(false);
  }
  mkdirSync(join(root, "volumes/orphan/_data"), { recursive: true }); // for restore to adopt: a record to write
  fillUp(fs.mountPoint);
  for (const [argv, out] of [
    [["snapshot", "-s", "overlay", "ls", "--format", "json"], /"Name": "o"/],
    [["volume", "ls", "-q"], /^v1$/m],
    [["restore"], /adopted volume "orphan"/],
    [["snapshot", "-s", "native", "info", "n"], /"Name": "n"/],
    [["snapshot", "-s", "native", "rm", "n"], /^$/],
    [["volume", "rm", "v1"], /^v1\n$/],
  ] as const) {
    const res = stor(...argv);
    expect([argv, res.code, res.stderr]).toEqual([argv, 0, ""]);
    expect(res.stdout).toMatch(out);
  }
});

test.skipIf(!need(isRoot(), "loop devices need root"))("a disk out of inodes, at boot: reads, removals and restore work, and restore records the boot", () => {
  const fs = new LoopFs("ext4", 32, ["-N", "128"]);
  cleanups.push(() => fs.close());
  const root = join(fs.mountPoint, "stor");
  const stor = (...a: string[]) => sh([STOR, "--root", root, "--config", "/dev/null", ...a]);
  // restore last: its close is the one that checkpoints the WAL away. "keep" stays through prune.
  for (const argv of [["snapshot", "-s", "overlay", "prepare", "o"], ["snapshot", "-s", "native", "prepare", "n"], ["volume", "create", "v1"], ["volume", "mount", "v1", "c1"], ["volume", "create", "v2"], ["volume", "create", "keep"], ["volume", "mount", "keep", "c0"], ["restore"]]) {
    expect(stor(...argv).code).toBe(0);
  }
  writeFileSync(join(root, "restore.boot"), ANOTHER_BOOT);
  // Each on a disk with no inode left, with its stores' reserves there (the volumes' made again by
  // a create of a volume that is there, which changes nothing): none has an inode another freed.
  for (const argv of [
    ["volume", "unmount", "v1", "c1"],
    ["volume", "rm", "v1"],
    ["volume", "prune", "-a", "-f"],
    ["snapshot", "-s", "overlay", "ls"],
    ["volume", "ls"],
    ["restore"],
    ["snapshot", "-s", "overlay", "rm", "o"],
    ["snapshot", "-s", "native", "rm", "n"],
  ]) {
    rmSync(join(fs.mountPoint, "fill"), { recursive: true, force: true });
    expect(stor("volume", "create", "keep").code).toBe(0);
    fillInodes(fs.mountPoint);
    expect(must(`df --output=iavail ${fs.mountPoint}`)).toMatch(/^\s*0\s*$/m);
    const res = stor(...argv);
    expect([argv, res.code, res.stderr]).toEqual([argv, 0, ""]);
  }
  expect(readFileSync(join(root, "restore.boot"), "utf8")).toBe(readFileSync("/proc/sys/kernel/random/boot_id", "utf8"));
});

test.skipIf(!need(isRoot(), "loop devices need root"))("the first restore of a root, on a disk out of inodes, finds the root's locks made with its stores", () => {
  const fs = new LoopFs("ext4", 32, ["-N", "128"]);
  cleanups.push(() => fs.close());
  for (const [name, first] of [["snapshots", ["snapshot", "-s", "overlay", "prepare", "o"]], ["volumes", ["volume", "create", "v1"]]] as const) {
    const root = join(fs.mountPoint, name);
    const stor = (...a: string[]) => sh([STOR, "--root", root, "--config", "/dev/null", ...a]);
    expect(stor(...first).code).toBe(0);
    expect(readdirSync(root).filter((f) => f.endsWith(".lock")).sort()).toEqual(["restore.lock", "serve.lock"]);
    writeFileSync(join(root, "restore.boot"), ANOTHER_BOOT);
    const fill = fillInodes(fs.mountPoint);
    expect(must(`df --output=iavail ${fs.mountPoint}`)).toMatch(/^\s*0\s*$/m);
    const res = stor("restore");
    expect([name, res.code, res.stderr]).toEqual([name, 0, ""]);
    expect(readFileSync(join(root, "restore.boot"), "utf8")).toBe(readFileSync("/proc/sys/kernel/random/boot_id", "utf8"));
    rmSync(fill, { recursive: true, force: true });
  }
});

test.skipIf(!need(isRoot() && have("mkfs.btrfs"), "btrfs loop devices need root and btrfs-progs"))("btrfs with its metadata full: a volume's unmount, rm and prune, and each snapshotter's rm, where no file can be made", () => {
  const fs = new LoopFs("btrfs", 200);
  const full = join(fs.mountPoint, "full");
  /** Gives back all that was filled: btrfs reclaims it at the sync. */
  const makeRoom = () => {
    rmSync(full, { force: true });
    rmSync(join(fs.mountPoint, "filler"), { force: true });
    must(`sync -f ${fs.mountPoint}`);
  };
  // Unmounted with room again: a btrfs unmounted with its metadata full can hang in the kernel.
  cleanups.push(() => {
    makeRoom();
    fs.close();
  });
  const root = join(fs.mountPoint, "stor");
  const stor = (...a: string[]) => sh([STOR, "--root", root, "--config", "/dev/null", ...a]);
  // "keep" stays through prune.
  const made = [["volume", "create", "v1"], ["volume", "mount", "v1", "c1"], ["volume", "create", "v2"], ["volume", "create", "v3"], ["volume", "create", "keep"], ["volume", "mount", "keep", "c0"]];
  for (const sn of SNAPSHOTTERS) made.push(["snapshot", "-s", sn, "prepare", "keep"], ["snapshot", "-s", sn, "prepare", "a"], ["snapshot", "-s", sn, "commit", "c", "a"], ["snapshot", "-s", sn, "prepare", "b", "c"]);
  for (const argv of made) expect([argv, stor(...argv).code]).toEqual([argv, 0]);
  // Each on a disk whose data blocks are all taken, so that btrfs can give its metadata no more
  // room, and whose metadata is then filled with large extended attributes until not even an empty
  // file can be made; with its store's reserve there (made again by a command that writes and
  // changes nothing), and no room another command freed.
  const steps = [["volume", "unmount", "v1", "c1"], ["volume", "rm", "v1"], ["volume", "prune", "-a", "-f"], ["volume", "ls"]];
  for (const sn of SNAPSHOTTERS) steps.push(["snapshot", "-s", sn, "rm", "b"], ["snapshot", "-s", sn, "rm", "c"], ["snapshot", "-s", sn, "ls"]);
  const fill = () => {
    fillUp(fs.mountPoint);
    writeFileSync(full, "");
    for (let n = 0; setXattr(full, `user.fill${n}`, XATTR_VALUE); n++);
    expect(() => writeFileSync(join(fs.mountPoint, "one-more"), "")).toThrow(/ENOSPC/);
  };
  for (const argv of steps) {
    makeRoom();
    expect(stor(...(argv[0] === "volume" ? ["volume", "create", "keep"] : ["snapshot", "-s", argv[2]!, "label", "keep", "x="])).code).toBe(0);
    fill();
    const res = stor(...argv);
    expect([argv, res.code, res.stderr]).toEqual([argv, 0, ""]);
  }
  expect(stor("volume", "ls", "-q").stdout).toBe("keep\n");
  expect(readdirSync(join(root, "volumes")).filter((f) => f !== ".meta")).toEqual(["keep"]);
  for (const sn of SNAPSHOTTERS) expect(stor("snapshot", "-s", sn, "ls").stdout).toBe("KEY  PARENT KIND   \nkeep        Active \n");

  // A volume removed in place that cannot be removed whole says so, and stays, to be removed again.
  makeRoom();
  expect(stor("volume", "create", "stuck").code).toBe(0);
  const data = join(root, "volumes/stuck/_data");
  writeFileSync(join(data, "file"), "data");
  writeFileSync(join(data, "immutable"), "data");
  must(`chattr +i ${join(data, "immutable")}`);
  try {
    fill();
    const res = stor("volume", "rm", "stuck");
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/^stor: volume "stuck": partly removed \(no room to rename it away first, so removed in place\): .*operation not permitted; remove it again\n$/);
    expect(stor("volume", "ls", "-q").stdout).toBe("keep\nstuck\n");
  } finally {
    makeRoom(); // btrfs takes metadata for the flag too
    must(`chattr -i ${join(data, "immutable")}`);
  }
  expect(stor("volume", "rm", "stuck")).toMatchObject({ code: 0, stdout: "stuck\n" });
});

/** What restore.boot holds after a boot other than this one: restore's next run does its boot-time work. */
const ANOTHER_BOOT = "00000000-0000-0000-0000-000000000000\n";

/** The snapshotters that run on btrfs. */
const SNAPSHOTTERS = ["native", "overlay", "btrfs"];

/** A value of an extended attribute nearly as large as a btrfs metadata block holds. */
const XATTR_VALUE = new Uint8Array(16000).fill(0x78);

/** setxattr(2) of `name` on `path`; false when it failed (node:fs has no call for it). */
function setXattr(path: string, name: string, value: Uint8Array): boolean {
  const c = (s: string) => new TextEncoder().encode(`${s}\0`);
  return libcXattr().setxattr(c(path), c(name), value, value.length, 0) === 0;
}

let xattrCalls: { setxattr: (path: Uint8Array, name: Uint8Array, value: Uint8Array, size: number, flags: number) => number } | undefined;
const libcXattr = () => (xattrCalls ??= dlopen("libc.so.6", { setxattr: { args: [FFIType.ptr, FFIType.ptr, FFIType.ptr, FFIType.u64, FFIType.i32], returns: FFIType.i32 } }).symbols);

test("a read makes nothing, and no lock file, on a root without stores", () => {
  const r = tmp();
  const root = join(r.path, "empty");
  mkdirSync(root);
  for (const argv of [["snapshot", "-s", "overlay", "ls"], ["volume", "ls"]]) expect(sh([STOR, "--root", root, "--config", r.config, ...argv]).code).toBe(0);
  expect(readdirSync(root)).toEqual([]);
});

test.skipIf(!need(isRoot(), "loop devices need root"))("a filesystem of blocks under 4 KiB: no store is made there, and nothing is left", () => {
  const fs = new LoopFs("ext4", 32, ["-b", "1024"]);
  cleanups.push(() => fs.close());
  const root = join(fs.mountPoint, "stor");
  for (const argv of [["snapshot", "-s", "native", "prepare", "a"], ["snapshot", "prepare", "a"], ["volume", "create", "vol"]]) {
    const res = sh([STOR, "--root", root, "--config", "/dev/null", ...argv]);
    expect([argv, res.code, res.stderr]).toEqual([argv, 5, `stor: root ${root}: its filesystem's blocks are 1024 bytes: stor's metadata (SQLite) needs blocks of 4096 or more, or a full disk crashes it (mkfs.ext4 -b 4096)\n`]);
  }
  expect(existsSync(root)).toBe(false);
});

test("SQLite's own errors name the metadata file: a damaged page, in the snapshot and the volume stores alike", () => {
  const r = tmp();
  r.ok(["snapshot", "-s", "native", "prepare", "a"]);
  r.ok(["volume", "create", "vol"]);
  for (const [db, commands] of [
    [join(r.path, "snapshots/native/metadata.db"), [["snapshot", "-s", "native", "ls"], ["snapshot", "-s", "native", "info", "a"], ["snapshot", "-s", "native", "rm", "a"]]],
    [join(r.path, "volumes/.meta/metadata.db"), [["volume", "ls"], ["volume", "inspect", "vol"], ["volume", "rm", "vol"]]],
  ] as const) {
    // Everything in the database file itself, then its second page (a table's) overwritten.
    const conn = new Database(db);
    conn.run("PRAGMA wal_checkpoint(TRUNCATE)");
    conn.close();
    const fd = openSync(db, "r+");
    writeSync(fd, Buffer.alloc(4096, 0xff), 0, 4096, 4096);
    closeSync(fd);
    for (const argv of commands) {
      const res = r.stor([...argv]);
      expect([argv, res.code, res.stderr]).toEqual([argv, 1, `stor: metadata ${db}: database disk image is malformed\n`]);
    }
  }
});

test("files in the working directory change nothing: no .env, no bunfig.toml preload", () => {
  const r = tmp();
  const cwd = join(r.path, "cwd");
  mkdirSync(cwd);
  const ran = join(r.path, "preload-ran");
  // What a compiled Bun program reads from where it is started, unless it is built not to.
  for (const env of [".env", ".env.local", ".env.production"]) writeFileSync(join(cwd, env), `STOR_CONFIG=${join(r.path, "no-such.ini")}\nSTOR_LOG_LEVEL=bogus\n`);
  writeFileSync(join(cwd, "preload.ts"), `require("node:fs").writeFileSync(${JSON.stringify(ran)}, "ran");\n`);
  writeFileSync(join(cwd, "bunfig.toml"), 'preload = ["./preload.ts"]\n');
  // A .env never overrides what the environment sets, so neither is set.
  const unset = ["env", "-u", "STOR_CONFIG", "-u", "STOR_LOG_LEVEL"];
  expect(sh([...unset, STOR, "--version"], { cwd })).toMatchObject({ code: 0, stderr: "" });
  const root = join(r.path, "root");
  expect(sh([...unset, STOR, "--root", root, "snapshot", "-s", "native", "prepare", "a"], { cwd })).toMatchObject({ code: 0, stderr: "" });
  expect(readdirSync(join(root, "snapshots/native/snapshots"))).toHaveLength(1);
  expect(readdirSync(r.path)).not.toContain("preload-ran");
});
