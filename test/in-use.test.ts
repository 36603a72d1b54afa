/**
 * Nothing in use is taken away: restore on a live host, rm of a mounted snapshot or volume, a
 * snapshot mounted twice on one target. Mounts are real; "in use" is what mountinfo and the
 * references say, whoever made the mount.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, readFileSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { Database } from "bun:sqlite";
import { STOR, TestRoot, isRoot, must, sh, simulateReboot } from "./helpers.ts";
import { tar } from "./layer-helpers.ts";
import { openSnapshots } from "../src/services.ts";
import { loadConfig } from "../src/config.ts";

const CI = process.env.CI === "true";
const root = isRoot();
if (CI && !root) throw new Error("required under CI: root, for real mounts");

let r: TestRoot | undefined;
afterEach(() => {
  r?.close();
  r = undefined;
});

const mountPoints = () =>
  readFileSync("/proc/self/mountinfo", "utf8")
    .split("\n")
    .map((l) => l.split(" ")[4])
    .filter((p): p is string => p !== undefined);

/**
 * A process in a mount namespace of its own (private: nothing it mounts shows here), as a
 * container or a service with private mounts is, that has run `script` (its mounts) and waits;
 * its namespace as lsns names it (`mnt:[N]`).
 */
async function otherNamespace(script: string): Promise<{ pid: number; namespace: string; stop: () => Promise<void> }> {
  const ready = join(r!.dir("ns-ready"), "ready");
  const holder = Bun.spawn(["unshare", "-m", "--propagation", "private", "sh", "-c", `${script} && touch ${ready} && cd / && exec sleep 60`], { stderr: "inherit" });
  while (!existsSync(ready)) {
    if (holder.exitCode !== null) throw new Error(`unshare ${script}: exit ${holder.exitCode}`);
    await Bun.sleep(10);
  }
  const stop = async () => {
    holder.kill();
    await holder.exited;
  };
  return { pid: holder.pid, namespace: readlinkSync(`/proc/${holder.pid}/ns/mnt`), stop };
}

/** A tmpfs volume with a file in it, referenced by `ref`; returns its data directory. */
function liveVolume(t: TestRoot, name: string, ref: string): string {
  t.ok(["volume", "create", "-o", "type=tmpfs", "-o", "device=tmpfs", "-o", "o=size=4m", name]);
  const data = t.ok(["volume", "mount", name, ref]).trim();
  writeFileSync(join(data, "precious"), "in use");
  return data;
}

/** What `restore --force` says on stderr before it acts. */
const FORCE_WARNING = "restore --force: references taken in this boot are released and unused volumes unmounted, whatever still relies on them (dangerous on a live host)";

