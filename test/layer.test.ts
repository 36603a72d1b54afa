/**
 * Layers, round trip: a snapshot's changes written as a layer (`snapshot diff`) and applied to a
 * fresh chain (`snapshot apply`) give the same tree, on and across both snapshotters; the same
 * tree always gives the same bytes; `snapshot changes` lists what changed.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, lstatSync, readFileSync, readdirSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { STOR, TestRoot, isRoot, must, need, stopped, type Result } from "./helpers.ts";
import { DIFF_STYLE, SNAPSHOTTERS, prepareFilled, tar, viewListing } from "./layer-helpers.ts";

const LONG = "n".repeat(120);

/** A tree with every kind of entry and metadata a layer must carry. */
function fillBase(d: string): void {
  must(`cd ${d} && mkdir -p etc bin usr/share sticky emptydir "deep/${LONG}/${LONG}/${LONG}" &&
    echo hello > etc/passwd && head -c 3000000 /dev/urandom > bin/big &&
    truncate -s 8M sparse && printf data | dd of=sparse bs=1 seek=5000000 conv=notrunc status=none &&
    ln etc/passwd etc/hardlink && ln -s ../etc/passwd bin/rel-link && ln -s /etc/shadow bin/abs-link && ln -s nowhere bin/dangling &&
    mkfifo fifo && mknod cdev c 1 3 && mknod bdev b 7 0 &&
    echo deep > "deep/${LONG}/${LONG}/${LONG}/${LONG}.txt" && echo u > "usr/share/ünïcødé ☃.txt" &&
    touch bin/capped && chown 3000000:70000 bin/capped && setcap cap_setuid,cap_net_raw+ep bin/capped && chmod 4755 bin/capped &&
    chmod 1777 sticky && chmod 2755 bin && chmod 0600 usr/share &&
    setfattr -n user.note -v 0xff80fe00 bin/big && setfattr -n trusted.t -v tv etc/passwd &&
    touch -h -d '2001-02-03 04:05:06' bin/rel-link && touch -d '1999-01-01 00:00:00' etc/passwd`);
}

/** Changes of every kind: deletions, an emptied directory, new files, changed metadata and contents. */
function fillChanges(d: string): void {
  must(`cd ${d} && rm etc/hardlink && rm -rf deep && mkdir deep && echo again > deep/new &&
    echo more >> etc/passwd && chmod 600 etc/passwd && chown 5:6 bin/big &&
    rm bin/dangling && ln -s elsewhere bin/dangling && mkdir -p newdir/sub && echo n > newdir/sub/file && rm fifo`);
}

const EXPECTED_CHANGES = {
  upper: ["C /bin", "C /bin/big", "C /bin/dangling", "C /deep", "A /deep/new", "C /etc", "D /etc/hardlink", "C /etc/passwd", "D /fifo", "A /newdir", "A /newdir/sub", "A /newdir/sub/file"],
  tree: ["C /bin", "C /bin/big", "C /bin/dangling", "C /deep", "A /deep/new", `D /deep/${LONG}`, "C /etc", "D /etc/hardlink", "C /etc/passwd", "D /fifo", "A /newdir", "A /newdir/sub", "A /newdir/sub/file"],
};

