import { afterEach, expect, test } from "bun:test";
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { snapshotterSuite } from "./snapshotterSuite.ts";
import { STOR, TestRoot, isRoot, must, need, sh } from "./helpers.ts";

snapshotterSuite("btrfs");

// What only btrfs does: subvolumes made, sealed and destroyed by ioctl.
let r: TestRoot | undefined;
afterEach(() => r?.close());

const s = (root: TestRoot, ...args: string[]) => root.ok(["snapshot", "-s", "btrfs", ...args]);
/** The paths of the subvolumes on `root`'s filesystem. */
const subvolumes = (root: TestRoot) => must(`btrfs subvolume list ${root.loop!.mountPoint}`);
/** Snapshot `id`'s subvolume, and its tree inside it. */
const svOf = (root: TestRoot, id: number) => join(root.path, "snapshots/btrfs/snapshots", String(id), "sv");
const fsOf = (root: TestRoot, id: number) => join(svOf(root, id), "fs");

test.skipIf(!need(isRoot(), "subvolumes need root"))("a prepare is a snapshot of its parent's subvolume; commit and view are read-only subvolumes", () => {
  r = TestRoot.for("btrfs");
  s(r, "prepare", "a");
  writeFileSync(join(fsOf(r, 1), "f"), "f");
  s(r, "commit", "base", "a");
  s(r, "prepare", "b", "base");
  s(r, "view", "v", "base");
  for (const id of [1, 2, 3]) expect(statSync(svOf(r, id)).ino).toBe(256); // each a subvolume root
  expect(readFileSync(join(fsOf(r, 2), "f"), "utf8")).toBe("f");
  expect(must(`btrfs property get ${svOf(r, 1)} ro`)).toBe("ro=true\n");
  expect(must(`btrfs property get ${svOf(r, 2)} ro`)).toBe("ro=false\n");
  expect(must(`btrfs property get ${svOf(r, 3)} ro`)).toBe("ro=true\n");
  // Snapshots of subvolume 1: btrfs records it as their parent.
  const uuid = must(`btrfs subvolume show ${svOf(r, 1)}`).match(/^\s*UUID:\s*(\S+)/m)![1];
  for (const id of [2, 3]) expect(must(`btrfs subvolume show ${svOf(r, id)}`)).toMatch(new RegExp(`Parent UUID:\\s*${uuid}`));
});

test.skipIf(!need(isRoot(), "subvolumes need root"))("rm destroys the subvolume, with any subvolume made inside it", () => {
  r = TestRoot.for("btrfs");
  s(r, "prepare", "a");
  must(`btrfs subvolume create ${fsOf(r, 1)}/inner >/dev/null`);
  mkdirSync(join(fsOf(r, 1), "inner/d"));
  expect(subvolumes(r)).toContain("/snapshots/btrfs/snapshots/1/sv/fs/inner\n");
  s(r, "rm", "a");
  expect(subvolumes(r)).toBe("");
});

test.skipIf(!need(isRoot(), "subvolumes need root"))("rm destroys a subvolume a container made deeper than the kernel can give its path (4 KB), and leaves nothing", () => {
  r = TestRoot.for("btrfs");
  s(r, "prepare", "a");
  // 2,500 levels of `d/`, made and entered one at a time (a path that long cannot be given whole),
  // and the subvolume made from there, in the working directory it inherits.
  const made = sh(["python3", "-c", `import os, subprocess\nos.chdir(${JSON.stringify(fsOf(r, 1))})\nfor i in range(2500):\n  os.mkdir("d"); os.chdir("d")\nsubprocess.run(["btrfs", "-q", "subvolume", "create", "sv"], check=True)\nopen("sv/z", "w").write("z")`]);
  expect([made.code, made.stderr]).toEqual([0, ""]);
  expect(r.stor(["snapshot", "-s", "btrfs", "rm", "a"])).toEqual({ code: 0, stdout: "", stderr: "" });
  expect(subvolumes(r)).toBe("");
  expect(readdirSync(join(r.path, "snapshots/btrfs/snapshots"))).toEqual([]);
});