describe("restore on a live host", () => {
  test.skipIf(!root)("a second restore in the same boot keeps references and mounts; says what it kept and would do", () => {
    r = new TestRoot();
    const data = liveVolume(r, "livevol", "container-1");
    const first = r.stor(["restore"]);
    expect(first.code).toBe(0);
    expect(first.stdout).toBe('kept volume "livevol": references container-1 (in use in this boot)\n');
    expect(readFileSync(join(data, "precious"), "utf8")).toBe("in use");
    expect(mountPoints()).toContain(data);
    // The volume stays in use: rm is refused.
    expect(r.stor(["volume", "rm", "livevol"]).code).toBe(5);
  });

  test.skipIf(!root)("a mount below the root without references is reported, not unmounted, in the same boot", () => {
    r = new TestRoot();
    r.ok(["volume", "create", "-o", "type=tmpfs", "-o", "device=tmpfs", "-o", "o=size=4m", "orphanmount"]);
    const data = join(r.path, "volumes/orphanmount/_data");
    must(`mount -t tmpfs tmpfs ${data}`);
    writeFileSync(join(data, "precious"), "in use");
    expect(r.ok(["restore"])).toBe(`would unmount ${data}: not the first restore of this boot (--force does it)\n`);
    expect(readFileSync(join(data, "precious"), "utf8")).toBe("in use");
  });

  test.skipIf(!root)("at boot, what an administrator mounted below the root stays: a disk on a volume's data, a scratch filesystem", () => {
    r = new TestRoot();
    r.ok(["volume", "create", "bigvol"]); // a plain volume, put on a disk of its own
    const data = join(r.path, "volumes/bigvol/_data");
    must(`mount -t tmpfs disk ${data}`);
    writeFileSync(join(data, "important"), "db files");
    const scratch = r.dir("scratch");
    must(`mount -t tmpfs scratch ${scratch}`);
    // A host directory bound into a native snapshot's tree, for its container to share.
    r.ok(["snapshot", "-s", "native", "prepare", "app"]);
    const shared = join(r.path, "snapshots/native/snapshots/1/shared");
    mkdirSync(shared);
    must(`mount --bind ${r.dir("host-share")} ${shared}`);
    simulateReboot(r.path); // as stor-restore.service runs, after local-fs.target mounted them
    expect(r.ok(["restore"])).toBe("");
    expect(mountPoints()).toContain(data);
    expect(mountPoints()).toContain(scratch);
    expect(mountPoints()).toContain(shared);
    expect(r.ok(["volume", "mount", "bigvol", "c1"]).trim()).toBe(data);
    expect(readFileSync(join(data, "important"), "utf8")).toBe("db files");
  });

  test.skipIf(!root)("at boot, a volume's mount whose `volume mount` is under way (its lock held, its reference not yet recorded) stays", () => {
    r = new TestRoot();
    r.ok(["volume", "create", "-o", "type=tmpfs", "-o", "device=tmpfs", "-o", "o=size=4m", "tv"]);
    const data = join(r.path, "volumes/tv/_data");
    simulateReboot(r.path);
    // Where a `volume mount` is between its mount and its reference: the device mounted, the lock held.
    must(`mount -t tmpfs tmpfs ${data}`);
    const held = sh(["flock", "-x", join(r.path, "volumes/.meta/locks/tv"), STOR, "--root", r.path, "--config", r.config, "restore"]);
    expect([held.code, held.stdout, held.stderr]).toEqual([0, `left ${data} mounted: busy\n`, ""]);
    expect(mountPoints()).toContain(data);
    // Killed there, nothing holds it: the next boot-time restore unmounts it.
    simulateReboot(r.path);
    expect(r.ok(["restore"])).toBe(`unmounted ${data}\n`);
    expect(mountPoints()).not.toContain(data);
  });

  test("each thing restore reports is one line, whatever the names in it hold", () => {
    r = new TestRoot();
    r.ok(["volume", "create", "vv"]);
    r.ok(["volume", "mount", "vv", "--", "a\nb\x1b[31m"]);
    expect(r.ok(["restore"])).toBe('kept volume "vv": references a\\nb\\x1b[31m (in use in this boot)\n');
  });

  test("a restore waits for one under way, and does not take it for a stor serve", async () => {
    r = new TestRoot();
    r.ok(["volume", "create", "vv"]);
    // As a restore under way holds them: its own lock, and the serve lock exclusively.
    const other = Bun.spawn(["flock", join(r.path, "restore.lock"), "flock", join(r.path, "serve.lock"), "sleep", "1"]);
    while (sh(["flock", "-n", join(r.path, "serve.lock"), "true"]).code === 0) await Bun.sleep(10); // until both are held
    const res = r.stor(["restore", "--force", "--format", "json"]);
    await other.exited;
    expect([res.code, res.stderr]).toEqual([0, `stor: warn: ${FORCE_WARNING}\n`]);
    expect(JSON.parse(res.stdout).ServeRunning).toBe(false);
  });

  test.skipIf(!root)("after a reboot, a reference taken in the new boot before restore ran is kept", () => {
    r = new TestRoot();
    liveVolume(r, "old", "before-reboot");
    simulateReboot(r.path);
    const data = liveVolume(r, "fresh", "after-reboot");
    const out = r.ok(["restore"]);
    expect(out).toContain('released volume "old": references before-reboot');
    expect(out).toContain('kept volume "fresh": references after-reboot (in use in this boot)');
    expect(readFileSync(join(data, "precious"), "utf8")).toBe("in use");
  });

  test.skipIf(!root)("--force releases this boot's references, but not of a volume a process uses; never detaches a busy mount", async () => {
    r = new TestRoot();
    const busy = liveVolume(r, "busyvol", "container-1");
    const idle = liveVolume(r, "idlevol", "container-2");
    // A process working in the volume, as a container would.
    const holder = Bun.spawn(["sh", "-c", "exec sleep 30"], { cwd: busy });
    try {
      const forced = r.stor(["restore", "--force"]);
      expect(forced.stderr).toBe(`stor: warn: ${FORCE_WARNING}\n`);
      const out = forced.stdout;
      expect(out).toContain(`kept volume "busyvol": references container-1 (in use by pid ${holder.pid} sleep (cwd))`);
      expect(out).toContain('released volume "idlevol": references container-2');
      expect(out).toContain(`unmounted ${idle}`);
      expect(readFileSync(join(busy, "precious"), "utf8")).toBe("in use");
      expect(mountPoints()).toContain(busy);
      expect(r.stor(["volume", "rm", "busyvol"]).code).toBe(5);
    } finally {
      holder.kill();
      await holder.exited;
    }
  });

  test.skipIf(!root)("a volume bound into another mount namespace (a container's) keeps its references under --force", async () => {
    r = new TestRoot();
    r.ok(["volume", "create", "plain"]);
    const data = r.ok(["volume", "mount", "plain", "container-1"]).trim();
    writeFileSync(join(data, "precious"), "in use");
    const inside = r.dir("container-root");
    // The container's view: the volume bound in a mount namespace of its own, invisible here.
    const holder = Bun.spawn(["unshare", "-m", "--propagation", "private", "sh", "-c", `mount --bind ${data} ${inside} && cd / && exec sleep 30`]);
    try {
      while (!readFileSync(`/proc/${holder.pid}/mountinfo`, "utf8").includes(inside)) await Bun.sleep(10);
      const out = r.ok(["restore", "--force"]);
      expect(out).toContain(`kept volume "plain": references container-1 (in use by pid ${holder.pid} sleep (mount ${inside}))`);
      expect(r.stor(["volume", "rm", "plain"]).code).toBe(5);
      expect(readFileSync(join(data, "precious"), "utf8")).toBe("in use");
    } finally {
      holder.kill();
      await holder.exited;
    }
  });

  test.skipIf(!root)("a running serve (holding serve.lock) makes --force refuse and keeps everything", async () => {
    r = new TestRoot();
    const data = liveVolume(r, "servedvol", "container-1");
    simulateReboot(r.path);
    const lock = join(r.path, "serve.lock");
    const holder = Bun.spawn(["flock", "-s", lock, "sleep", "30"]);
    try {
      while (sh(["flock", "-n", "-x", lock, "true"]).code === 0) await Bun.sleep(10);
      const forced = r.stor(["restore", "--force"]);
      expect([forced.code, forced.stdout, forced.stderr]).toEqual([
        5,
        "",
        `stor: restore --force of ${r.path}: a stor serve is running on it (it holds serve.lock); stop it first\n`,
      ]);
      // Even in a new boot, nothing a serve may hold is touched.
      const out = r.ok(["restore"]);
      expect(out.split("\n")[0]).toBe("stor serve is running on this root: nothing it may hold was touched");
      expect(out).toContain('released volume "servedvol": references container-1'); // of an earlier boot: held by nothing alive
      expect(readFileSync(join(data, "precious"), "utf8")).toBe("in use");
      expect(mountPoints()).toContain(data);
    } finally {
      holder.kill();
      await holder.exited;
    }
  });
});

