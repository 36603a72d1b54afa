/**
 * Apply sets a new file's owner and mode only where the file does not have them already; these
 * tests hold it to what the layer says where a new file would inherit something else from its
 * directory: the group of a setgid directory (one the parent had, one the layer makes) and the
 * mode a default ACL would take bits from. And a file's xattrs, read before its content, are set
 * after it: they must outlive the buffers a large file streams through.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { lstatSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { getXattr } from "../src/sys/file.ts";
import { TestRoot, isRoot, must, need } from "./helpers.ts";
import { SNAPSHOTTERS, prepareFilled, tar, type TarEntry } from "./layer-helpers.ts";

/** A default ACL of user::rwx, group::---, other::--- (posix_acl_xattr, version 2). */
const STRICT_DEFAULT_ACL = "0x02000000" + "01000700ffffffff" + "04000000ffffffff" + "20000000ffffffff";

const LAYER = tar([
  { name: "inherited/plain", mode: 0o644, uid: 0, gid: 0, data: "a" },
  { name: "inherited/grouped", mode: 0o640, uid: 0, gid: 1234, data: "b" },
  { name: "made/", type: "5", mode: 0o2755, uid: 0, gid: 4321 },
  { name: "made/plain", mode: 0o644, uid: 0, gid: 0, data: "c" },
  { name: "acl/plain", mode: 0o644, uid: 0, gid: 0, data: "d" },
  { name: "acl/exec", mode: 0o755, uid: 7, gid: 8, data: "e" },
]);

/** Owner and permission bits of `path`, as `UID:GID MODE`. */
function ownerMode(path: string): string {
  const st = lstatSync(path);
  return `${st.uid}:${st.gid} ${(st.mode & 0o7777).toString(8)}`;
}

describe.each(SNAPSHOTTERS)("apply on %s sets what a new file would inherit otherwise", (snapshotter) => {
  let root: TestRoot;
  let dir: string;
  const run = isRoot();
  beforeAll(() => {
    if (!run) return;
    root = TestRoot.for(snapshotter, "stor-layer-meta-");
    prepareFilled(root, snapshotter, "base", undefined, (d) =>
      must(`cd ${d} && mkdir inherited acl && chown 0:1234 inherited && chmod 2775 inherited && setfattr -n system.posix_acl_default -v ${STRICT_DEFAULT_ACL} acl`),
    );
    root.ok(["-s", snapshotter, "snapshot", "commit", "base-c", "base"]);
    root.ok(["-s", snapshotter, "snapshot", "prepare", "top", "base-c"]);
    root.ok(["-s", snapshotter, "snapshot", "apply", "top", "-"], { input: LAYER });
    root.ok(["-s", snapshotter, "snapshot", "commit", "top-c", "top"]);
    root.ok(["-s", snapshotter, "snapshot", "view", "top-v", "top-c"]);
    dir = root.dir("mnt");
    root.ok(["-s", snapshotter, "mount", "top-v", dir]);
  });
  afterAll(() => root?.close()); // it unmounts what is mounted below it first

  test.skipIf(!need(run, "needs root"))("a setgid directory's group, from the parent or from the layer", () => {
    expect(ownerMode(join(dir, "inherited"))).toBe("0:1234 2775");
    expect(ownerMode(join(dir, "inherited/plain"))).toBe("0:0 644");
    expect(ownerMode(join(dir, "inherited/grouped"))).toBe("0:1234 640");
    expect(ownerMode(join(dir, "made"))).toBe("0:4321 2755");
    expect(ownerMode(join(dir, "made/plain"))).toBe("0:0 644");
  });

  test.skipIf(!need(run, "needs root"))("a default ACL's mask", () => {
    expect(ownerMode(join(dir, "acl/plain"))).toBe("0:0 644");
    expect(ownerMode(join(dir, "acl/exec"))).toBe("7:8 755");
  });
});

describe.each(SNAPSHOTTERS)("apply on %s of a layer file", (snapshotter) => {
  let root: TestRoot;
  const run = isRoot();
  beforeAll(() => {
    if (run) root = TestRoot.for(snapshotter, "stor-layer-big-");
  });
  afterAll(() => root?.close());

  test.skipIf(!need(run, "needs root"))("keeps the xattrs of a file larger than its read buffers", () => {
    const src = root.dir("src");
    const layer = join(root.dir("layer"), "layer.tar");
    must(`head -c 40000000 /dev/urandom > ${src}/big && setfattr -n user.mark -v 0x00ff10ab ${src}/big && tar --xattrs --xattrs-include='*' -cf ${layer} -C ${src} .`);
    root.ok(["-s", snapshotter, "snapshot", "prepare", "big"]);
    root.ok(["-s", snapshotter, "snapshot", "apply", "big", layer]);
    root.ok(["-s", snapshotter, "snapshot", "commit", "big-c", "big"]);
    root.ok(["-s", snapshotter, "snapshot", "view", "big-v", "big-c"]);
    const mnt = root.dir("mnt");
    root.ok(["-s", snapshotter, "mount", "big-v", mnt]);
    try {
      expect(getXattr(join(mnt, "big"), "user.mark")?.toString("hex")).toBe("00ff10ab");
      const digest = (p: string) => createHash("sha256").update(readFileSync(p)).digest("hex");
      expect(digest(join(mnt, "big"))).toBe(digest(join(src, "big")));
    } finally {
      must(`umount ${mnt}`);
    }
  });
});

describe.each(SNAPSHOTTERS)("apply on %s passes over an entry naming the snapshot's root, as containerd does", (snapshotter) => {
  test.skipIf(!need(isRoot(), "needs root"))("the root keeps its mode, owner and time: they are the snapshotter's, and no diff writes them", () => {
    const root = TestRoot.for(snapshotter, "stor-layer-root-");
    try {
      const file = { name: "./file", data: "f" };
      /** The root of snapshot `key` after `entries`, as a view mounts it: owner, mode and mtime. */
      const rootAfter = (key: string, entries: TarEntry[]) => {
        root.ok(["-s", snapshotter, "snapshot", "prepare", `${key}-a`]);
        root.ok(["-s", snapshotter, "snapshot", "apply", `${key}-a`, "-"], { input: tar(entries) });
        root.ok(["-s", snapshotter, "snapshot", "commit", key, `${key}-a`]);
        root.ok(["-s", snapshotter, "snapshot", "view", `${key}-v`, key]);
        const mnt = root.dir(`mnt-${key}`);
        root.ok(["-s", snapshotter, "mount", `${key}-v`, mnt]);
        try {
          const st = lstatSync(mnt);
          expect(readFileSync(join(mnt, "file"), "utf8")).toBe("f");
          return { owner: ownerMode(mnt), mtime: Math.floor(st.mtimeMs / 1000) };
        } finally {
          must(`umount ${mnt}`);
        }
      };
      const plain = rootAfter("plain", [file]);
      const named = rootAfter("named", [{ name: "./", type: "5", mode: 0o700, uid: 1234, gid: 5678, mtime: 1_000_000_000 }, file]);
      expect(named.owner).toBe(plain.owner);
      expect(named.mtime).not.toBe(1_000_000_000);
    } finally {
      root.close();
    }
  });
});