test.skipIf(!need(isRoot(), "subvolumes need root"))("subvolumes a container made inside its snapshot go into its children with their files, read-only once committed", () => {
  r = TestRoot.for("btrfs");
  s(r, "prepare", "a");
  must(`mkdir -p ${fsOf(r, 1)}/var/lib && btrfs subvolume create ${fsOf(r, 1)}/var/lib/db && btrfs subvolume create ${fsOf(r, 1)}/var/lib/db/inner &&
    echo rows > ${fsOf(r, 1)}/var/lib/db/table && echo deep > ${fsOf(r, 1)}/var/lib/db/inner/file && echo top > ${fsOf(r, 1)}/top`);
  s(r, "commit", "base", "a");
  for (const sv of ["", "/fs/var/lib/db", "/fs/var/lib/db/inner"]) expect(must(`btrfs property get ${svOf(r, 1)}${sv} ro`)).toBe("ro=true\n");
  s(r, "prepare", "child", "base");
  s(r, "view", "look", "base");
  for (const id of [2, 3]) {
    expect(readFileSync(join(fsOf(r, id), "var/lib/db/table"), "utf8")).toBe("rows\n");
    expect(readFileSync(join(fsOf(r, id), "var/lib/db/inner/file"), "utf8")).toBe("deep\n");
    expect(statSync(join(fsOf(r, id), "var/lib/db/inner")).ino).toBe(256); // still a subvolume of its own
  }
  expect(s(r, "changes", "child")).toBe("");
  writeFileSync(join(fsOf(r, 2), "var/lib/db/table"), "more rows\n"); // the child's is writable
  expect(s(r, "changes", "child")).toContain("C /var/lib/db/table\n");
  const viewTable = join(fsOf(r, 3), "var/lib/db/table");
  expect(() => writeFileSync(viewTable, "x")).toThrow(); // the view's is not
  s(r, "rm", "child", "look", "base");
  expect(subvolumes(r)).toBe("");
});

test.skipIf(!need(isRoot(), "subvolumes need root"))("a layer that touches a read-only subvolume a container made is refused and undone whole: the snapshot goes on", () => {
  r = TestRoot.for("btrfs");
  s(r, "prepare", "a");
  must(`btrfs subvolume create ${fsOf(r, 1)}/sub >/dev/null && echo z > ${fsOf(r, 1)}/sub/z && btrfs subvolume snapshot -r ${fsOf(r, 1)}/sub ${fsOf(r, 1)}/backup >/dev/null`);
  const before = must(`cd ${fsOf(r, 1)} && find . -printf '%p %m %s %T@\n' | sort`);
  const work = r.dir("layer");
  must(`cd ${work} && mkdir -p l/backup && echo w > l/backup/w && echo n > l/new && tar -C l -cf layer.tar new backup backup/w`);
  const refused = r.stor(["snapshot", "-s", "btrfs", "apply", "a", join(work, "layer.tar")]);
  expect(refused.code).not.toBe(0);
  expect(refused.stderr).toMatch(/^stor: apply .* to snapshot "a": .*read-only file system\n$/);
  expect(must(`cd ${fsOf(r, 1)} && find . -printf '%p %m %s %T@\n' | sort`)).toBe(before);
  expect(readdirSync(svOf(r, 1))).toEqual(["fs"]); // no trash left to undo
  s(r, "commit", "b", "a");
  expect(s(r, "changes", "b")).not.toContain("/new");
});

test.skipIf(!need(isRoot(), "subvolumes need root"))("a layer that replaces a file in a subvolume a container made is refused as such (exit 5), the tree untouched", () => {
  r = TestRoot.for("btrfs");
  s(r, "prepare", "a");
  must(`btrfs subvolume create ${fsOf(r, 1)}/data >/dev/null && echo old > ${fsOf(r, 1)}/data/x`);
  const work = r.dir("layer");
  must(`cd ${work} && mkdir -p l/data && echo new > l/data/x && echo n > l/first && tar -C l -cf layer.tar first data data/x`);
  const refused = r.stor(["snapshot", "-s", "btrfs", "apply", "a", join(work, "layer.tar")]);
  expect([refused.code, refused.stderr]).toEqual([5, `stor: apply ${join(work, "layer.tar")} to snapshot "a": data/x in ${fsOf(r, 1)}: the layer removes it, and it is on a subvolume or filesystem of its own, where its removal could not be undone\n`]);
  expect(readFileSync(join(fsOf(r, 1), "data/x"), "utf8")).toBe("old\n");
  expect(existsSync(join(fsOf(r, 1), "first"))).toBe(false);
});

