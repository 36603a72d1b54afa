/** The native snapshotter's copy keeps everything a root filesystem needs, and fails cleanly. */
import { afterEach, expect, test } from "bun:test";
import { linkSync, lstatSync, mkdirSync, readFileSync, readdirSync, readlinkSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { LoopFs, STOR, TestRoot, have, isRoot, must, need, sh } from "./helpers.ts";

const cleanups: (() => void)[] = [];
afterEach(() => {
  while (cleanups.length) cleanups.pop()!();
});

/** Every attribute the copy must keep, for each path below `dir`. */
function describeTree(dir: string): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const walk = (rel: string) => {
    const p = join(dir, rel);
    const st = lstatSync(p, { bigint: true });
    const xattrs = sh(["getfattr", "-h", "-d", "-m", "-", "-e", "hex", "--absolute-names", p]).stdout.split("\n").filter((l) => l.includes("=")).sort();
    out[rel || "."] = {
      mode: st.mode.toString(8), uid: st.uid, gid: st.gid, rdev: st.rdev, size: st.isDirectory() ? 0n : st.size,
      mtime: st.mtimeNs, link: st.isSymbolicLink() ? readlinkSync(p) : undefined, xattrs, nlink: st.isDirectory() ? 0n : st.nlink,
    };
    if (st.isDirectory()) for (const n of readdirSync(p).sort()) walk(rel ? `${rel}/${n}` : n);
  };
  walk("");
  return out;
}

/** stor's native snapshotter with its root on `fs`. */
function nativeOn(fs: LoopFs) {
  const root = join(fs.mountPoint, "stor");
  return { root, stor: (...a: string[]) => sh([STOR, "--root", root, "--config", "/dev/null", "snapshot", "-s", "native", ...a]) };
}

const copyTools = need(isRoot(), "mknod, chown and security.* xattrs need root") && need(have("setfattr") && have("setcap"), "setfattr (attr) and setcap (libcap2-bin) are needed");
test.skipIf(!copyTools)("types, owners, modes, hardlinks, devices, xattrs and nanosecond times survive prepare", () => {
  const r = new TestRoot();
  cleanups.push(() => r.close());
  const s = (...a: string[]) => r.ok(["snapshot", "-s", "native", ...a]);
  const mounts = JSON.parse(s("prepare", "--mounts", "base-a"));
  const d: string = mounts[0].Source;
  mkdirSync(join(d, "etc/sub"), { recursive: true });
  writeFileSync(join(d, "etc/passwd"), "root:x:0:0::/root:/bin/sh\n");
  writeFileSync(join(d, "big"), Buffer.alloc(3 << 20, 7));
  writeFileSync(join(d, "suid"), "#!/bin/sh\n");
  must(`chmod 4755 ${d}/suid && chmod 2750 ${d}/etc/sub && mkdir -m 1777 ${d}/tmp && chown 1234:5678 ${d}/etc/passwd`);
  linkSync(join(d, "etc/passwd"), join(d, "etc/passwd.link"));
  symlinkSync("../etc/passwd", join(d, "etc/sub/rel"));
  symlinkSync("/nonexistent/target", join(d, "dangling"));
  must(`mknod ${d}/null c 1 3 && mknod ${d}/blk b 7 0 && mkfifo ${d}/fifo && chown -h 42:43 ${d}/dangling`);
  must(`setfattr -n user.note -v hello ${d}/etc/passwd && setfattr -n trusted.overlay.opaque -v y ${d}/etc/sub`);
  must(`cp /bin/true ${d}/ping && setcap cap_net_raw+ep ${d}/ping`);
  must(`touch -h -d '2001-02-03 04:05:06.123456789' ${d}/etc/passwd ${d}/dangling ${d}/etc`);
  s("commit", "base", "base-a");

  const child: string = JSON.parse(s("prepare", "--mounts", "child", "base"))[0].Source;
  expect(describeTree(child)).toEqual(describeTree(d));
  expect(lstatSync(join(child, "etc/passwd")).ino).toBe(lstatSync(join(child, "etc/passwd.link")).ino);
  expect(lstatSync(join(child, "etc/passwd")).ino).not.toBe(lstatSync(join(d, "etc/passwd")).ino);
  expect(sh(["getcap", join(child, "ping")]).stdout).toContain("cap_net_raw=ep");
});

