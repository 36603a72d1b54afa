/**
 * A live host: containers (simulated by processes that hold what a container holds) use volumes
 * and mounted snapshots while an operator runs every stor command that changes state, with every
 * flag that makes sense, restore and prune included. No byte of in-use data is lost and no
 * in-use mount goes.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { readFileSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { TestRoot, isRoot, sh } from "./helpers.ts";

if (process.env.CI === "true" && !isRoot()) throw new Error("required under CI: root, for real mounts");

/** A digest of every file below `dir`: names, sizes and contents. */
function digest(dir: string): string {
  const h = createHash("sha256");
  const walk = (d: string) => {
    for (const name of readdirSync(d).sort()) {
      const p = join(d, name);
      const st = statSync(p);
      h.update(`${p.slice(dir.length)}\0${st.size}\0`);
      if (st.isDirectory()) walk(p);
      else h.update(readFileSync(p));
    }
  };
  walk(dir);
  return h.digest("hex");
}

const mountPoints = () =>
  readFileSync("/proc/self/mountinfo", "utf8")
    .split("\n")
    .map((l) => l.split(" ")[4])
    .filter((p): p is string => p !== undefined);

let r: TestRoot;
const holders: ReturnType<typeof Bun.spawn>[] = [];
/** What is in use: a directory whose contents must not change, and whether it is a mount point. */
const inUse: { dir: string; mount: boolean; digest?: string }[] = [];

/** A process that holds `dir` as its working directory, as a container's process would. */
function holdIn(dir: string): void {
  holders.push(Bun.spawn(["sh", "-c", "exec sleep 120"], { cwd: dir }));
}

beforeAll(() => {
  if (!isRoot()) return;
  r = new TestRoot();
  // Volumes: a tmpfs one and a plain one referenced by running containers, one bound elsewhere.
  r.ok(["volume", "create", "-o", "type=tmpfs", "-o", "device=tmpfs", "-o", "o=size=8m", "tmpvol"]);
  const tmp = r.ok(["volume", "mount", "tmpvol", "container-1"]).trim();
  r.ok(["volume", "create", "plainvol"]);
  const plain = r.ok(["volume", "mount", "plainvol", "container-2"]).trim();
  r.ok(["volume", "create", "anon-looking", "--label", "com.docker.volume.anonymous="]);
  const bound = join(r.path, "volumes/anon-looking/_data");
  const bindTarget = r.dir("bind");
  sh(["mount", "--bind", bound, bindTarget]);
  for (const [dir, file] of [[tmp, "db"], [plain, "uploads"], [bound, "cache"]] as const) writeFileSync(join(dir, file), `${file} `.repeat(1000));
  holdIn(tmp);
  holdIn(plain);
  inUse.push({ dir: tmp, mount: true }, { dir: plain, mount: false }, { dir: bindTarget, mount: true });

  // Snapshots on both snapshotters: a base image, a container's root filesystem on it, mounted.
  for (const sn of ["overlay", "native"]) {
    r.ok(["snapshot", "-s", sn, "prepare", "base-w"]);
    r.ok(["snapshot", "-s", sn, "commit", "base", "base-w"]);
    r.ok(["snapshot", "-s", sn, "prepare", "rootfs", "base"]);
    const target = r.dir(`${sn}-rootfs`);
    r.ok(["-s", sn, "mount", "rootfs", target]);
    writeFileSync(join(target, "state"), `${sn} `.repeat(1000));
    holdIn(target);
    r.ok(["snapshot", "-s", sn, "view", "ro", "base"]);
    const view = r.dir(`${sn}-view`);
    r.ok(["-s", sn, "mount", "ro", view]);
    inUse.push({ dir: target, mount: true }, { dir: view, mount: true });
  }
  for (const u of inUse) u.digest = digest(u.dir);
});

afterAll(async () => {
  for (const h of holders) h.kill();
  await Promise.all(holders.map((h) => h.exited));
  r?.close();
});

/** Every state-changing command an operator might run on a live host, with its sensible flags. */
const commands = (target: (sn: string) => string): string[][] => [
  ["restore"],
  ["restore", "--format", "json"],
  ["restore", "--force"],
  ["volume", "prune", "-f"],
  ["volume", "prune", "-a", "-f"],
  ["volume", "rm", "tmpvol"],
  ["volume", "rm", "-f", "plainvol", "anon-looking"],
  ["volume", "unmount", "tmpvol", "not-a-holder"],
  ["volume", "create", "tmpvol"],
  ["volume", "create", "-o", "type=tmpfs", "-o", "device=tmpfs", "plainvol"],
  ...["overlay", "native"].flatMap((sn) => [
    ["snapshot", "-s", sn, "rm", "ro", "rootfs", "base"],
    ["snapshot", "-s", sn, "rm", "rootfs"],
    ["snapshot", "-s", sn, "rm", "base"],
    ["snapshot", "-s", sn, "cleanup"],
    ["snapshot", "-s", sn, "label", "rootfs", "a=b"],
    ["snapshot", "-s", sn, "prepare", "rootfs", "base"],
    ["-s", sn, "mount", "rootfs", target(sn)],
  ]),
  ["restore"],
];

test.skipIf(!isRoot())("every state-changing command on a live host loses no byte in use and takes no mount in use", () => {
  const outcomes: string[] = [];
  for (const args of commands((sn) => r.dir(`${sn}-rootfs`))) {
    const res = r.stor(args);
    outcomes.push(`${args.join(" ")} → ${res.code}${res.stderr ? `: ${res.stderr.trim()}` : ""}`);
    const mounted = mountPoints();
    for (const u of inUse) {
      if (u.mount) expect({ after: args, mounted: mounted.includes(u.dir) }).toEqual({ after: args, mounted: true });
      expect({ after: args, dir: u.dir, digest: digest(u.dir) }).toEqual({ after: args, dir: u.dir, digest: u.digest! });
    }
  }
  console.log(outcomes.join("\n"));
  // Refusals say why, one line each, with the contract's codes; nothing failed as internal.
  expect(outcomes.filter((o) => / → 1\b/.test(o) || o.split("\n").slice(1).some((l) => !l.startsWith("stor: ")))).toEqual([]);
});