test.skipIf(!need(isRoot(), "subvolumes need root"))("a read-only subvolume a container made: a layer that removes the directory holding it applies and leaves no trash; one that removes the subvolume itself is refused as such", () => {
  r = TestRoot.for("btrfs");
  s(r, "prepare", "a");
  must(`mkdir ${fsOf(r, 1)}/holder && btrfs subvolume create ${fsOf(r, 1)}/holder/sv >/dev/null && echo d > ${fsOf(r, 1)}/holder/sv/f && btrfs property set ${fsOf(r, 1)}/holder/sv ro true &&
    btrfs subvolume create ${fsOf(r, 1)}/rosv >/dev/null && btrfs property set ${fsOf(r, 1)}/rosv ro true`);
  const work = r.dir("layer");
  must(`cd ${work} && mkdir a b && touch a/.wh.holder b/.wh.rosv && tar -C a -cf holder.tar .wh.holder && tar -C b -cf rosv.tar .wh.rosv`);
  expect(r.stor(["snapshot", "-s", "btrfs", "apply", "a", join(work, "holder.tar")])).toMatchObject({ code: 0, stderr: "" });
  expect(readdirSync(svOf(r, 1))).toEqual(["fs"]); // the trash, read-only subvolume and all, is gone
  expect(existsSync(join(fsOf(r, 1), "holder"))).toBe(false);
  const refused = r.stor(["snapshot", "-s", "btrfs", "apply", "a", join(work, "rosv.tar")]);
  expect([refused.code, refused.stderr]).toEqual([5, `stor: apply ${join(work, "rosv.tar")} to snapshot "a": rosv in ${fsOf(r, 1)}: the layer removes it, and it is read-only (a read-only subvolume)\n`]);
  expect(readdirSync(svOf(r, 1))).toEqual(["fs"]);
  s(r, "commit", "b", "a");
  s(r, "rm", "b");
  expect(subvolumes(r)).toBe("");
});

test.skipIf(!need(isRoot(), "subvolumes need root"))("usage comes from the quota group when quotas are on: what the snapshot alone holds", () => {
  r = TestRoot.onBtrfs("stor-btrfs-quota-", 512);
  must(`btrfs quota enable ${r.loop!.mountPoint}`);
  s(r, "prepare", "a");
  writeFileSync(join(fsOf(r, 1), "big"), Buffer.alloc(4 << 20, 1));
  s(r, "commit", "base", "a");
  s(r, "prepare", "b", "base");
  writeFileSync(join(fsOf(r, 2), "small"), Buffer.alloc(64 << 10, 2));
  const usage = (key: string) => s(r!, "usage", "-b", key).split("\n")[1]!.trim().split(/\s+/).slice(1).map(Number);
  // b shares base's 4 MiB: only what it wrote (and a little metadata) is its own.
  const [bytes, inodes] = usage("b");
  expect(bytes).toBeGreaterThanOrEqual(64 << 10);
  expect(bytes).toBeLessThan(1 << 20);
  expect(inodes).toBe(3);
  expect(usage("base")[0]).toBeGreaterThanOrEqual(4 << 20);
});

test("-s btrfs on a root that is not on btrfs is refused before it makes any directory, the root's own included", () => {
  r = new TestRoot();
  const res = r.stor(["snapshot", "-s", "btrfs", "prepare", "a"]);
  expect(res.code).toBe(5);
  expect(res.stderr).toBe(`stor: snapshotter btrfs: ${r.path}/snapshots/btrfs is not on btrfs\n`);
  expect(readdirSync(r.path)).toEqual(["stor.ini"]);
  const fresh = join(r.path, "new/root");
  expect(sh([STOR, "--root", fresh, "--config", r.config, "snapshot", "-s", "btrfs", "prepare", "a"]).code).toBe(5);
  expect(existsSync(join(r.path, "new"))).toBe(false);
  expect(r.stor(["snapshot", "-s", "btrfs", "ls"]).stdout).toBe("KEY PARENT KIND \n");
});

test.skipIf(!need(isRoot(), "subvolumes need root"))("[snapshot] default = btrfs picks it without -s", () => {
  r = TestRoot.for("btrfs");
  writeFileSync(r.config, "[snapshot]\ndefault = btrfs\n");
  r.ok(["snapshot", "prepare", "a"]);
  expect(statSync(svOf(r, 1)).ino).toBe(256);
  expect(r.ok(["snapshot", "-s", "btrfs", "ls"])).toBe("KEY PARENT KIND   \na          Active \n");
});

test.skipIf(!need(isRoot(), "a mount namespace needs root"))("without overlay in the kernel, the default is btrfs on a btrfs root and native elsewhere", () => {
  r = TestRoot.for("btrfs");
  const other = new TestRoot();
  try {
    // The kernel's list of filesystems without overlay, seen by stor only (a private mount namespace).
    const fake = join(other.path, "filesystems");
    writeFileSync(fake, must("grep -v overlay /proc/filesystems"));
    const prepare = (root: TestRoot) =>
      must(`unshare -m sh -c 'mount --bind ${fake} /proc/filesystems && ${STOR} --root ${root.path} --config /dev/null snapshot prepare a'`);
    prepare(r);
    prepare(other);
    expect(statSync(svOf(r, 1)).ino).toBe(256);
    expect(readdirSync(join(r.path, "snapshots"))).toEqual(["btrfs"]);
    expect(readdirSync(join(other.path, "snapshots"))).toEqual(["native"]);
  } finally {
    other.close();
  }
});