for (const sn of ["overlay", "native"]) {
  describe(`${sn}: a mounted snapshot`, () => {
    test.skipIf(!root)("stor mount and unmount refuse a target inside the root or holding it, and change no mount", () => {
      r = new TestRoot();
      r.ok(["snapshot", "-s", sn, "prepare", "k1"]);
      const dirs = join(r.path, "snapshots", sn, "snapshots");
      const link = join(r.dir("links"), "to-dirs");
      symlinkSync(dirs, link);
      const before = mountPoints();
      for (const [target, why] of [
        [dirs, `is inside stor's root ${r.path}`],
        [link, `is inside stor's root ${r.path}`], // through a symlink too
        [r.path, `is inside stor's root ${r.path}`],
        [dirname(r.path), `holds stor's root ${r.path}`],
      ] as const) {
        expect(r.stor(["-s", sn, "mount", "k1", target])).toEqual({ code: 2, stdout: "", stderr: `stor: target ${target}: ${why}\n` });
      }
      expect(mountPoints()).toEqual(before);
      // Nor does stor unmount take off what is mounted there: a referenced volume's device stays.
      r.ok(["volume", "create", "-o", "type=tmpfs", "-o", "device=tmpfs", "tv"]);
      const data = r.ok(["volume", "mount", "tv", "c1"]).trim();
      expect(r.stor(["unmount", data])).toEqual({ code: 2, stdout: "", stderr: `stor: target ${data}: is inside stor's root ${r.path}\n` });
      expect(mountPoints()).toContain(data);
      r.ok(["volume", "unmount", "tv", "c1"]);
      expect(r.ok(["snapshot", "-s", sn, "cleanup"])).toBe("");
      expect(r.ok(["snapshot", "-s", sn, "ls"])).toContain("k1 ");
    });

    test.skipIf(!root)("rm is refused with exit 5 naming the mount point, and works once unmounted", () => {
      r = new TestRoot();
      const target = r.dir("target");
      r.ok(["snapshot", "-s", sn, "prepare", "k1"]);
      r.ok(["-s", sn, "mount", "k1", target]);
      writeFileSync(join(target, "file"), "data");
      const res = r.stor(["snapshot", "-s", sn, "rm", "k1"]);
      expect([res.code, res.stdout, res.stderr]).toEqual([5, "", `stor: snapshot "k1": is mounted at ${target}\n`]);
      expect(readFileSync(join(target, "file"), "utf8")).toBe("data");
      r.ok(["unmount", target]);
      r.ok(["snapshot", "-s", sn, "rm", "k1"]);
    });

    test.skipIf(!root)("rm is refused while the snapshot is mounted only in another mount namespace (a container's); its data stays", async () => {
      r = new TestRoot();
      r.ok(["snapshot", "-s", sn, "prepare", "base-w"]);
      r.ok(["snapshot", "-s", sn, "commit", "base", "base-w"]);
      r.ok(["snapshot", "-s", sn, "prepare", "top", "base"]); // an overlay of two layers
      r.ok(["snapshot", "-s", sn, "prepare", "single"]); // a bind of one
      r.ok(["snapshot", "-s", sn, "prepare", "free", "base"]);
      const [t1, t2] = [r.dir("t1"), r.dir("t2")];
      const stor = `${STOR} --root ${r.path} --config ${r.config} -s ${sn}`;
      const ns = await otherNamespace(`${stor} mount top ${t1} && ${stor} mount single ${t2} && echo data > ${t1}/file && echo data > ${t2}/file`);
      try {
        expect(mountPoints()).not.toContain(t1); // not mounted here
        for (const [key, target] of [["top", t1], ["single", t2]] as const) {
          const res = r.stor(["snapshot", "-s", sn, "rm", key]);
          expect([res.code, res.stdout, res.stderr]).toEqual([5, "", `stor: snapshot "${key}": is mounted at ${target} (in mount namespace ${ns.namespace})\n`]);
          expect(readFileSync(`/proc/${ns.pid}/root${target}/file`, "utf8")).toBe("data\n");
        }
        // The namespace's copies of the host's other mounts are no use of a snapshot.
        expect(r.stor(["snapshot", "-s", sn, "rm", "free"]).code).toBe(0);
        expect(r.stor(["snapshot", "-s", sn, "rm", "base"]).code).toBe(5); // its children: "has children"
      } finally {
        await ns.stop();
      }
      r.ok(["snapshot", "-s", sn, "rm", "top"]);
      r.ok(["snapshot", "-s", sn, "rm", "single"]);
    });

    test.skipIf(!root)("commit is refused with exit 5 while the snapshot is mounted, here or in another mount namespace; works once unmounted", async () => {
      r = new TestRoot();
      const target = r.dir("target");
      r.ok(["snapshot", "-s", sn, "prepare", "k1"]);
      r.ok(["-s", sn, "mount", "k1", target]);
      writeFileSync(join(target, "file"), "data");
      let res = r.stor(["snapshot", "-s", sn, "commit", "c1", "k1"]);
      expect([res.code, res.stdout, res.stderr]).toEqual([5, "", `stor: snapshot "k1": is mounted at ${target}\n`]);
      r.ok(["unmount", target]);
      const stor = `${STOR} --root ${r.path} --config ${r.config} -s ${sn}`;
      const ns = await otherNamespace(`${stor} mount k1 ${target}`);
      try {
        res = r.stor(["snapshot", "-s", sn, "commit", "c1", "k1"]);
        expect([res.code, res.stdout, res.stderr]).toEqual([5, "", `stor: snapshot "k1": is mounted at ${target} (in mount namespace ${ns.namespace})\n`]);
        expect(r.ok(["snapshot", "-s", sn, "info", "k1"])).toContain('"Kind": "Active"');
      } finally {
        await ns.stop();
      }
      r.ok(["snapshot", "-s", sn, "commit", "c1", "k1"]);
      expect(r.ok(["snapshot", "-s", sn, "info", "c1"])).toContain('"Kind": "Committed"');
    });

    test.skipIf(!root)("a layered snapshot mounted by hand (not through stor) is found too", () => {
      r = new TestRoot();
      const target = r.dir("target");
      r.ok(["snapshot", "-s", sn, "prepare", "base-w"]);
      r.ok(["snapshot", "-s", sn, "commit", "base", "base-w"]);
      r.ok(["snapshot", "-s", sn, "prepare", "top", "base"]);
      const [m] = JSON.parse(r.ok(["snapshot", "-s", sn, "prepare", "--mounts", "top2", "base"]));
      must(`mount -t ${m.Type} ${m.Source} ${target} -o ${m.Options.join(",")}`);
      expect(r.stor(["snapshot", "-s", sn, "rm", "top2"]).code).toBe(5);
      expect(r.stor(["snapshot", "-s", sn, "rm", "top"]).code).toBe(0); // not mounted: removable
    });

    test.skipIf(!root)("a snapshot mounted through a symlink to the root is found, through the link and through the root", () => {
      r = new TestRoot();
      const link = `${r.path}-link`;
      symlinkSync(r.path, link);
      try {
        const viaLink = (...args: string[]) => sh([STOR, "--root", link, "--config", r!.config, ...args]);
        for (const args of [["prepare", "base-w"], ["commit", "base", "base-w"], ["prepare", "top", "base"]]) expect(viaLink("snapshot", "-s", sn, ...args).code).toBe(0);
        const target = r.dir("target");
        expect(viaLink("-s", sn, "mount", "top", target).code).toBe(0);
        expect(viaLink("snapshot", "-s", sn, "rm", "top").code).toBe(5);
        expect(r.stor(["snapshot", "-s", sn, "rm", "top"]).code).toBe(5);
        r.ok(["unmount", target]);
        expect(viaLink("snapshot", "-s", sn, "rm", "top").code).toBe(0);
      } finally {
        rmSync(link);
      }
    });

    test.skipIf(!root)("mount of the same snapshot on the same target again is exit 4; nothing stacks", () => {
      r = new TestRoot();
      const target = r.dir("target");
      r.ok(["snapshot", "-s", sn, "prepare", "k1"]);
      r.ok(["-s", sn, "mount", "k1", target]);
      const res = r.stor(["-s", sn, "mount", "k1", target]);
      expect([res.code, res.stderr]).toEqual([4, `stor: snapshot "k1": already mounted on ${target}\n`]);
      expect(mountPoints().filter((p) => p === target)).toHaveLength(1);
      // Another snapshot may still go there, as mount(8) would stack it.
      r.ok(["snapshot", "-s", sn, "prepare", "k2"]);
      r.ok(["-s", sn, "mount", "k2", target]);
      expect(mountPoints().filter((p) => p === target)).toHaveLength(2);
    });
  });
}

