/**
 * One fuzz execution, in-process for speed: stor's own snapshot service and apply/diff modules on
 * a throw-away root, with the invariants of issue 12 checked on every input:
 *
 * - apply ends within 2 s per MiB of input (at least 1 s: a collection pause is no hang);
 * - it succeeds, or fails as invalid input (exit 2) with a one-line message;
 * - nothing outside the snapshot changes: the parent's tree, the snapshots' directory;
 * - a refusal leaves the snapshot exactly as it was (names, types, modes, owners, sizes, contents,
 *   link counts, all xattrs, mtimes to the nanosecond);
 * - an accepted layer's diff holds no real file named `.wh.*`, applies onto the same parent, and
 *   gives the same tree (names, types, modes, owners, xattrs, contents, mtimes in whole seconds,
 *   the precision of a layer stor writes).
 */
import { createHash } from "node:crypto";
import { closeSync, lstatSync, mkdirSync, openSync, readFileSync, readdirSync, readlinkSync } from "node:fs";
import { join } from "node:path";
import { exitCodeOf, describe } from "../../src/errors.ts";
import { applyToSnapshot } from "../../src/layer/apply.ts";
import { layerChanges } from "../../src/layer/changes.ts";
import { layerChunks } from "../../src/layer/diff.ts";
import { TarReader } from "../../src/layer/tarReader.ts";
import { SNAPSHOTTERS } from "../../src/snapshot/registry.ts";
import { SnapshotService } from "../../src/snapshot/service.ts";
import { getXattr, listXattrs } from "../../src/sys/file.ts";
import { mount, unmount } from "../../src/sys/mount.ts";
import { O } from "../../src/sys/openat2.ts";
import { BASE, PRE, concat, encode, Rng } from "./tarModel.ts";

/** The snapshotters fuzzed in-process: those that need no filesystem of their own. */
export const FUZZED = ["overlay", "native"] as const;
export type SnapshotterName = (typeof FUZZED)[number];

/** An invariant that did not hold. */
export class Violation extends Error {}

/**
 * Where overlay's and native's outcomes for one input break the invariant that both decide alike
 * (undefined when they keep it). One exception: a hardlink to a parent's file, which overlay
 * refuses as its parents are read-only.
 */
export function undecidedAlike(overlay: Outcome, native: Outcome): string | undefined {
  if (overlay.accepted === native.accepted || /which is not in the snapshot/.test(overlay.error ?? "")) return undefined;
  return `both overlay ${overlay.accepted ? "accepted" : "refused"} it, native ${native.accepted ? "accepted" : "refused"} it`;
}

/** What one input did on one snapshotter. */
export interface Outcome {
  accepted: boolean;
  /** The refusal's message. */
  error?: string;
  ms: number;
  /** The merged tree after an accepted apply. */
  tree?: string[];
  /** Accepted, but its diff too large to check. */
  skipped?: boolean;
}

const PRE_BYTES = encode(PRE);
/** Largest diff read back in memory. */
const MAX_DIFF_BYTES = 64 << 20;

/**
 * The tree at `dir`: one line per entry, names read as bytes (names no UTF-8 decoder round-trips
 * stay distinct). `exact`: everything a refusal must leave as it was, `dir` itself included: link
 * counts, all xattrs, mtimes to the nanosecond. Otherwise what a layer carries, below `dir`:
 * mtimes in whole seconds (what stor writes), no overlayfs xattrs.
 */
