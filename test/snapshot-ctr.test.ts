/**
 * The shared snapshotter suite through containerd: every snapshot operation is a `ctr snapshots
 * --snapshotter stor` command against a containerd, started here, that uses `stor serve
 * --containerd` as its proxy snapshotter; one containerd and one stor per snapshotter.
 *
 * Mounts run what `ctr snapshots mounts TARGET KEY` prints, as a ctr user would: that puts the
 * Mounts call and stor's mount options through containerd as well (`stor mount` on stor's key
 * would bypass both).
 *
 * containerd does not remove a snapshot from its snapshotter when asked: `ctr snapshots rm`
 * drops it from containerd's database, and a garbage collection later removes stor's snapshot
 * and calls Cleanup. So `rm` here then forces a collection and waits for it, as `ctr leases rm
 * --sync` does, and checks that stor's snapshots are gone, which the suite's checks on stor's
 * directories and the next steps rely on. Waiting for the scheduled collection instead is not
 * deterministic: containerd 1.6's scheduler drops a deletion that lands while a collection is
 * still removing snapshots from the proxy, and the snapshot then waits for the next deletion
 * (seen here: `rm c b a` left `a` for over a minute). Views get
 * the `containerd.io/gc.root` label right after they are made, as ctr users do (ctr's prepare and
 * commit add it themselves), or the collector would take them.
 *
 * Each test ends by removing everything it left through ctr; stor must then hold no snapshot and
 * no directory, or the test fails (and stor's CLI clears the rest for the next test).
 */
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { setDefaultTimeout } from "bun:test";
import { type ContainerdWithStor, startContainerdWithStor } from "./daemons.ts";
import { type Result, TestRoot, have, isRoot, must, need, sh, unmountBelow } from "./helpers.ts";
import { type Route, type Session, snapshotterSuite } from "./snapshotterSuite.ts";

// Each ctr command is a process and each removal waits for a garbage collection.
setDefaultTimeout(60_000);

const NAMESPACE = "stortest";

interface Listed {
  name: string;
  parent?: string;
}

/** One test's commands, as `ctr -a SOCKET -n stortest snapshots --snapshotter stor ARGS`. */
class CtrSession implements Session {
  readonly #dirs: string;
  constructor(
    readonly root: TestRoot,
    readonly snapshotter: string,
    readonly daemons: ContainerdWithStor,
  ) {
    this.#dirs = join(root.path, "snapshots", snapshotter, "snapshots");
  }

