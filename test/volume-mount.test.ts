/** Volumes with mount options, mounted for real: tmpfs, an ext4 loop device, binds (size=: volume-quota.test.ts). */
import { afterEach, expect, test } from "bun:test";
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { STOR, TestRoot, isRoot, must, need, sh } from "./helpers.ts";

let r: TestRoot | undefined;
afterEach(() => {
  r?.close();
  r = undefined;
});

/** The mountinfo lines (type and super options) of what is mounted exactly on `path`. */
function mountsOn(path: string): string[] {
  return readFileSync("/proc/self/mountinfo", "utf8")
    .split("\n")
    .map((l) => l.split(" "))
    .filter((f) => f[4] === path)
    .map((f) => {
      const sep = f.indexOf("-");
      return `${f[sep + 1]} ${f[sep + 3]}`;
    });
}

test.skipIf(!need(isRoot(), "mounting volumes needs root"))("tmpfs: mounted on the first reference, gone after the last; references are idempotent", () => {
  r = new TestRoot();
  r.ok(["volume", "create", "-o", "type=tmpfs", "-o", "device=tmpfs", "-o", "o=size=64m,mode=0750", "tt"]);
  const data = join(r.path, "volumes/tt/_data");
  expect(mountsOn(data)).toEqual([]);

  expect(r.ok(["volume", "mount", "tt", "c1"])).toBe(`${data}\n`);
  expect(mountsOn(data)).toHaveLength(1);
  expect(mountsOn(data)[0]).toMatch(/^tmpfs rw,size=65536k,mode=750/);
  writeFileSync(join(data, "hello"), "hi");
  expect(r.ok(["volume", "mount", "tt", "c1"])).toBe(`${data}\n`);
  expect(r.ok(["volume", "mount", "tt", "c2"])).toBe(`${data}\n`);
  expect(mountsOn(data)).toHaveLength(1); // one mount, however many references

  expect(r.ok(["volume", "unmount", "tt", "c1"])).toBe("");
  expect(r.ok(["volume", "unmount", "tt", "c1"])).toBe("");
  expect(mountsOn(data)).toHaveLength(1);
  expect(readFileSync(join(data, "hello"), "utf8")).toBe("hi");
  expect(r.stor(["volume", "rm", "tt"]).code).toBe(5);

  r.ok(["volume", "unmount", "tt", "c2"]);
  expect(mountsOn(data)).toEqual([]);
  expect(readdirSync(data)).toEqual([]); // the tmpfs and its file are gone
  expect(r.ok(["volume", "rm", "tt"])).toBe("tt\n");
  expect(existsSync(join(r.path, "volumes/tt"))).toBe(false);
});

test.skipIf(!need(isRoot(), "loop devices need root"))("ext4 on a loop device: data survives unmount and remount; a relative device is taken from /", () => {
  r = new TestRoot();
  const image = join(r.dir("img"), "ext4.img");
  must(`truncate -s 64M ${image} && mkfs.ext4 -q ${image}`);
  const dev = must(`losetup -f --show ${image}`).trim();
  try {
    r.ok(["volume", "create", "-o", "type=ext4", "-o", `device=${dev}`, "-o", "o=noatime", "disk"]);
    const data = r.ok(["volume", "mount", "disk", "c1"]).trim();
    expect(mountsOn(data)).toHaveLength(1);
    expect(mountsOn(data)[0]).toStartWith("ext4 rw");
    writeFileSync(join(data, "kept"), "across mounts");
    r.ok(["volume", "unmount", "disk", "c1"]);
    expect(mountsOn(data)).toEqual([]);
    expect(existsSync(join(data, "kept"))).toBe(false);

    r.ok(["volume", "mount", "disk", "c2"]);
    expect(readFileSync(join(data, "kept"), "utf8")).toBe("across mounts");
    r.ok(["volume", "unmount", "disk", "c2"]);
    expect(r.ok(["volume", "rm", "disk"])).toBe("disk\n");
    // A relative device is taken from /, as dockerd takes it, wherever the command runs.
    r.ok(["volume", "create", "-o", "type=ext4", "-o", `device=${dev.slice(1)}`, "rel"]);
    const mounted = sh([STOR, "--root", r.path, "--config", r.config, "volume", "mount", "rel", "c1"], { cwd: r.dir("cwd") });
    expect([mounted.code, mounted.stderr]).toEqual([0, ""]);
    expect(readFileSync(join(mounted.stdout.trim(), "kept"), "utf8")).toBe("across mounts");
    r.ok(["volume", "unmount", "rel", "c1"]);
  } finally {
    sh(["umount", "-l", join(r.path, "volumes/rel/_data")]);
    sh(["umount", "-l", join(r.path, "volumes/disk/_data")]);
    sh(["losetup", "-d", dev]);
  }
});

test.skipIf(!need(isRoot(), "bind mounts need root"))("bind: the host directory is the data; removing the volume leaves it alone", () => {
  r = new TestRoot();
  const host = r.dir("host");
  writeFileSync(join(host, "from-host"), "1");
  r.ok(["volume", "create", "-o", "type=none", "-o", `device=${host}`, "-o", "o=bind", "bound"]);
  const data = r.ok(["volume", "mount", "bound", "c1"]).trim();
  expect(readFileSync(join(data, "from-host"), "utf8")).toBe("1");
  writeFileSync(join(data, "from-volume"), "2");
  expect(readFileSync(join(host, "from-volume"), "utf8")).toBe("2");
  r.ok(["volume", "unmount", "bound", "c1"]);
  expect(readdirSync(data)).toEqual([]);
  r.ok(["volume", "rm", "bound"]);
  expect(readdirSync(host).sort()).toEqual(["from-host", "from-volume"]);
});