/** A default ACL of user::rwx, group::---, other::--- (posix_acl_xattr, version 2). */
const STRICT_DEFAULT_ACL = "0x02000000" + "01000700ffffffff" + "04000000ffffffff" + "20000000ffffffff";

/** Owner and mode of each path below `dir`. */
function ownersAndModes(dir: string): Record<string, string> {
  const tree = describeTree(dir) as Record<string, { mode: string; uid: number; gid: number }>;
  return Object.fromEntries(Object.entries(tree).map(([p, a]) => [p, `${a.uid}:${a.gid} ${a.mode}`]));
}

// The copy skips the chown and chmod a new file would not need: it must see what the directory
// it copies into passes on (a setgid group, a default ACL) and what the umask takes.
test.skipIf(!copyTools)("owners and modes come out exact whatever the snapshots directory passes on: a setgid group, a default ACL", () => {
  const r = new TestRoot();
  cleanups.push(() => r.close());
  const s = (...a: string[]) => r.ok(["snapshot", "-s", "native", ...a]);
  const d: string = JSON.parse(s("prepare", "--mounts", "base-a"))[0].Source;
  mkdirSync(join(d, "sub"));
  for (const [name, mode] of [["plain", "644"], ["exec", "755"], ["private", "600"], ["open", "666"], ["sub/inner", "640"]]) {
    writeFileSync(join(d, name!), name!);
    must(`chmod ${mode} ${d}/${name}`);
  }
  writeFileSync(join(d, "theirs"), "x");
  must(`chown 1234:5678 ${d}/theirs && chmod 755 ${d}/sub`);
  s("commit", "base", "base-a");
  const snapshots = join(r.path, "snapshots/native/snapshots");
  must(`chown 0:4321 ${snapshots} && chmod 2700 ${snapshots}`);
  const grouped: string = JSON.parse(s("prepare", "--mounts", "grouped", "base"))[0].Source;
  expect(ownersAndModes(grouped)).toEqual(ownersAndModes(d));
  must(`chown 0:0 ${snapshots} && chmod 700 ${snapshots} && setfattr -n system.posix_acl_default -v ${STRICT_DEFAULT_ACL} ${snapshots}`);
  const acl: string = JSON.parse(s("prepare", "--mounts", "acl", "base"))[0].Source;
  expect(ownersAndModes(acl)).toEqual(ownersAndModes(d));
});

/** On a 64 MB ext4, a parent that `fill` makes too big for a second copy: its prepare fails whole. */
function copyThatFillsTheDisk(fill: (dir: string) => void): void {
  const fs = new LoopFs("ext4", 64);
  cleanups.push(() => fs.close());
  const { root, stor } = nativeOn(fs);
  const d = JSON.parse(stor("prepare", "--mounts", "fat-a").stdout)[0].Source;
  fill(d);
  expect(stor("commit", "fat", "fat-a").code).toBe(0);
  const res = stor("prepare", "child", "fat");
  expect(res.code).toBe(1);
  expect(res.stderr).toMatch(/^stor: prepare snapshot "child": .*no space left on device\n$/);
  expect(stor("info", "child").code).toBe(3);
  expect(readdirSync(join(root, "snapshots/native/snapshots"))).toEqual(["1"]);
  // The space is back: a smaller prepare works.
  expect(stor("prepare", "small").code).toBe(0);
}

test.skipIf(!need(isRoot(), "loop devices need root"))("a copy that fills the disk leaves nothing behind", () => {
  copyThatFillsTheDisk((d) => must(`head -c 36M /dev/urandom > ${d}/blob`));
});