describe("overlay: a layer given through a symlink of another name", () => {
  test.skipIf(!root)("is found, though mountinfo never names the snapshot's directory: rm is refused", () => {
    r = new TestRoot();
    r.ok(["snapshot", "-s", "overlay", "prepare", "base-w"]);
    r.ok(["snapshot", "-s", "overlay", "commit", "base", "base-w"]);
    const [m] = JSON.parse(r.ok(["snapshot", "-s", "overlay", "prepare", "--mounts", "top", "base"])) as { Options: string[] }[];
    const dir = dirname(m!.Options.find((o) => o.startsWith("upperdir="))!.slice("upperdir=".length));
    const alias = join(r.path, "alias");
    symlinkSync(dir, alias);
    const options = m!.Options.map((o) => o.replaceAll(`${dir}/`, `${alias}/`)).join(",");
    expect(options).not.toContain(`/${basename(dir)}/`);
    const target = r.dir("target");
    must(`mount -t overlay overlay ${target} -o ${options}`);
    expect(r.stor(["snapshot", "-s", "overlay", "rm", "top"]).code).toBe(5);
    must(`umount ${target}`);
    r.ok(["snapshot", "-s", "overlay", "rm", "top"]);
  });
});

describe("overlay: mounted through a bind mount of the root (another path to the same directories)", () => {
  for (const [mountVia, rmVia] of [["alias", "root"], ["root", "alias"]] as const) {
    test.skipIf(!root)(`mounted through the ${mountVia}, rm through the ${rmVia} is refused (exit 5) and the upper directory stays`, () => {
      r = new TestRoot();
      const alias = r.dir("alias");
      must(`mount --bind ${r.path} ${alias}`);
      const via = (where: string, ...args: string[]) => sh([STOR, "--root", where === "alias" ? alias : r!.path, "--config", r!.config, ...args]);
      r.ok(["snapshot", "-s", "overlay", "prepare", "base-w"]);
      r.ok(["snapshot", "-s", "overlay", "commit", "base", "base-w"]);
      r.ok(["snapshot", "-s", "overlay", "prepare", "top", "base"]);
      const target = r.dir("target");
      expect(via(mountVia, "-s", "overlay", "mount", "top", target).code).toBe(0);
      writeFileSync(join(target, "data"), "precious");
      const res = via(rmVia, "snapshot", "-s", "overlay", "rm", "top");
      expect([res.code, res.stderr]).toEqual([5, `stor: snapshot "top": is mounted at ${target}\n`]);
      // The parent is in use too: cleanup and restore leave everything.
      expect(via(rmVia, "snapshot", "-s", "overlay", "rm", "base").code).toBe(5);
      expect(readFileSync(join(target, "data"), "utf8")).toBe("precious");
      must(`umount ${target}`);
      expect(via(rmVia, "snapshot", "-s", "overlay", "rm", "top").code).toBe(0);
    });
  }

  test.skipIf(!root)("an orphan directory mounted through the alias is left by cleanup", () => {
    r = new TestRoot();
    const alias = r.dir("alias");
    must(`mount --bind ${r.path} ${alias}`);
    r.ok(["snapshot", "-s", "overlay", "prepare", "made"]); // makes the snapshotter's directories
    r.ok(["snapshot", "-s", "overlay", "rm", "made"]);
    const dirs = "snapshots/overlay/snapshots";
    for (const d of ["98/fs", "99/fs", "99/work"]) mkdirSync(join(r.path, dirs, d), { recursive: true });
    const target = r.dir("target");
    must(`mount -t overlay overlay ${target} -o lowerdir=${alias}/${dirs}/98/fs,upperdir=${alias}/${dirs}/99/fs,workdir=${alias}/${dirs}/99/work`);
    writeFileSync(join(target, "data"), "precious");
    expect(r.ok(["snapshot", "-s", "overlay", "cleanup"])).toBe("");
    expect(readFileSync(join(target, "data"), "utf8")).toBe("precious");
    must(`umount ${target}`);
    expect(r.ok(["snapshot", "-s", "overlay", "cleanup"]).split("\n").filter(Boolean).sort()).toEqual(["98", "99"]);
  });

  test.skipIf(!root)("a filesystem mounted inside a snapshot through the alias is found: rm is refused", () => {
    r = new TestRoot();
    const alias = r.dir("alias");
    must(`mount --bind ${r.path} ${alias}`);
    r.ok(["snapshot", "-s", "native", "prepare", "k"]);
    mkdirSync(join(r.path, "snapshots/native/snapshots/1/sub"));
    const inside = join(alias, "snapshots/native/snapshots/1/sub");
    must(`mount -t tmpfs tmpfs ${inside}`);
    writeFileSync(join(inside, "data"), "precious");
    const res = r.stor(["snapshot", "-s", "native", "rm", "k"]);
    expect([res.code, res.stderr]).toEqual([5, `stor: snapshot "k": is mounted at ${inside}\n`]);
    expect(readFileSync(join(inside, "data"), "utf8")).toBe("precious");
  });
});