describe.each(SNAPSHOTTERS)("layers made on %s", (src) => {
  let root: TestRoot;
  let layers: string;
  const run = isRoot();
  beforeAll(() => {
    if (!run) return;
    root = TestRoot.for(src, "stor-layer-");
    layers = root.dir("layers");
    prepareFilled(root, src, "base", undefined, fillBase);
    root.ok(["-s", src, "snapshot", "commit", "base-c", "base"]);
    prepareFilled(root, src, "top", "base-c", fillChanges);
    root.ok(["-s", src, "snapshot", "commit", "top-c", "top"]);
  });
  afterAll(() => root?.close());

  test.skipIf(!need(run, "needs root"))("changes lists additions, changes and deletions against the parent", () => {
    expect(root.ok(["-s", src, "snapshot", "changes", "top-c"]).trim().split("\n")).toEqual(EXPECTED_CHANGES[DIFF_STYLE[src]]);
    const base = root.ok(["-s", src, "snapshot", "changes", "base-c"]).trim().split("\n");
    expect(base.every((l) => l.startsWith("A /"))).toBe(true);
    expect(base).toContain(`A /deep/${LONG}/${LONG}/${LONG}/${LONG}.txt`);
  });

  test.skipIf(!need(run, "needs root"))("diff writes the same bytes every time, plain, gzip and zstd", () => {
    for (const [flag, file] of [["", "top.tar"], ["--gzip", "top.tar.gz"], ["--zstd", "top.tar.zst"], ["", "base.tar"]] as const) {
      const key = file.startsWith("base") ? "base-c" : "top-c";
      const out = join(layers, file);
      const diffID = root.ok(["-s", src, "snapshot", "diff", key, "-o", out, ...(flag ? [flag] : [])]).trim();
      expect(diffID).toMatch(/^sha256:[0-9a-f]{64}$/);
      const again = root.ok(["-s", src, "snapshot", "diff", key, "-o", `${out}.again`, ...(flag ? [flag] : [])]).trim();
      expect(again).toBe(diffID);
      expect(Buffer.compare(readFileSync(out), readFileSync(`${out}.again`))).toBe(0);
    }
    // Without -o the layer goes to stdout, byte for byte the same.
    must(`${STOR} --root ${root.path} --config ${root.config} -s ${src} snapshot diff top-c | cmp - ${join(layers, "top.tar")}`);
  });

  test.skipIf(!need(run, "needs root"))("the layer holds whiteouts, hardlinks, PAX names and xattrs", () => {
    const names = must(`tar -tf ${join(layers, "top.tar")}`).trim().split("\n");
    expect(names).toContain("etc/.wh.hardlink");
    expect(names).toContain(".wh.fifo");
    if (DIFF_STYLE[src] === "upper") expect(names).toContain("deep/.wh..wh..opq");
    else expect(names).toContain(`deep/.wh.${LONG}`);
    const base = must(`tar --xattrs --xattrs-include='*' -tvvf ${join(layers, "base.tar")}`);
    expect(base).toContain("security.capability");
    expect(base).toContain(`deep/${LONG}/${LONG}/${LONG}/${LONG}.txt`);
    expect(base).toMatch(/^h.* etc\/passwd link to etc\/hardlink$/m);
    expect(base).toMatch(/^-rwsr-xr-x\* 3000000\/70000 .* bin\/capped$/m);
  });

  for (const dst of SNAPSHOTTERS) {
    test.skipIf(!need(run, "needs root"))(`applied on ${dst}, the layers rebuild the same tree`, () => {
      const r = TestRoot.for(dst, "stor-layer-dst-");
      try {
        r.ok(["-s", dst, "snapshot", "prepare", "a1"]);
        const id1 = r.ok(["-s", dst, "snapshot", "apply", "a1", join(layers, "base.tar")]).trim();
        expect(id1).toBe(root.ok(["-s", src, "snapshot", "diff", "base-c", "-o", join(layers, "check.tar")]).trim());
        r.ok(["-s", dst, "snapshot", "commit", "a1-c", "a1"]);
        r.ok(["-s", dst, "snapshot", "prepare", "a2", "a1-c"]);
        // From stdin, zstd-compressed: detected by its magic number.
        const id2 = r.ok(["-s", dst, "snapshot", "apply", "a2", "-"], { input: readFileSync(join(layers, "top.tar.zst")) }).trim();
        expect(id2).toBe(root.ok(["-s", src, "snapshot", "diff", "top-c", "-o", join(layers, "check.tar")]).trim());
        r.ok(["-s", dst, "snapshot", "commit", "a2-c", "a2"]);

        expect(viewListing(r, dst, "a1-c")).toEqual(viewListing(root, src, "base-c"));
        expect(viewListing(r, dst, "a2-c")).toEqual(viewListing(root, src, "top-c"));
        if (dst === src) {
          // Reproducible: the rebuilt snapshots give back the very same layers.
          r.ok(["-s", dst, "snapshot", "diff", "a2-c", "-o", join(layers, `again-${dst}.tar`)]);
          expect(Buffer.compare(readFileSync(join(layers, `again-${dst}.tar`)), readFileSync(join(layers, "top.tar")))).toBe(0);
          r.ok(["-s", dst, "snapshot", "diff", "a1-c", "-o", join(layers, `again1-${dst}.tar`)]);
          expect(Buffer.compare(readFileSync(join(layers, `again1-${dst}.tar`)), readFileSync(join(layers, "base.tar")))).toBe(0);
        }
      } finally {
        r.close();
      }
    });
  }
});