test.skipIf(!need(isRoot() && have("mkfs.xfs"), "XFS loop devices need root and xfsprogs"))("on XFS with reflink the copy shares extents instead of duplicating data", () => {
  const fs = new LoopFs("xfs", 512, ["-m", "reflink=1"]);
  cleanups.push(() => fs.close());
  const { stor } = nativeOn(fs);
  const d = JSON.parse(stor("prepare", "--mounts", "p-a").stdout)[0].Source;
  must(`head -c 200M /dev/urandom > ${d}/blob`);
  expect(stor("commit", "p", "p-a").code).toBe(0);
  const free = () => Number(must(`df -B1 --output=avail ${fs.mountPoint} | tail -1`));
  const before = free();
  expect(stor("prepare", "c1", "p").code).toBe(0);
  expect(stor("prepare", "c2", "p").code).toBe(0);
  expect(before - free()).toBeLessThan(20 << 20); // two 200 MB copies cost almost nothing
  const c3: string = JSON.parse(stor("prepare", "--mounts", "c3", "p").stdout)[0].Source;
  expect(sh(["cmp", join(d, "blob"), join(c3, "blob")]).code).toBe(0);
});

test.skipIf(!need(isRoot(), "loop devices need root"))("sparse files keep their holes, so a copy of hundreds of megabytes of holes fits a 64 MB disk", () => {
  const fs = new LoopFs("ext4", 64);
  cleanups.push(() => fs.close());
  const { stor } = nativeOn(fs);
  const d = JSON.parse(stor("prepare", "--mounts", "s-a").stdout)[0].Source;
  // Data, a hole, data, a trailing hole (lastlog's shape); all hole; a hole, then data to the end.
  must(`printf head > ${d}/lastlog && printf mid | dd of=${d}/lastlog bs=1 seek=$((100 << 20)) conv=notrunc status=none && truncate -s 256M ${d}/lastlog`);
  must(`truncate -s 128M ${d}/empty && printf tail | dd of=${d}/tailed bs=1 seek=$((80 << 20)) status=none`);
  expect(stor("commit", "s", "s-a").code).toBe(0);
  const prepared = stor("prepare", "--mounts", "c", "s");
  expect(prepared.stderr).toBe(""); // a copy that fills the holes in runs out of space
  const c: string = JSON.parse(prepared.stdout)[0].Source;
  const blocks = (p: string) => Number(must(`stat -c %b ${p}`));
  for (const f of ["lastlog", "empty", "tailed"]) {
    expect(lstatSync(join(c, f)).size).toBe(lstatSync(join(d, f)).size);
    expect(blocks(join(c, f))).toBeLessThanOrEqual(blocks(join(d, f)));
    expect(sh(["cmp", join(d, f), join(c, f)]).code).toBe(0);
  }
  expect(blocks(join(c, "empty"))).toBe(0);
});

test("names and link targets that are not UTF-8 survive commit and copy byte for byte", () => {
  const r = new TestRoot();
  cleanups.push(() => r.close());
  const bytes = (s: string) => Buffer.from(s, "latin1"); // é as the single byte 0xe9, as ISO-8859-1 systems write it
  for (const snapshotter of ["native", "overlay"]) {
    const s = (...a: string[]) => r.ok(["snapshot", "-s", snapshotter, ...a]);
    const d = Buffer.from(JSON.parse(s("prepare", "--mounts", "a"))[0].Source);
    const at = (dir: Buffer, name: string) => Buffer.concat([dir, Buffer.from("/"), bytes(name)]);
    mkdirSync(at(d, "caf\xe9"));
    writeFileSync(at(d, "caf\xe9/r\xe9sum\xe9"), "cv");
    linkSync(at(d, "caf\xe9/r\xe9sum\xe9"), at(d, "li\xe9n"));
    symlinkSync(bytes("caf\xe9/r\xe9sum\xe9"), at(d, "\xff"));
    s("commit", "base", "a");
    if (snapshotter === "overlay") continue; // its commit measured the tree; native's prepare also copies it
    const c = Buffer.from(JSON.parse(s("prepare", "--mounts", "c", "base"))[0].Source);
    const names = (dir: Buffer) => readdirSync(dir, { encoding: "buffer" }).map((n) => n.toString("latin1")).sort();
    expect(names(c)).toEqual(["caf\xe9", "li\xe9n", "\xff"]);
    expect(names(at(c, "caf\xe9"))).toEqual(["r\xe9sum\xe9"]);
    expect(readlinkSync(at(c, "\xff"), { encoding: "buffer" }).toString("latin1")).toBe("caf\xe9/r\xe9sum\xe9");
    expect(lstatSync(at(c, "li\xe9n")).ino).toBe(lstatSync(at(c, "caf\xe9/r\xe9sum\xe9")).ino);
  }
});