export function treeListing(dir: string, exact: boolean): string[] {
  const out: string[] = [];
  const walk = (rel: Buffer) => {
    const abs = rel.length ? Buffer.concat([Buffer.from(`${dir}/`), rel]) : Buffer.from(dir);
    const st = lstatSync(abs, { bigint: true });
    const what = st.isFile() ? createHash("sha256").update(readFileSync(abs)).digest("hex").slice(0, 16) : st.isSymbolicLink() ? `-> ${readlinkSync(abs, { encoding: "buffer" }).toString("hex")}` : st.isDirectory() ? "" : `dev ${st.rdev}`;
    const xattrs = listXattrs(abs)
      .filter((k) => exact || !k.startsWith("trusted.overlay."))
      .sort()
      .map((k) => `${k}=${getXattr(abs, k)?.toString("hex")}`);
    const mtime = exact ? st.mtimeNs : st.mtimeNs / 1_000_000_000n - (st.mtimeNs < 0n && st.mtimeNs % 1_000_000_000n !== 0n ? 1n : 0n);
    if (exact || rel.length) out.push([rel.toString("hex") || ".", Number(st.mode).toString(8), `${st.uid}:${st.gid}`, st.isDirectory() ? "-" : String(st.size), String(mtime), exact ? String(st.nlink) : "", what, ...xattrs].join(" "));
    if (st.isDirectory()) {
      for (const name of readdirSync(abs, { encoding: "buffer" }).sort(Buffer.compare)) walk(rel.length ? Buffer.concat([rel, Buffer.from("/"), name]) : name);
    }
  };
  walk(Buffer.alloc(0));
  return out;
}

/** `bytes` as a stream of chunks of sizes drawn from `rng`: the reader must not care where chunks end. */
async function* chunked(bytes: Uint8Array, rng?: Rng): AsyncGenerator<Uint8Array> {
  for (let off = 0; off < bytes.length; ) {
    const n = rng ? 1 + rng.int(rng.chance(0.5) ? 700 : 70000) : bytes.length;
    yield bytes.slice(off, off + n);
    off += n;
  }
}

function firstDifference(a: string[], b: string[]): string {
  for (let i = 0; i < Math.max(a.length, b.length); i++) if (a[i] !== b[i]) return `before: ${a[i] ?? "(none)"} / after: ${b[i] ?? "(none)"}`;
  return "";
}

/** A throw-away root with one snapshotter and the committed parent every input is applied on. */
export class FuzzBed {
  readonly sn: SnapshotterName;
  readonly #svc: SnapshotService;
  readonly #root: string;
  readonly #mnt: string;
  #baseTree: string[] = [];
  #n = 0;