  #ctr(args: string[]): Result {
    return sh(["ctr", "-a", this.daemons.socket, "-n", NAMESPACE, "snapshots", "--snapshotter", "stor", ...args]);
  }

  #okCtr(args: string[]): string {
    const r = this.#ctr(args);
    if (r.code !== 0) throw new Error(`ctr snapshots ${args.join(" ")}: exit ${r.code}: ${r.stderr.trim()}`);
    return r.stdout;
  }

  run(args: string[]): Result {
    if (args[0] === "rm") return this.#remove(args.slice(1));
    const r = this.#ctr(args);
    if (r.code === 0 && args[0] === "view") {
      // ctr's view sets no labels: pinned at once, as a ctr user does, or the collector takes it.
      const [key] = positional(args.slice(1));
      this.#okCtr(["label", key!, "containerd.io/gc.root=pinned"]);
    }
    return r;
  }

  mount(key: string, target: string): void {
    for (const line of this.#okCtr(["mounts", target, key]).trim().split("\n")) must(line);
  }

  unmount(target: string): void {
    must(`umount '${target}'`);
  }

  /** The snapshots of the namespace, as `ctr snapshots ls` prints them. */
  #list(): Listed[] {
    return this.#okCtr(["ls"])
      .trim()
      .split("\n")
      .slice(1)
      .filter(Boolean)
      .map((line) => {
        const cols = line.trim().split(/\s+/);
        return cols.length === 3 ? { name: cols[0]!, parent: cols[1] } : { name: cols[0]! };
      });
  }

  /** The keys stor has, `stortest/ID/KEY` for what containerd made. */
  #storKeys(): string[] {
    return (JSON.parse(this.root.ok(["snapshot", "-s", this.snapshotter, "ls", "--format", "json"])) as { Name: string }[]).map((i) => i.Name);
  }

  /** The garbage collections of the stor snapshotter containerd has logged as failed. */
  #failedCollections(): string[] {
    return readFileSync(this.daemons.containerd.log, "utf8")
      .split("\n")
      .filter((l) => l.includes("snapshotter=stor") && l.includes("snapshot garbage collection failed"));
  }

  /** A garbage collection now, waited for: what `ctr leases rm --sync` of a new lease does. */
  #collect(): void {
    const lease = sh(["ctr", "-a", this.daemons.socket, "-n", NAMESPACE, "leases", "create"]);
    if (lease.code !== 0) throw new Error(`ctr leases create: ${lease.stderr.trim()}`);
    const id = lease.stdout.trim().split(/\s+/)[0]!;
    const rm = sh(["ctr", "-a", this.daemons.socket, "-n", NAMESPACE, "leases", "rm", "--sync", id]);
    if (rm.code !== 0) throw new Error(`ctr leases rm --sync: ${rm.stderr.trim()}`);
  }

  /** `ctr snapshots rm KEYS`; when it removed any, a collection that must remove them from stor. */
  #remove(keys: string[]): Result {
    const before = this.#storKeys();
    const existed = new Set(this.#list().map((i) => i.name));
    const failed = this.#failedCollections().length;
    const r = this.#ctr(["rm", ...keys]);
    const known = new Set(this.#list().map((i) => i.name));
    const removed = keys.filter((k) => existed.has(k) && !known.has(k));
    if (removed.length === 0) return r;
    // stor's keys for what containerd removed: `stortest/ID/KEY`.
    const ours = new Set(removed.map((k) => before.find((n) => n.startsWith(`${NAMESPACE}/`) && n.replace(/^[^/]+\/\d+\//, "") === k)));
    this.#collect();
    const failures = this.#failedCollections();
    if (failures.length > failed) throw new Error(`containerd's garbage collection failed: ${failures.at(-1)}`);
    const left = this.#storKeys().filter((n) => ours.has(n));
    if (left.length > 0) throw new Error(`a collection after ctr snapshots rm ${keys.join(" ")} left ${left.join(", ")} in stor: ${this.daemons.containerd.tail()}`);
    return r;
  }

  /** Removes what the test left, leaves first, through ctr; then stor must hold nothing. */
  close(): void {
    unmountBelow(`${this.root.path}-mnt`); // the suite's mount target, should a test have left it mounted
    const problems: string[] = [];
    try {
      for (let round = 0; round < 64; round++) {
        const all = this.#list();
        if (all.length === 0) break;
        const parents = new Set(all.map((i) => i.parent));
        const r = this.#remove(all.filter((i) => !parents.has(i.name)).map((i) => i.name));
        if (r.code !== 0) throw new Error(`ctr snapshots rm: ${r.stderr.trim()}`);
      }
    } catch (err) {
      problems.push(String(err));
    }
    const keys = this.#storKeys();
    const dirs = existsSync(this.#dirs) ? readdirSync(this.#dirs) : [];
    if (keys.length > 0 || dirs.length > 0) {
      problems.push(`left in stor once containerd had removed everything: snapshots [${keys.join(", ")}], directories [${dirs.join(", ")}]`);
      // So that the next test starts from nothing: children first, then what cleanup finds.
      try {
        for (let round = 0; round < 64; round++) {
          const infos = JSON.parse(this.root.ok(["snapshot", "-s", this.snapshotter, "ls", "--format", "json"])) as { Name: string; Parent?: string }[];
          if (infos.length === 0) break;
          const parents = new Set(infos.map((i) => i.Parent));
          this.root.ok(["snapshot", "-s", this.snapshotter, "rm", ...infos.filter((i) => !parents.has(i.Name)).map((i) => i.Name)]);
        }
        this.root.ok(["snapshot", "-s", this.snapshotter, "cleanup"]);
      } catch (err) {
        problems.push(`and stor's CLI could not clear it: ${err}`);
      }
    }
    if (problems.length > 0) throw new Error(problems.join("\n"));
  }
}

/** The arguments of a ctr snapshots command that are not options (`-t TARGET`, `--mounts`). */
function positional(args: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i] === "-t" || args[i] === "--target") i++;
    else if (!args[i]!.startsWith("-")) out.push(args[i]!);
  }
  return out;
}

/** containerd with `stor serve -s SNAPSHOTTER` as proxy snapshotter `stor`, for the whole describe block. */
function ctrRoute(snapshotter: string): Route {
  let root: TestRoot | undefined;
  let daemons: ContainerdWithStor | undefined;
  return {
    via: "ctr",
    available: need(isRoot() && have("containerd") && have("ctr"), "containerd and ctr (Debian containerd), as root"),
    async setup() {
      root = TestRoot.for(snapshotter);
      daemons = await startContainerdWithStor(root, snapshotter, "debug");
    },
    async teardown() {
      try {
        await daemons?.stop();
      } finally {
        root?.close(); // unmounts whatever is left below the root and its sibling directories
      }
    },
    open: () => new CtrSession(root!, snapshotter, daemons!),
  };
}

for (const snapshotter of ["overlay", "native", "btrfs"]) snapshotterSuite(snapshotter, ctrRoute(snapshotter));