describe("overlay: mounted through the relative-path fallback (options longer than a page, or no new mount API)", () => {
  test.skipIf(!root)("its layers, relative in mountinfo, still name the snapshots: rm is refused while it is mounted", () => {
    r = new TestRoot();
    r.ok(["snapshot", "-s", "overlay", "prepare", "base-w"]);
    r.ok(["snapshot", "-s", "overlay", "commit", "base", "base-w"]);
    r.ok(["snapshot", "-s", "overlay", "prepare", "top", "base"]);
    const target = r.dir("target");
    r.ok(["-s", "overlay", "mount", "top", target], { env: { STOR_MOUNT_API: "legacy" } });
    const line = readFileSync("/proc/self/mountinfo", "utf8").split("\n").find((l) => l.split(" ")[4] === target)!;
    expect(line).toContain("upperdir=2/fs"); // relative, as given
    const refused = r.stor(["snapshot", "-s", "overlay", "rm", "top"]);
    expect([refused.code, refused.stderr]).toEqual([5, `stor: snapshot "top": is mounted at ${target}\n`]);
    r.ok(["unmount", target]);
    r.ok(["snapshot", "-s", "overlay", "rm", "top"]);
  });
});

describe("an overlay with data-only layers (lowerdir=A::B) elsewhere on the host", () => {
  test.skipIf(!root)("takes nothing of stor's out of use: rm of a snapshot and a volume it does not use succeed", () => {
    r = new TestRoot();
    r.ok(["snapshot", "-s", "overlay", "prepare", "free"]);
    r.ok(["volume", "create", "free"]);
    const [lower, data, upper, work, target] = ["lower", "data", "upper", "work", "target"].map((d) => r!.dir(d));
    must(`mount -t overlay overlay ${target} -o lowerdir=${lower}::${data},upperdir=${upper},workdir=${work}`);
    try {
      const line = readFileSync("/proc/self/mountinfo", "utf8").split("\n").find((l) => l.split(" ")[4] === target)!;
      expect(line).toContain(`lowerdir=${lower}::${data}`); // the kernel shows the data-only layer so
      expect(r.ok(["volume", "rm", "free"])).toBe("free\n");
      r.ok(["snapshot", "-s", "overlay", "rm", "free"]);
    } finally {
      must(`umount ${target}`);
    }
  });
});

describe("stor mount against a concurrent rm", () => {
  test.skipIf(!root)("mounts under the store's write lock: a snapshot removed while it waited is not mounted (exit 3)", async () => {
    r = new TestRoot();
    r.ok(["snapshot", "-s", "native", "prepare", "m"]);
    const target = r.dir("target");
    // Another writer holds the lock, as rm does from its check of what is mounted to its delete.
    const db = new Database(join(r.path, "snapshots/native/metadata.db"));
    db.run("BEGIN IMMEDIATE");
    const proc = Bun.spawn([STOR, "--root", r.path, "--config", r.config, "-s", "native", "mount", "m", target], { stdout: "pipe", stderr: "pipe" });
    try {
      await Bun.sleep(400);
      expect([proc.exitCode, mountPoints().includes(target)]).toEqual([null, false]); // waiting, nothing mounted
      db.run("DELETE FROM snapshots WHERE key = 'm'");
      db.run("COMMIT");
      expect(await proc.exited).toBe(3);
      expect(await new Response(proc.stderr).text()).toBe('stor: snapshot "m": not found\n');
      expect(mountPoints()).not.toContain(target);
    } finally {
      proc.kill();
      db.close();
      if (mountPoints().includes(target)) must(`umount ${target}`);
    }
  });
});