/** Metadata of every path below `dir` (one `find` and one `getfattr`), for trees too large for describeTree. */
function census(dir: string): string {
  const meta = must(`cd ${dir} && find . -printf '%p %y %m %U %G %s %n %T@ %l\\n' | sort`);
  const xattrs = must(`cd ${dir} && getfattr -R -h -d -m - -e hex . 2>/dev/null || true`);
  return `${meta}\n${xattrs}`;
}

/** A parent of `files` files over 40 directories, with varied owners, modes, times and xattrs. */
function largeParent(d: string, files: number, bytes: number): void {
  for (let i = 0; i < files; i++) {
    const dir = join(d, `d${i % 40}`);
    if (i < 40) mkdirSync(dir);
    writeFileSync(join(dir, `f${i}`), Buffer.alloc(bytes, i % 251));
  }
  must(`chown 1234:5678 ${d}/d1/f41 && chmod 4750 ${d}/d2/f42 && setfattr -n user.note -v big ${d}/d3/f43`);
  must(`touch -d '2001-02-03 04:05:06.123456789' ${d}/d4/f44 ${d}/d4 && ln ${d}/d5/f45 ${d}/d6/hard`);
}

test.skipIf(!need(isRoot() && have("setfattr"), "chown needs root; setfattr (attr) is needed"))("a large copy, shared by two threads, keeps every file's data and attributes", () => {
  const r = new TestRoot();
  cleanups.push(() => r.close());
  const s = (...a: string[]) => r.ok(["snapshot", "-s", "native", ...a]);
  const d: string = JSON.parse(s("prepare", "--mounts", "big-a"))[0].Source;
  largeParent(d, 3000, 100); // above the 2,000 files from which a second thread copies (no reflink here)
  s("commit", "big", "big-a");
  const child: string = JSON.parse(s("prepare", "--mounts", "child", "big"))[0].Source;
  expect(census(child)).toBe(census(d));
  expect(sh(["diff", "-r", d, child]).code).toBe(0);
  expect(lstatSync(join(child, "d5/f45")).ino).toBe(lstatSync(join(child, "d6/hard")).ino);
});

test.skipIf(!need(isRoot(), "loop devices need root"))("a large copy that fills the disk on either thread leaves nothing behind", () => {
  copyThatFillsTheDisk((d) => largeParent(d, 3000, 12 << 10)); // 36 MiB in files shared by two threads
});

/** A native root with committed snapshot `base`, whose tree `fill` made; `s` runs its snapshot commands. */
function committedParent(fill: (parent: string) => void): { r: TestRoot; s: (...a: string[]) => string; parent: string } {
  const r = new TestRoot();
  cleanups.push(() => r.close());
  const s = (...a: string[]) => r.ok(["snapshot", "-s", "native", ...a]);
  s("prepare", "base-w");
  const parent = join(r.path, "snapshots/native/snapshots/1");
  fill(parent);
  s("commit", "base", "base-w");
  return { r, s, parent };
}

