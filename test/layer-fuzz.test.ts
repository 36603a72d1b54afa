/**
 * The layer fuzzer in the suite: every crasher it has found (test/fuzz/regressions) replayed
 * against every invariant on both snapshotters, in-process and through the real binary; then a
 * short run of fresh inputs and a stretch of the truncation sweep (`npm run fuzz` runs as long as
 * asked). A failure names the seed and
 * input, which `fuzzInput(seed, index)` makes again.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { TestRoot, isRoot, must, need, unmountBelow } from "./helpers.ts";
import { SNAPSHOTTERS, committedLayer, oneLineError, tar } from "./layer-helpers.ts";
import { FUZZED, FuzzBed, treeListing, undecidedAlike, type Outcome } from "./fuzz/harness.ts";
import { fuzz } from "./fuzz/run.ts";
import { BASE, SWEEP_LENGTH, encode } from "./fuzz/tarModel.ts";

const REGRESSIONS = join(import.meta.dir, "fuzz", "regressions");
const CRASHERS = readdirSync(REGRESSIONS).filter((n) => n.endsWith(".tar")).sort();
/** Seconds of fresh fuzzing in the suite, and of the truncation sweep: together under a minute. */
const SHORT_RUN = 35;
const SWEEP_RUN = 20;

describe("fuzz crashers stay fixed", () => {
  const run = isRoot();
  let dir: string;
  const beds: FuzzBed[] = [];
  beforeAll(async () => {
    if (!run) return;
    dir = mkdtempSync("/tmp/stor-fuzz-reg-");
    for (const sn of FUZZED) {
      const bed = new FuzzBed(dir, sn);
      await bed.init();
      beds.push(bed);
    }
  });
  afterAll(() => {
    for (const bed of beds) bed.close();
    if (dir) {
      unmountBelow(dir);
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test.skipIf(!need(run, "needs root")).each(CRASHERS)("%s, in-process on both snapshotters", async (name) => {
    const input = readFileSync(join(REGRESSIONS, name));
    const outcomes: Outcome[] = [];
    for (const bed of beds) outcomes.push(await bed.run(input, 1)); // throws a Violation naming the invariant
    expect(undecidedAlike(outcomes[0]!, outcomes[1]!)).toBeUndefined();
  });
});

describe.each(SNAPSHOTTERS)("fuzz crashers through the binary on %s", (sn) => {
  const run = isRoot();
  let root: TestRoot;
  beforeAll(() => {
    if (!run) return;
    root = TestRoot.for(sn, "stor-fuzz-bin-");
    committedLayer(root, sn, "base", join(root.dir("layers"), "base.tar"), encode(BASE));
  });
  afterAll(() => root?.close());

  /** The tree of active `key` as its mount shows it. */
  const tree = (key: string) => {
    const mnt = root.dir(`mnt-${key}`);
    root.ok(["-s", sn, "mount", key, mnt]);
    try {
      return treeListing(mnt, false);
    } finally {
      must(`umount ${mnt}`);
    }
  };

  test.skipIf(!need(run, "needs root")).each(CRASHERS)("%s: exit 0, or exit 2 with one line and the snapshot as it was", (name) => {
    const key = name.replace(/\.tar$/, "");
    root.ok(["-s", sn, "snapshot", "prepare", key, "base"]);
    // Something of its own first, which a refusal must keep.
    const own = join(root.dir("layers"), "own.tar");
    writeFileSync(own, tar([{ name: "mine/", type: "5", mode: 0o755 }, { name: "mine/f", data: "mine" }]));
    root.ok(["-s", sn, "snapshot", "apply", key, own]);
    const before = tree(key);
    const t0 = performance.now();
    const r = root.stor(["-s", sn, "snapshot", "apply", key, join(REGRESSIONS, name)]);
    expect(performance.now() - t0).toBeLessThan(5000);
    if (r.code === 0) expect(r.stderr).toBe("");
    else {
      expect(r.code).toBe(2);
      expect(oneLineError(r.stderr)).toBe(true);
      expect(tree(key)).toEqual(before);
    }
    root.ok(["-s", sn, "snapshot", "rm", key]);
  });
});

test.skipIf(!need(isRoot(), "needs root"))(
  `${SHORT_RUN} s of fresh fuzz inputs break no invariant`,
  async () => {
    const seed = Number(process.env.FUZZ_SEED ?? Date.now() % 1_000_000);
    const s = await fuzz({ seconds: SHORT_RUN, seed, binaryEvery: 40 });
    console.log(`fuzz seed ${seed}: ${s.runs} inputs in ${s.seconds.toFixed(0)} s, ${s.accepted} applies accepted, ${s.refused} refused`);
    expect(s.found.map((f) => `seed ${seed}, input ${f.index}: ${f.message}`)).toEqual([]);
    expect(s.runs).toBeGreaterThan(0);
  },
  (SHORT_RUN + 60) * 1000,
);

test.skipIf(!need(isRoot(), "needs root"))(
  `${SWEEP_RUN} s of the truncation sweep break no invariant`,
  async () => {
    // A different stretch each run (the whole sweep, `npm run fuzz -- --sweep`, takes minutes).
    const start = Number(process.env.FUZZ_SWEEP_START ?? Math.floor(Math.random() * SWEEP_LENGTH));
    const s = await fuzz({ seconds: SWEEP_RUN, seed: "sweep", start, binaryEvery: 0 });
    console.log(`truncation sweep from ${start}: ${s.runs} cuts in ${s.seconds.toFixed(0)} s`);
    expect(s.found.map((f) => `sweep input ${f.index}: ${f.message}`)).toEqual([]);
    expect(s.runs).toBeGreaterThan(0);
  },
  (SWEEP_RUN + 60) * 1000,
);