describe.each(["overlay", "native"])("a snapshot a layer is being applied to, on %s", (sn) => {
  test.skipIf(!root)("commit and rm are refused (exit 5) until the apply ends; then the commit records what it wrote", async () => {
    r = new TestRoot();
    r.ok(["snapshot", "-s", sn, "prepare", "a"]);
    const layer = tar([{ name: "d/", type: "5", mode: 0o755 }, { name: "d/f", data: "x".repeat(1 << 20) }]);
    // The layer comes through a pipe, half of it first: the apply is under way, and waits for the rest.
    const proc = Bun.spawn([STOR, "--root", r.path, "--config", r.config, "-s", sn, "snapshot", "apply", "a", "-"], { stdin: "pipe", stdout: "pipe", stderr: "pipe" });
    try {
      proc.stdin.write(layer.subarray(0, layer.length / 2));
      await proc.stdin.flush();
      // Under way once it holds the snapshot's directory locked (the only snapshot: id 1).
      const dir = join(r.path, "snapshots", sn, "snapshots", "1");
      for (let i = 0; i < 1000 && sh(["flock", "-n", dir, "true"]).code === 0; i++) await Bun.sleep(10);
      expect(proc.exitCode).toBeNull();
      for (const args of [["commit", "c", "a"], ["rm", "a"]]) {
        const refused = r.stor(["-s", sn, "snapshot", ...args]);
        expect([refused.code, refused.stderr]).toEqual([5, 'stor: snapshot "a": is being applied to (a layer is being written into it)\n']);
      }
      proc.stdin.write(layer.subarray(layer.length / 2));
      await proc.stdin.end();
      expect(await proc.exited).toBe(0);
      r.ok(["-s", sn, "snapshot", "commit", "c", "a"]);
      // Measured once the apply had written it all: the 1 MiB file, and the root, d and d/f.
      const [, size, inodes] = r.ok(["-s", sn, "snapshot", "usage", "-b", "c"]).trim().split("\n")[1]!.trim().split(/\s+/);
      expect(Number(size)).toBeGreaterThanOrEqual(1 << 20);
      expect(Number(inodes)).toBeGreaterThanOrEqual(3);
      expect(r.ok(["-s", sn, "snapshot", "ls"])).toMatch(/^c\s+Committed\s*$/m);
    } finally {
      proc.kill();
    }
  });
});

describe("a layer that would remove a tree a mount uses (native: the snapshot's directory is its tree)", () => {
  // Each way a layer removes a name: a whiteout, an opaque directory, an entry of another type.
  const removals: [string, Parameters<typeof tar>[0]][] = [
    ["a whiteout of it", [{ name: "a/.wh.vol", data: "" }]],
    ["an opaque directory above it", [{ name: "a/", type: "5", mode: 0o755 }, { name: "a/.wh..wh..opq", data: "" }]],
    ["a file in its place", [{ name: "a/vol", data: "a file now" }]],
  ];
  for (const [how, entries] of removals) {
    for (const use of ["a tmpfs mounted below it", "a bind mount of something in it elsewhere"]) {
      test.skipIf(!root)(`${how}, ${use}: refused (exit 5), the tree and the mount as they were`, () => {
        r = new TestRoot();
        r.ok(["snapshot", "-s", "native", "prepare", "k"]);
        const dir = /^mount -t bind (\S+) /.exec(r.ok(["snapshot", "-s", "native", "mounts", "/x", "k"]))![1]!;
        const inUse = join(dir, "a", "vol", "sub");
        mkdirSync(inUse, { recursive: true });
        const elsewhere = r.dir("elsewhere");
        const point = use.startsWith("a tmpfs") ? inUse : elsewhere;
        if (point === inUse) must(`mount -t tmpfs tmpfs ${inUse}`);
        else must(`mount --bind ${inUse} ${elsewhere}`);
        try {
          writeFileSync(join(inUse, "precious"), "in use");
          const layer = join(r.path, "layer.tar");
          writeFileSync(layer, tar([{ name: "first", data: "made, then undone" }, ...entries]));
          const res = r.stor(["snapshot", "-s", "native", "apply", "k", layer]);
          expect(res.code).toBe(5);
          // A mount inside the tree refuses any layer; a use of it elsewhere, the one that removes it.
          const why = point === inUse ? `: has ${point} mounted inside it: no layer is applied through a mount` : `: a/vol in .*: the layer removes it, and it is mounted at ${point}`;
          expect(res.stderr).toMatch(new RegExp(`^stor: apply .*${why}\n$`));
          expect(readFileSync(join(inUse, "precious"), "utf8")).toBe("in use");
          expect(existsSync(join(dir, "first"))).toBe(false);
          expect(mountPoints()).toContain(point);
        } finally {
          must(`umount ${point}`);
        }
      });
    }
  }
});

describe("a mounted volume", () => {
  // The data, or the volume's own directory holding it: a bind of either shows the data elsewhere.
  for (const [what, bound] of [["whose data is mounted elsewhere", "_data"], ["whose own directory, holding its data, is bound elsewhere", ""]] as const) {
    test.skipIf(!root)(`rm and prune leave a volume ${what}; rm says where`, () => {
      r = new TestRoot();
      r.ok(["volume", "create", "kept"]);
      r.ok(["volume", "create", "other"]);
      const dir = join(r.path, "volumes/kept");
      writeFileSync(join(dir, "_data/file"), "data");
      const target = r.dir("bind");
      must(`mount --bind ${join(dir, bound)} ${target}`);
      const res = r.stor(["volume", "rm", "kept"]);
      expect([res.code, res.stdout, res.stderr]).toEqual([5, "", `stor: volume "kept": is mounted at ${target}\n`]);
      // What prune leaves, df counts in use, not reclaimable.
      const volumes = r.ok(["df", "--format", "json"]).trim().split("\n").map((l) => JSON.parse(l)).find((s) => s.Type === "Local Volumes");
      expect(volumes).toEqual({ Active: "1", Reclaimable: "0B (0%)", Size: "4B", TotalCount: "2", Type: "Local Volumes" });
      expect(r.ok(["volume", "prune", "-a", "-f"])).toBe("Deleted Volumes:\nother\n\nTotal reclaimed space: 0B\n");
      expect(readFileSync(join(dir, "_data/file"), "utf8")).toBe("data");
      must(`umount ${target}`);
      expect(r.ok(["volume", "rm", "kept"])).toBe("kept\n");
      expect(existsSync(dir)).toBe(false);
    });
  }
});