describe("apply refuses what is not an active snapshot", () => {
  test.skipIf(!need(isRoot(), "needs root"))("committed, view and missing keys", () => {
    const r = new TestRoot("stor-layer-kind-");
    try {
      const layer = join(r.dir("l"), "empty.tar");
      must(`tar -cf ${layer} -T /dev/null`);
      r.ok(["-s", "native", "snapshot", "prepare", "a"]);
      r.ok(["-s", "native", "snapshot", "commit", "c", "a"]);
      r.ok(["-s", "native", "snapshot", "view", "v", "c"]);
      expect(r.stor(["-s", "native", "snapshot", "apply", "c", layer]).code).toBe(5);
      expect(r.stor(["-s", "native", "snapshot", "apply", "v", layer]).code).toBe(5);
      expect(r.stor(["-s", "native", "snapshot", "apply", "missing", layer]).code).toBe(3);
      r.ok(["-s", "native", "snapshot", "prepare", "b", "c"]);
      expect(r.stor(["-s", "native", "snapshot", "apply", "b", "/nonexistent/layer.tar"]).code).toBe(3);
    } finally {
      r.close();
    }
  });
});

describe.each(SNAPSHOTTERS)("names that are not UTF-8 on %s", (src) => {
  // ISO-8859-1 names, as an old system writes them: é is the single byte 0xe9, not valid UTF-8.
  const latin1 = (b: Uint8Array) => Buffer.from(b).toString("latin1");
  const NAMES = ["A /caf\xe9", "A /caf\xe9/r\xe9sum\xe9", "A /h\xe9", "A /l\xff"];
  /** `snapshot changes KEY` in `r` on `snapshotter`, its output read as bytes (TestRoot's is text). */
  const changesOf = (r: TestRoot, snapshotter: string, key: string) => {
    const p = Bun.spawnSync([STOR, "--root", r.path, "--config", r.config, "-s", snapshotter, "snapshot", "changes", key]);
    if (p.exitCode !== 0) throw new Error(`stor snapshot changes ${key}: ${p.stderr.toString()}`);
    return latin1(p.stdout).trim().split("\n");
  };
  let root: TestRoot;
  let layer: string;
  beforeAll(() => {
    if (!isRoot()) return;
    root = TestRoot.for(src, "stor-layer-names-");
    prepareFilled(root, src, "a", undefined, (d) =>
      must(`cd ${d} && mkdir "$(printf 'caf\\351')" && echo hi > "$(printf 'caf\\351/r\\351sum\\351')" &&
        ln -s "$(printf 'caf\\351/r\\351sum\\351')" "$(printf 'l\\377')" && ln "$(printf 'caf\\351/r\\351sum\\351')" "$(printf 'h\\351')"`),
    );
    root.ok(["-s", src, "snapshot", "commit", "a-c", "a"]);
    layer = join(root.dir("layers"), "a.tar");
    root.ok(["-s", src, "snapshot", "diff", "a-c", "-o", layer]);
  });
  afterAll(() => root?.close());

  test.skipIf(!need(isRoot(), "needs root"))("changes prints them as their bytes; diff writes them as their bytes", () => {
    expect(changesOf(root, src, "a-c")).toEqual(NAMES);
    const listed = Bun.spawnSync(["tar", "--quoting-style=literal", "-tvf", layer]);
    expect(listed.stderr.toString()).toBe(""); // GNU tar reads it without a warning
    expect(latin1(listed.stdout)).toContain("l\xff -> caf\xe9/r\xe9sum\xe9");
    expect(latin1(listed.stdout)).toContain("h\xe9 link to caf\xe9/r\xe9sum\xe9");
  });

  test.skipIf(!need(isRoot(), "needs root")).each(SNAPSHOTTERS)("a layer of them applies to %s with the same bytes, and diffs to the same layer", (dst) => {
    // GNU tar's own layer of the same tree, too: raw bytes in ustar name fields.
    const gnu = join(root.dir("layers"), "gnu.tar");
    const mnt = root.dir("mnt-gnu");
    root.ok(["-s", src, "snapshot", "view", `gnu-${dst}`, "a-c"]);
    root.ok(["-s", src, "mount", `gnu-${dst}`, mnt]);
    try {
      must(`tar --format=gnu -cf ${gnu} -C ${mnt} .`);
    } finally {
      must(`umount ${mnt}`);
    }
    for (const [file, key] of [[layer, `b-${src}`], [gnu, `g-${src}`]] as const) {
      const r = TestRoot.for(dst, "stor-layer-names-dst-");
      try {
        r.ok(["-s", dst, "snapshot", "prepare", key]);
        r.ok(["-s", dst, "snapshot", "apply", key, file]);
        expect(changesOf(r, dst, key)).toEqual(NAMES);
        if (file === layer) {
          const again = join(r.dir("out"), "again.tar");
          r.ok(["-s", dst, "snapshot", "diff", key, "-o", again]);
          expect(readFileSync(again).equals(readFileSync(layer))).toBe(true);
        }
      } finally {
        r.close();
      }
    }
  });
});