  constructor(dir: string, sn: SnapshotterName) {
    this.sn = sn;
    this.#root = join(dir, sn);
    this.#mnt = join(dir, `${sn}-mnt`);
    mkdirSync(this.#mnt, { recursive: true });
    this.#svc = new SnapshotService(this.#root, SNAPSHOTTERS[sn], "write");
  }

  async init(): Promise<void> {
    this.#svc.prepare("base-a");
    await applyToSnapshot(this.#svc, "base-a", chunked(encode(BASE)), "base");
    this.#svc.commit("base", "base-a");
    this.#baseTree = treeListing(this.#svc.layerView("base").upper, true);
  }

  /**
   * An active snapshot on the parent with {@link PRE} applied, and its exact listing. A refusal
   * leaves it as it was (which {@link run} checks), so the next input gets it again.
   */
  #ready: { key: string; upper: string; before: string[] } | undefined;

  async #fresh(): Promise<{ key: string; upper: string; before: string[] }> {
    const key = `a${this.#n++}`;
    this.#svc.prepare(key, "base");
    await applyToSnapshot(this.#svc, key, chunked(PRE_BYTES), "pre");
    const upper = this.#svc.layerView(key).upper;
    return { key, upper, before: treeListing(upper, true) };
  }

  /** Applies `input` to a snapshot on the parent and checks every invariant; throws {@link Violation}. */
  async run(input: Uint8Array, seed: number): Promise<Outcome> {
    const rng = new Rng(seed);
    const ready = (this.#ready ??= await this.#fresh());
    this.#ready = undefined; // given back only when a refusal left it as it was
    const a = ready.key;
    const keys = [a];
    try {
      const bound = Math.max(1000, (2000 * input.length) / (1 << 20));
      const t0 = performance.now();
      let outcome: Outcome;
      try {
        await applyToSnapshot(this.#svc, a, chunked(input, rng), "fuzz");
        outcome = { accepted: true, ms: performance.now() - t0 };
      } catch (err) {
        outcome = { accepted: false, ms: performance.now() - t0, error: describe(err) };
        if (exitCodeOf(err) !== 2) throw new Violation(`refused with exit ${exitCodeOf(err)}, not 2: ${describe(err)}`);
        if (describe(err).includes("\n")) throw new Violation(`refused with more than one line: ${JSON.stringify(describe(err))}`);
        const after = treeListing(ready.upper, true);
        if (after.join("\n") !== ready.before.join("\n")) throw new Violation(`refused (${describe(err)}) but the snapshot changed: ${firstDifference(ready.before, after)}`);
      }
      if (outcome.ms > bound) throw new Violation(`apply took ${outcome.ms.toFixed(0)} ms for ${input.length} bytes (bound ${bound.toFixed(0)} ms)`);
      this.#checkOutside();
      if (!outcome.accepted) {
        this.#ready = ready;
        keys.length = 0;
        return outcome;
      }

      const view = this.#svc.layerView(a);
      const list = layerChanges(view);
      // A sparse file's holes are written out whole: a terabyte of them is no input to read back.
      const size = list.reduce((n, c) => n + (c.stat?.isFile() ? Number(c.stat.size) : 0), 0);
      if (size > MAX_DIFF_BYTES) return { ...outcome, skipped: true };
      const tree = openSync(view.upper, O.PATH | O.DIRECTORY);
      let diff: Uint8Array;
      try {
        const chunks: Uint8Array[] = [];
        for (const chunk of layerChunks(list, tree)) chunks.push(new Uint8Array(chunk)); // a copy: valid only until the next is asked for
        diff = concat(chunks);
      } finally {
        closeSync(tree);
      }
      await checkNoWhiteoutFiles(diff);
      const b = `b${this.#n++}`;
      keys.push(b);
      this.#svc.prepare(b, "base");
      try {
        await applyToSnapshot(this.#svc, b, chunked(diff), "diff");
      } catch (err) {
        throw new Violation(`the snapshot's own diff does not apply onto the parent: ${describe(err)}`);
      }
      const treeA = this.#tree(a);
      const treeB = this.#tree(b);
      if (treeA.join("\n") !== treeB.join("\n")) throw new Violation(`diff then apply gives another tree: ${firstDifference(treeA, treeB)}`);
      this.#checkOutside();
      outcome.tree = treeA;
      return outcome;
    } finally {
      for (const k of keys) {
        try {
          this.#svc.remove(k);
        } catch {
          // not made
        }
      }
    }
  }

  /** The parent's tree and the snapshots' directory: nothing but the snapshot may change. */
  #checkOutside(): void {
    const base = treeListing(this.#svc.layerView("base").upper, true);
    if (base.join("\n") !== this.#baseTree.join("\n")) throw new Violation(`the parent changed: ${firstDifference(this.#baseTree, base)}`);
    const stray = readdirSync(this.#svc.dirs).filter((n) => !/^\d+$/.test(n));
    if (stray.length) throw new Violation(`left in the snapshots directory: ${stray.join(", ")}`);
    if (this.sn === "overlay") {
      for (const id of readdirSync(this.#svc.dirs)) {
        const extra = readdirSync(join(this.#svc.dirs, id)).filter((n) => n !== "fs" && n !== "work");
        if (extra.length) throw new Violation(`left in snapshot directory ${id}: ${extra.join(", ")}`);
      }
    }
  }

  /** The tree of active `key` as its mount shows it. */
  #tree(key: string): string[] {
    if (this.sn === "native") return treeListing(this.#svc.layerView(key).upper, false);
    for (const m of this.#svc.mounts(key)) mount(m, this.#mnt);
    try {
      return treeListing(this.#mnt, false);
    } finally {
      unmount(this.#mnt);
    }
  }

  close(): void {
    this.#svc.close();
  }
}

/** A layer stor writes names no real entry `.wh.*`: only empty regular files are whiteouts. */
async function checkNoWhiteoutFiles(layer: Uint8Array): Promise<void> {
  const reader = new TarReader(chunked(layer));
  for (let h = await reader.next(); h; h = await reader.next()) {
    const parts = h.path.split("/");
    if (parts.slice(0, -1).some((p) => p.startsWith(".wh."))) throw new Violation(`diff emits an entry below a whiteout name: ${h.path}`);
    if (parts.at(-1)!.startsWith(".wh.") && (h.type !== "file" || h.size !== 0)) throw new Violation(`diff emits a real ${h.type} named ${h.path}`);
  }
}