describe("a volume bound into another mount namespace, without references (a container started by hand)", () => {
  test.skipIf(!root)("rm and prune leave it; rm says where", async () => {
    r = new TestRoot();
    r.ok(["volume", "create", "kept"]);
    const data = join(r.path, "volumes/kept/_data");
    writeFileSync(join(data, "file"), "data");
    const target = r.dir("bind");
    const ns = await otherNamespace(`mount --bind ${data} ${target}`);
    try {
      const res = r.stor(["volume", "rm", "kept"]);
      expect([res.code, res.stdout, res.stderr]).toEqual([5, "", `stor: volume "kept": is mounted at ${target} (in mount namespace ${ns.namespace})\n`]);
      expect(r.ok(["volume", "prune", "-a", "-f"])).toBe("Total reclaimed space: 0B\n");
      expect(readFileSync(`/proc/${ns.pid}/root${target}/file`, "utf8")).toBe("data");
    } finally {
      await ns.stop();
    }
    expect(r.ok(["volume", "rm", "kept"])).toBe("kept\n");
  });
});

describe("mounted in another mount namespace that reaches the root by another path (a bind of it there)", () => {
  test.skipIf(!root)("commit and rm of the snapshot, and rm of its parent, are refused (exit 5); the layers stay", async () => {
    r = new TestRoot();
    r.ok(["snapshot", "-s", "overlay", "prepare", "base-w"]);
    writeFileSync(join(r.path, "snapshots/overlay/snapshots/1/fs/file"), "lower");
    r.ok(["snapshot", "-s", "overlay", "commit", "base", "base-w"]);
    r.ok(["snapshot", "-s", "overlay", "prepare", "top", "base"]);
    // The alias exists there only: here it is an empty directory, and no path of the overlay's options leads anywhere.
    const alias = r.dir("alias");
    const target = r.dir("target");
    const ns = await otherNamespace(`mount --bind ${r.path} ${alias} && ${STOR} --root ${alias} --config ${r.config} mount top ${target} && echo work > ${target}/mine`);
    try {
      const used = `is mounted at ${target} (in mount namespace ${ns.namespace})`;
      for (const args of [["commit", "done", "top"], ["rm", "top"]]) {
        const res = r.stor(["snapshot", "-s", "overlay", ...args]);
        expect([res.code, res.stderr]).toEqual([5, `stor: snapshot "top": ${used}\n`]);
      }
      r.ok(["snapshot", "-s", "overlay", "view", "look", "base"]);
      r.ok(["snapshot", "-s", "overlay", "rm", "look"]);
      expect(r.stor(["snapshot", "-s", "overlay", "rm", "base"]).code).toBe(5); // has a child, and is a layer there
      expect(readFileSync(`/proc/${ns.pid}/root${target}/mine`, "utf8")).toBe("work\n");
      expect(readFileSync(`/proc/${ns.pid}/root${target}/file`, "utf8")).toBe("lower");
    } finally {
      await ns.stop();
    }
    r.ok(["snapshot", "-s", "overlay", "rm", "top"]);
  });

  test.skipIf(!root)("a committed snapshot that is a lower layer of an overlay there is not removed (exit 5)", async () => {
    r = new TestRoot();
    r.ok(["snapshot", "-s", "overlay", "prepare", "base-w"]);
    writeFileSync(join(r.path, "snapshots/overlay/snapshots/1/fs/file"), "lower");
    r.ok(["snapshot", "-s", "overlay", "commit", "base", "base-w"]);
    const alias = r.dir("alias");
    const target = r.dir("target");
    const upper = r.dir("upper");
    const lower = `${alias}/snapshots/overlay/snapshots/1/fs`;
    const ns = await otherNamespace(`mount --bind ${r.path} ${alias} && mkdir -p ${upper}/u ${upper}/w && mount -t overlay overlay ${target} -o lowerdir=${lower},upperdir=${upper}/u,workdir=${upper}/w`);
    try {
      const res = r.stor(["snapshot", "-s", "overlay", "rm", "base"]);
      expect([res.code, res.stderr]).toEqual([5, `stor: snapshot "base": is mounted at ${target} (in mount namespace ${ns.namespace})\n`]);
      expect(readFileSync(`/proc/${ns.pid}/root${target}/file`, "utf8")).toBe("lower");
    } finally {
      await ns.stop();
    }
    r.ok(["snapshot", "-s", "overlay", "rm", "base"]);
  });
});

describe("in a pid namespace of its own (a container sharing the root)", () => {
  test.skipIf(!root)("commit, rm and volume rm work, and still refuse what is mounted there", () => {
    r = new TestRoot();
    const target = r.dir("target");
    const stor = `${STOR} --root ${r.path} --config ${r.config}`;
    // The kernel refuses this namespace the walk over mount namespaces: what it can see is looked at.
    const res = sh(["unshare", "-p", "-f", "--mount-proc", "sh", "-c",
      `set -e; ${stor} snapshot prepare a >/dev/null; ${stor} snapshot commit b a; ${stor} snapshot prepare c b >/dev/null;
       ${stor} mount c ${target}; ${stor} snapshot rm c 2>&1 || true; ${stor} snapshot commit d c 2>&1 || true; ${stor} unmount ${target};
       ${stor} snapshot rm c; ${stor} volume create vol >/dev/null; ${stor} volume rm vol`]);
    expect([res.code, res.stderr]).toEqual([0, ""]);
    expect(res.stdout).toBe(`stor: snapshot "c": is mounted at ${target}\nstor: snapshot "c": is mounted at ${target}\nvol\n`);
    expect(r.ok(["snapshot", "ls"]).split("\n").slice(1).filter(Boolean).map((l) => l.split(" ")[0])).toEqual(["b"]);
  });
});