test.skipIf(!need(isRoot(), "needs root"))("a layer's diffID is the sha256 of its bytes, small or large, from a file or from stdin", () => {
  // A plain file up to 4 MiB is hashed on the main thread, a larger one by the worker; stdin streams.
  const r = TestRoot.for("native", "stor-layer-digest-");
  try {
    const src = r.dir("src");
    for (const [name, bytes] of [["small", 100_000], ["large", 6_000_000]] as const) {
      must(`mkdir -p ${src}/${name} && head -c ${bytes} /dev/urandom > ${src}/${name}/data && echo note > ${src}/${name}/note`);
      const layer = join(r.dir("layers"), `${name}.tar`);
      must(`tar -cf ${layer} -C ${src}/${name} .`);
      const expected = `sha256:${must(`sha256sum ${layer}`).split(" ")[0]}`;
      r.ok(["-s", "native", "snapshot", "prepare", `${name}-file`]);
      expect(r.ok(["-s", "native", "snapshot", "apply", `${name}-file`, layer]).trim()).toBe(expected);
      r.ok(["-s", "native", "snapshot", "prepare", `${name}-stdin`]);
      expect(r.ok(["-s", "native", "snapshot", "apply", `${name}-stdin`, "-"], { input: readFileSync(layer) }).trim()).toBe(expected);
      for (const key of [`${name}-file`, `${name}-stdin`]) {
        const tree = JSON.parse(r.ok(["-s", "native", "snapshot", "mounts", "--format", "json", "/t", key]))[0].Source as string;
        expect(Buffer.compare(readFileSync(join(tree, "data")), readFileSync(`${src}/${name}/data`))).toBe(0);
      }
    }
  } finally {
    r.close();
  }
});