for (const kind of ["a bind mount of a host directory", "a tmpfs"]) {
  test.skipIf(!need(isRoot(), "mounts need root"))(`prepare copies the parent's own filesystem only: ${kind} mounted inside it is an empty directory in the copy`, () => {
    const { r, s, parent } = committedParent((parent) => {
      mkdirSync(join(parent, "data/deeper"), { recursive: true });
      writeFileSync(join(parent, "data/deeper/own"), "the parent's");
      mkdirSync(join(parent, "data/mnt"));
      writeFileSync(join(parent, "kept"), "the parent's");
    });
    const host = r.dir("host");
    writeFileSync(join(host, "shadow"), "host secret");
    must(kind === "a tmpfs" ? `mount -t tmpfs tmpfs ${join(parent, "data/mnt")}` : `mount --bind ${host} ${join(parent, "data/mnt")}`);
    if (kind === "a tmpfs") writeFileSync(join(parent, "data/mnt/inmount"), "another filesystem's");
    s("prepare", "child", "base");
    const child = join(r.path, "snapshots/native/snapshots/2");
    expect(readdirSync(join(child, "data/mnt"))).toEqual([]);
    expect(lstatSync(join(child, "data/mnt")).isDirectory()).toBe(true);
    expect(readdirSync(join(child, "data/deeper"))).toEqual(["own"]);
    expect(readdirSync(child).sort()).toEqual(["data", "kept"]);
  });
}

test.skipIf(!need(isRoot(), "mounts need root"))("prepare copies what a mount inside the parent hides: its own /usr bound read-only onto itself is copied whole", () => {
  const { r, s, parent } = committedParent((parent) => {
    mkdirSync(join(parent, "usr/bin"), { recursive: true });
    writeFileSync(join(parent, "usr/bin/tool"), "the parent's");
  });
  must(`mount --bind -o ro ${join(parent, "usr")} ${join(parent, "usr")}`);
  s("prepare", "child", "base");
  expect(readFileSync(join(r.path, "snapshots/native/snapshots/2/usr/bin/tool"), "utf8")).toBe("the parent's");
});

test.skipIf(!need(isRoot(), "mounts need root"))("prepare copies no file bind-mounted inside the parent: it is an empty file in the copy", () => {
  const r = new TestRoot();
  cleanups.push(() => r.close());
  const s = (...a: string[]) => r.ok(["snapshot", "-s", "native", ...a]);
  s("prepare", "base-w");
  const parent = join(r.path, "snapshots/native/snapshots/1");
  mkdirSync(join(parent, "etc"));
  writeFileSync(join(parent, "etc/resolv.conf"), "");
  writeFileSync(join(parent, "etc/hostname"), "the parent's");
  s("commit", "base", "base-w");
  const host = join(r.dir("host"), "resolv.conf");
  writeFileSync(host, "nameserver 10.0.0.53 (the host's)");
  must(`mount --bind ${host} ${join(parent, "etc/resolv.conf")}`);
  s("prepare", "child", "base");
  const child = join(r.path, "snapshots/native/snapshots/2");
  expect(readFileSync(join(child, "etc/resolv.conf"), "utf8")).toBe("");
  expect(readFileSync(join(child, "etc/hostname"), "utf8")).toBe("the parent's");
});

test.skipIf(!need(isRoot(), "mounts need root"))("usage counts nothing of a filesystem mounted inside the snapshot", () => {
  const r = new TestRoot();
  cleanups.push(() => r.close());
  r.ok(["snapshot", "-s", "native", "prepare", "act"]);
  const dir = join(r.path, "snapshots/native/snapshots/1");
  writeFileSync(join(dir, "own"), "x".repeat(10_000));
  mkdirSync(join(dir, "mnt"));
  const usage = () => JSON.parse(r.ok(["snapshot", "-s", "native", "usage", "act", "--format", "json"]))[0] as { Size: number; Inodes: number };
  const before = usage();
  must(`mount -t tmpfs stor-usage-tmpfs ${join(dir, "mnt")}`);
  writeFileSync(join(dir, "mnt/big"), "y".repeat(1 << 20));
  const after = usage();
  expect(after.Size).toBeLessThanOrEqual(before.Size);
  expect(after.Inodes).toBeLessThanOrEqual(before.Inodes);
});