describe("mounts of other namespaces, read through /proc (kernels before 6.12)", () => {
  test.skipIf(!root)("finds the namespaces and mounts the kernel's iteration finds", async () => {
    const { namespacesFromProc, otherNamespaceMounts } = await import("../src/sys/mountNamespaces.ts");
    r = new TestRoot();
    const target = r.dir("target");
    const ns = await otherNamespace(`mount -t tmpfs stor-test ${target}`);
    try {
      const [byProc, byKernel] = [namespacesFromProc(), otherNamespaceMounts()];
      for (const found of [byProc, byKernel]) {
        const mounts = found.find((n) => n.namespace === ns.namespace)?.mounts ?? [];
        expect(mounts.filter((m) => m.mountPoint === target).map((m) => m.fsType)).toEqual(["tmpfs"]);
      }
      // Kernel threads' namespaces have no mountinfo to read; every other one is in both.
      const names = (found: typeof byProc) => found.map((n) => n.namespace).filter((n) => byProc.some((p) => p.namespace === n)).sort();
      expect(names(byKernel)).toEqual(byProc.map((n) => n.namespace).sort());
    } finally {
      await ns.stop();
    }
  });
});

describe("snapshot cleanup", () => {
  test.skipIf(!root)("a directory no snapshot owns is left while a mount uses it, here or in another mount namespace", async () => {
    r = new TestRoot();
    r.ok(["snapshot", "-s", "native", "prepare", "made"]); // makes the snapshotter's directories
    r.ok(["snapshot", "-s", "native", "rm", "made"]);
    const orphan = join(r.path, "snapshots/native/snapshots/99");
    mkdirSync(orphan);
    writeFileSync(join(orphan, "file"), "data");
    const target = r.dir("target");
    must(`mount --bind ${orphan} ${target}`);
    expect(r.ok(["snapshot", "-s", "native", "cleanup"])).toBe("");
    expect(readFileSync(join(target, "file"), "utf8")).toBe("data");
    must(`umount ${target}`);
    // Mounted only in another mount namespace, it is left too.
    const ns = await otherNamespace(`mount --bind ${orphan} ${target}`);
    try {
      expect(r.ok(["snapshot", "-s", "native", "cleanup"])).toBe("");
      expect(readFileSync(join(orphan, "file"), "utf8")).toBe("data");
    } finally {
      await ns.stop();
    }
    expect(r.ok(["snapshot", "-s", "native", "cleanup"])).toBe("99\n");
  });
});

test.skipIf(!root)("unmount of a target with something mounted below it is in use (exit 5), naming it; every mount stays", () => {
  r = new TestRoot();
  r.ok(["snapshot", "-s", "native", "prepare", "k"]);
  const target = r.dir("target");
  r.ok(["mount", "-s", "native", "k", target]);
  const below = join(target, "sub");
  mkdirSync(below);
  must(`mount -t tmpfs below ${below}`);
  try {
    expect(r.stor(["unmount", target])).toEqual({ code: 5, stdout: "", stderr: `stor: target ${target}: has ${below} mounted below it: unmount those first\n` });
    expect(mountPoints()).toEqual(expect.arrayContaining([target, below]));
  } finally {
    must(`umount ${below}`);
  }
  expect(r.ok(["unmount", target])).toBe("");
});

describe("a snapshot containerd made", () => {
  test("the CLI makes none of containerd's shape (exit 2), which containerd's garbage collector would take", () => {
    r = new TestRoot();
    r.ok(["snapshot", "-s", "native", "prepare", "work"]);
    for (const args of [["prepare", "default/22/mine"], ["view", "default/23/mine"], ["commit", "k8s.io/24/mine", "work"]]) {
      const res = r.stor(["snapshot", "-s", "native", ...args]);
      expect([res.code, res.stdout]).toEqual([2, ""]);
      expect(res.stderr).toStartWith(`stor: snapshot "${args[1]}": has the shape of containerd's keys (NAMESPACE/NUMBER/NAME), which only containerd may make`);
    }
    expect(r.ok(["snapshot", "-s", "native", "ls"]).split("\n").slice(1).filter(Boolean).map((l) => l.split(" ")[0])).toEqual(["work"]);
  });

  test("rm is refused (exit 5) while containerd records it; --force removes it", async () => {
    r = new TestRoot();
    // Made as stor serve makes it for containerd.
    const svc = await openSnapshots(loadConfig({ root: r.path, config: r.config }), { access: "write", snapshotter: "native", forContainerd: true });
    svc.prepare("default/22/victim");
    svc.close();
    const res = r.stor(["snapshot", "-s", "native", "rm", "default/22/victim"]);
    expect([res.code, res.stdout, res.stderr]).toEqual([
      5,
      "",
      'stor: snapshot "default/22/victim": was made by containerd, which still records it: remove it with ctr (or --force)\n',
    ]);
    expect(r.ok(["snapshot", "-s", "native", "ls"])).toContain("default/22/victim");
    r.ok(["snapshot", "-s", "native", "rm", "--force", "default/22/victim"]);
    expect(r.ok(["snapshot", "-s", "native", "ls"])).not.toContain("victim");
    // A key that only looks a little like one is the CLI's own.
    r.ok(["snapshot", "-s", "native", "prepare", "default/x/victim"]);
    r.ok(["snapshot", "-s", "native", "rm", "default/x/victim"]);
  });
});