describe.each(SNAPSHOTTERS)("on %s, a new name linked to an unchanged file", (sn) => {
  test.skipIf(!need(isRoot(), "needs root"))("stays a link to it through diff and apply, and changes lists only the new name", () => {
    const r = TestRoot.for(sn, "stor-layer-link-");
    try {
      const s = (...a: string[]) => r.ok(["-s", sn, "snapshot", ...a]);
      prepareFilled(r, sn, "base", undefined, (d) => must(`cd ${d} && mkdir lib && echo one > lib/one && echo other > lib/other`));
      s("commit", "base-c", "base");
      prepareFilled(r, sn, "top", "base-c", (d) => must(`cd ${d} && ln lib/one lib/two`));
      s("commit", "top-c", "top");
      const changed = s("changes", "top-c").trim().split("\n");
      // On overlay the link copied the file up: it is changed there, and not on a tree.
      expect(changed).toEqual(DIFF_STYLE[sn] === "upper" ? ["C /lib", "C /lib/one", "A /lib/two"] : ["C /lib", "A /lib/two"]);
      const layer = join(r.dir("layers"), "top.tar");
      s("diff", "top-c", "-o", layer);
      s("prepare", "again", "base-c");
      s("apply", "again", layer);
      s("commit", "again-c", "again");
      s("view", "again-v", "again-c");
      const mnt = r.dir("mnt-again");
      r.ok(["-s", sn, "mount", "again-v", mnt]);
      try {
        const [one, two] = [lstatSync(join(mnt, "lib/one")), lstatSync(join(mnt, "lib/two"))];
        expect([one.ino === two.ino, one.nlink, readFileSync(join(mnt, "lib/two"), "utf8")]).toEqual([true, 2, "one\n"]);
      } finally {
        must(`umount ${mnt}`);
      }
    } finally {
      r.close();
    }
  });
});

describe.each(SNAPSHOTTERS)("on %s, new names linked to unchanged files in unchanged directories", (sn) => {
  test.skipIf(!need(isRoot(), "needs root"))("diff then apply keeps the directories' times: the layer writes each directory once, with the first link into it", () => {
    const r = TestRoot.for(sn, "stor-layer-link-dir-");
    try {
      const s = (...a: string[]) => r.ok(["-s", sn, "snapshot", ...a]);
      const dirs = ["lib", "lib/deep", "lib/deep/er", "lib/side"];
      prepareFilled(r, sn, "base", undefined, (d) => must(`cd ${d} && mkdir -p lib/deep/er lib/side && echo one > lib/deep/er/one && echo a > lib/side/a && touch -d @1500000000 ${dirs.join(" ")}`));
      s("commit", "base-c", "base");
      // Two names of one file written after it (its link waits for them), and one written before
      // another file (the walk meets that file's link when the name is written already).
      prepareFilled(r, sn, "top", "base-c", (d) => must(`cd ${d} && ln lib/deep/er/one two && ln lib/deep/er/one three && ln lib/side/a alpha`));
      s("commit", "top-c", "top");
      const layer = join(r.dir("layers"), "top.tar");
      s("diff", "top-c", "-o", layer);
      const names = must(`tar -tf ${layer}`).trim().split("\n");
      expect(names.filter((n, i) => names.indexOf(n) !== i)).toEqual([]);
      s("prepare", "again", "base-c");
      s("apply", "again", layer); // replaces lib/deep/er/one and lib/side/a with links: their directories change, then are put back
      s("commit", "again-c", "again");
      const times = (key: string) => {
        s("view", `${key}-v`, key);
        const mnt = r.dir(`mnt-${key}`);
        r.ok(["-s", sn, "mount", `${key}-v`, mnt]);
        try {
          return dirs.map((p) => [p, statSync(join(mnt, p)).mtimeMs]);
        } finally {
          must(`umount ${mnt}`);
        }
      };
      expect(times("again-c")).toEqual(times("top-c"));
    } finally {
      r.close();
    }
  });
});