test.skipIf(!need(isRoot(), "bind mounts need root"))("bind: a relative device is taken from /, as dockerd takes it, wherever the command runs", () => {
  r = new TestRoot();
  const host = r.dir("host");
  writeFileSync(join(host, "from-host"), "1");
  const relative = host.slice(1); // tmp/stor-test-…-host
  r.ok(["volume", "create", "-o", "type=none", "-o", `device=${relative}`, "-o", "o=bind", "rel"]);
  // A directory of that relative name where the commands run must not be what is bound.
  const elsewhere = r.dir("cwd");
  mkdirSync(join(elsewhere, relative), { recursive: true });
  writeFileSync(join(elsewhere, relative, "decoy"), "0");
  const mount = sh([STOR, "--root", r.path, "--config", r.config, "volume", "mount", "rel", "c1"], { cwd: elsewhere });
  expect([mount.code, mount.stderr]).toEqual([0, ""]);
  expect(readdirSync(mount.stdout.trim())).toEqual(["from-host"]);
  r.ok(["volume", "unmount", "rel", "c1"]);
});

test.skipIf(!need(isRoot(), "bind mounts need root"))("rbind: the mounts below the source come along, and go with the last reference", () => {
  r = new TestRoot();
  const host = r.dir("host");
  const sub = r.dir("host/sub");
  must(`mount -t tmpfs stor-rbind-sub ${sub}`);
  try {
    writeFileSync(join(sub, "on-tmpfs"), "1");
    r.ok(["volume", "create", "-o", "type=none", "-o", `device=${host}`, "-o", "o=rbind", "rb"]);
    const data = r.ok(["volume", "mount", "rb", "c1"]).trim();
    expect(readFileSync(join(data, "sub/on-tmpfs"), "utf8")).toBe("1");
    expect(mountsOn(join(data, "sub"))).toHaveLength(1);
    r.ok(["volume", "unmount", "rb", "c1"]);
    expect([mountsOn(data), mountsOn(join(data, "sub")), readdirSync(data)]).toEqual([[], [], []]);
    expect(r.ok(["volume", "rm", "rb"])).toBe("rb\n");
    // The source's own mount is the host's, untouched.
    expect(readFileSync(join(sub, "on-tmpfs"), "utf8")).toBe("1");
  } finally {
    must(`umount ${sub}`);
  }
});

test.skipIf(!need(isRoot(), "mounting volumes needs root"))("a mount a crash left behind is used, not stacked on", () => {
  r = new TestRoot();
  r.ok(["volume", "create", "-o", "type=tmpfs", "-o", "device=tmpfs", "left"]);
  const data = join(r.path, "volumes/left/_data");
  must(`mount -t tmpfs -o size=1m tmpfs ${data}`); // mounted, but no reference recorded
  writeFileSync(join(data, "before"), "x");
  r.ok(["volume", "mount", "left", "c1"]);
  expect(mountsOn(data)).toEqual(["tmpfs rw,size=1024k"]);
  expect(readdirSync(data)).toEqual(["before"]);
  r.ok(["volume", "unmount", "left", "c1"]);
  expect(mountsOn(data)).toEqual([]);
});

test.skipIf(!need(isRoot(), "mounting volumes needs root"))("a mount that fails takes no reference", () => {
  r = new TestRoot();
  r.ok(["volume", "create", "-o", "type=none", "-o", "device=/nonexistent-stor-dir", "-o", "o=bind", "broken"]);
  const res = r.stor(["volume", "mount", "broken", "c1"]);
  expect(res.code).toBe(1);
  expect(res.stderr).toBe(`stor: mount none /nonexistent-stor-dir on ${r.path}/volumes/broken/_data: no such file or directory\n`);
  expect(r.ok(["volume", "ls", "-q", "-f", "dangling=true"])).toBe("broken\n");
  expect(r.ok(["volume", "rm", "broken"])).toBe("broken\n");
});

test.skipIf(!need(isRoot(), "mounting volumes needs root"))("a busy device keeps its reference until it can be unmounted: in use, exit 5", async () => {
  r = new TestRoot();
  r.ok(["volume", "create", "-o", "type=tmpfs", "-o", "device=tmpfs", "busy"]);
  const data = r.ok(["volume", "mount", "busy", "c1"]).trim();
  const holder = Bun.spawn(["sleep", "30"], { cwd: data });
  try {
    const res = r.stor(["volume", "unmount", "busy", "c1"]);
    expect([res.code, res.stderr]).toEqual([5, `stor: unmount ${data}: in use: device or resource busy\n`]);
    expect(r.ok(["volume", "ls", "-q", "-f", "dangling=false"])).toBe("busy\n");
  } finally {
    holder.kill();
    await holder.exited;
  }
  r.ok(["volume", "unmount", "busy", "c1"]);
  expect(mountsOn(data)).toEqual([]);
});