test.skipIf(!need(isRoot(), "needs root"))("diff -o replaces a file only once the layer is written, and never removes what it did not make", () => {
  const r = TestRoot.for("native", "stor-layer-output-");
  try {
    r.ok(["-s", "native", "snapshot", "prepare", "w"]);
    const tree = JSON.parse(r.ok(["-s", "native", "snapshot", "mounts", "--format", "json", "/t", "w"]))[0].Source as string;
    must(`head -c 3000000 /dev/urandom > ${tree}/big`);
    const out = r.dir("out");
    // A regular file is replaced whole, keeping its mode; a failed write leaves it as it was.
    const file = join(out, "layer.tar");
    writeFileSync(file, "old layer");
    chmodSync(file, 0o640);
    const id = r.ok(["-s", "native", "snapshot", "diff", "w", "-o", file]).trim();
    expect(id).toBe(`sha256:${must(`sha256sum ${file}`).split(" ")[0]}`);
    expect(lstatSync(file).mode & 0o777).toBe(0o640);
    must(`chattr +i ${out}`); // nothing can be made beside it now
    try {
      expect(r.stor(["-s", "native", "snapshot", "diff", "w", "-o", file]).code).toBe(1);
    } finally {
      must(`chattr -i ${out}`);
    }
    expect(`sha256:${must(`sha256sum ${file}`).split(" ")[0]}`).toBe(id);
    // A device, a FIFO, a link to a device: written to, and there afterwards whatever happened.
    const full = join(out, "full");
    must(`mknod ${full} c 1 7`); // as /dev/full: every write fails with ENOSPC
    expect(r.stor(["-s", "native", "snapshot", "diff", "w", "-o", full])).toMatchObject({ code: 1, stderr: expect.stringContaining("no space left on device") });
    expect(lstatSync(full).isCharacterDevice()).toBe(true);
    const link = join(out, "link");
    symlinkSync(full, link);
    expect(r.stor(["-s", "native", "snapshot", "diff", "w", "-o", link]).code).toBe(1);
    expect(lstatSync(link).isSymbolicLink()).toBe(true);
    const fifo = join(out, "fifo");
    must(`mkfifo ${fifo}`);
    const reader = Bun.spawn(["head", "-c", "10", fifo], { stdout: "ignore" });
    expect(r.stor(["-s", "native", "snapshot", "diff", "w", "-o", fifo]).code).toBe(1); // the reader went away: a broken pipe
    expect(lstatSync(fifo).isFIFO()).toBe(true);
    reader.kill();
    expect(readdirSync(out).sort()).toEqual(["fifo", "full", "layer.tar", "link"]); // no temporary file left
  } finally {
    r.close();
  }
});

test("diff -o names the file given and why it cannot be made there, with the contract's exit code", () => {
  const r = TestRoot.for("native", "stor-layer-output-");
  try {
    r.ok(["-s", "native", "snapshot", "prepare", "a"]);
    r.ok(["-s", "native", "snapshot", "commit", "b", "a"]);
    const diff = (out: string) => r.stor(["-s", "native", "snapshot", "diff", "b", "-o", out]);
    const out = r.dir("out");
    const missing = join(out, "no-such-dir", "layer.tar");
    expect(diff(missing)).toEqual({ code: 3, stdout: "", stderr: `stor: output ${missing}: directory ${join(out, "no-such-dir")} not found\n` });
    expect(diff(out)).toEqual({ code: 2, stdout: "", stderr: `stor: output ${out}: is a directory\n` });
    writeFileSync(join(out, "file"), "");
    expect(diff(join(out, "file", "layer.tar"))).toEqual({ code: 2, stdout: "", stderr: `stor: output ${join(out, "file", "layer.tar")}: a parent is not a directory\n` });
    expect(readdirSync(out)).toEqual(["file"]);
  } finally {
    r.close();
  }
});

test("diff -o stopped by a signal leaves no temporary file, and dies of that signal", async () => {
  const r = TestRoot.for("native", "stor-layer-signal-");
  try {
    r.ok(["-s", "native", "snapshot", "prepare", "w"]);
    // A sparse file of 20 GiB: diff writes it out in full, as containerd does, so it takes a while.
    must(`truncate -s 20G ${join(r.path, "snapshots/native/snapshots/1/big")}`);
    const out = r.dir("out");
    for (const signal of ["SIGTERM", "SIGINT", "SIGQUIT"] as const) {
      const p = Bun.spawn([STOR, "--root", r.path, "--config", r.config, "-s", "native", "snapshot", "diff", "w", "-o", join(out, "layer.tar")], { stderr: "ignore" });
      while (readdirSync(out).length === 0) await Bun.sleep(10); // the temporary file, being written
      p.kill(signal);
      await p.exited;
      expect([p.exitCode, p.signalCode]).toEqual([null, signal]);
      expect(readdirSync(out)).toEqual([]);
    }
  } finally {
    r.close();
  }
});

test("diff -o finds the changes before it makes a file: a signal meanwhile ends it at once, as without -o", async () => {
  const r = TestRoot.for("native", "stor-layer-early-signal-");
  try {
    r.ok(["-s", "native", "snapshot", "prepare", "w"]);
    must(`mkdir ${join(r.path, "snapshots/native/snapshots/1/sub")}`);
    const out = r.dir("out");
    // Stopped in the walk that finds the changes: one pass, which a signal's handler would wait for.
    const p = Bun.spawn([STOR, "--root", r.path, "--config", r.config, "-s", "native", "snapshot", "diff", "w", "-o", join(out, "layer.tar")], {
      env: { ...process.env, STOR_FAILPOINT: "changes:descend+stop" },
      stderr: "ignore",
    });
    await stopped(p.pid);
    expect(readdirSync(out)).toEqual([]);
    p.kill("SIGTERM");
    p.kill("SIGCONT");
    await p.exited;
    expect([p.exitCode, p.signalCode]).toEqual([null, "SIGTERM"]);
    expect(readdirSync(out)).toEqual([]);
  } finally {
    r.close();
  }
});

/**
 * `snapshot diff -o` of native snapshot `w`, whose tree `fill` makes, stopped at failpoint `point`
 * while `change` changes the tree, as a container writing in it could; its result, once it is
 * checked that no output, nor its temporary file, was left.
 */
async function diffWhileChanged(prefix: string, fill: (tree: string) => void, point: string, change: (tree: string, r: TestRoot) => void): Promise<Result> {
  const r = TestRoot.for("native", prefix);
  try {
    r.ok(["-s", "native", "snapshot", "prepare", "w"]);
    const tree = join(r.path, "snapshots/native/snapshots/1");
    fill(tree);
    const out = join(r.dir("out"), "layer.tar");
    const res = await r.stoppedAt(["-s", "native", "snapshot", "diff", "w", "-o", out], point, () => change(tree, r));
    expect(readdirSync(dirname(out))).toEqual([]);
    return res;
  } finally {
    r.close();
  }
}

test("diff of a tree whose directory is swapped for a symlink while the layer is written fails, and reads nothing through the link", async () => {
  // Stopped before it opens d/f, the one file.
  const res = await diffWhileChanged("stor-layer-swap-", (tree) => must(`mkdir ${tree}/d && echo mine > ${tree}/d/f`), "diff:file", (tree, r) => {
    const victim = r.dir("victim");
    writeFileSync(join(victim, "f"), "host secret\n");
    must(`mv ${tree}/d ${tree}/moved && ln -s ${victim} ${tree}/d`);
  });
  expect([res.code, res.stderr]).toEqual([1, "stor: read /d/f: a symlink is on its way: the tree changed while the layer was written\n"]);
});

// The file the walk saw is the only one opened: a FIFO would block the open for ever (and the
// signals that remove the temporary file with it), a device would give the host's bytes.
for (const [what, make] of [["a FIFO", "mkfifo"], ["a device node (/dev/zero's)", "mknod -m 644"]] as const) {
  test(`diff of a tree whose file is swapped for ${what} while the layer is written fails, and opens nothing there`, async () => {
    const swap = (tree: string) => must(`rm ${tree}/f && ${make} ${tree}/f${make === "mkfifo" ? "" : " c 1 5"}`);
    const res = await diffWhileChanged("stor-layer-swap-", (tree) => must(`echo mine > ${tree}/f`), "diff:file", swap);
    expect([res.code, res.stderr]).toEqual([1, "stor: read /f: another file is there now: the tree changed while the layer was written\n"]);
  });
}

test("native: the diff of a child that changed nothing is empty, hardlinked files in its parent and all, as containerd's", () => {
  const r = TestRoot.for("native", "stor-layer-hl-");
  try {
    prepareFilled(r, "native", "p", undefined, (d) => must(`mkdir ${d}/a ${d}/b && echo x > ${d}/a/one && ln ${d}/a/one ${d}/b/two`));
    r.ok(["-s", "native", "snapshot", "commit", "base", "p"]);
    r.ok(["-s", "native", "snapshot", "prepare", "child", "base"]);
    expect(r.ok(["-s", "native", "snapshot", "changes", "child"])).toBe("");
    const out = join(r.dir("out"), "layer.tar");
    r.ok(["-s", "native", "snapshot", "diff", "child", "-o", out]);
    expect(readFileSync(out)).toEqual(Buffer.alloc(1024)); // the end of the archive alone
  } finally {
    r.close();
  }
});

test("diff of a tree whose directory is removed while it is walked fails naming the entry as the layer names it", async () => {
  const res = await diffWhileChanged("stor-layer-gone-", (tree) => must(`mkdir ${tree}/sub && echo a > ${tree}/sub/a`), "changes:descend", (tree) => must(`rm -r ${tree}/sub`));
  expect([res.code, res.stderr]).toEqual([1, "stor: read /sub: it is gone: the tree changed while it was read\n"]);
});

test("diff of a snapshot removed while it writes the layer: not found, as if the rm came first, and no output left", async () => {
  const diff = await diffWhileChanged("stor-layer-rm-", (tree) => must(`mkdir ${tree}/d && echo a > ${tree}/d/f`), "diff:file", (_, r) => r.ok(["-s", "native", "snapshot", "rm", "w"]));
  expect([diff.code, diff.stderr]).toEqual([3, 'stor: snapshot "w": not found\n']);
});

test("diff -o whose output cannot be written (a full disk) names the output", () => {
  const r = TestRoot.for("native", "stor-layer-full-");
  try {
    prepareFilled(r, "native", "w", undefined, (d) => writeFileSync(join(d, "f"), Buffer.alloc(200_000, 1)));
    expect(r.stor(["-s", "native", "snapshot", "diff", "w", "-o", "/dev/full"])).toEqual({ code: 1, stdout: "", stderr: "stor: output /dev/full: no space left on device\n" });
  } finally {
    r.close();
  }
});

test("a hardlink whose target leads outside is refused naming the link and its target", () => {
  const r = TestRoot.for("native", "stor-layer-hl-");
  try {
    r.ok(["-s", "native", "snapshot", "prepare", "w"]);
    const layer = join(r.dir("layers"), "hl.tar");
    writeFileSync(layer, tar([{ name: "hl", type: "1", linkname: "../../etc/passwd" }]));
    expect(r.stor(["-s", "native", "snapshot", "apply", "w", layer])).toEqual({
      code: 2,
      stdout: "",
      stderr: `stor: apply ${layer} to snapshot "w": tar stream: hardlink "hl": its target "../../etc/passwd" leads outside the snapshot\n`,
    });
  } finally {
    r.close();
  }
});

for (const sn of ["native", "overlay"] as const) {
  test(`${sn}: changes of a tree whose directory is swapped for a symlink while it is walked lists nothing through the link`, async () => {
    const r = TestRoot.for(sn, "stor-layer-walk-");
    try {
      r.ok(["-s", sn, "snapshot", "prepare", "w"]);
      const tree = join(r.path, `snapshots/${sn}/snapshots/1`, DIFF_STYLE[sn] === "upper" ? "fs" : "");
      must(`mkdir ${tree}/a ${tree}/d && echo x > ${tree}/a/x && echo f > ${tree}/d/f`);
      const victim = r.dir("victim");
      writeFileSync(join(victim, "secret"), "host\n");
      // Stopped as it is about to go into d (its second directory), once d was seen to be one.
      const res = await r.stoppedAt(["-s", sn, "snapshot", "changes", "w"], "changes:descend@2", () => must(`mv ${tree}/d ${tree}/moved && ln -s ${victim} ${tree}/d`));
      expect(res).toEqual({ code: 0, stdout: "A /a\nA /a/x\nA /d\n", stderr: "" });
    } finally {
      r.close();
    }
  });
}
