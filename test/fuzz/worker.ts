/**
 * Runs fuzz inputs `START`, `START+1`, … of `SEED` on both snapshotters in this process, until
 * `COUNT` are done or `UNTIL` (epoch ms) passes, and reports on stdout, one line each:
 * `start I` before input I (so the supervisor knows which input hung), `bad I SNAPSHOTTER MESSAGE`
 * for a broken invariant, and at the end `done RUNS ACCEPTED REFUSED SKIPPED` (applies on either
 * snapshotter; skipped: accepted, but the diff too large to read back). Every `BINARY_EVERY`-th
 * input also goes through the real binary (exit code and stderr as a user sees them).
 *
 * SEED `sweep` runs the truncation sweep ({@link sweepInput}) instead of mutated inputs.
 *
 * Usage: bun test/fuzz/worker.ts DIR SEED START COUNT UNTIL [BINARY_EVERY]
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe } from "../../src/errors.ts";
import { TestRoot } from "../helpers.ts";
import { oneLineError } from "../layer-helpers.ts";
import { FUZZED, FuzzBed, Violation, undecidedAlike, type Outcome } from "./harness.ts";
import { BASE, encode, fuzzInput, sweepInput } from "./tarModel.ts";

const [dir, seedArg, startArg, countArg, untilArg, everyArg] = process.argv.slice(2);
const sweep = seedArg === "sweep";
const seed = sweep ? 0 : Number(seedArg);
const start = Number(startArg);
const count = Number(countArg);
const until = Number(untilArg);
const binaryEvery = Number(everyArg ?? 0);

const beds = FUZZED.map((sn) => new FuzzBed(dir!, sn));
for (const bed of beds) await bed.init();

/** A root for the real binary, with the same parent committed on both snapshotters. */
let binRoot: TestRoot | undefined;
function binaryRoot(): TestRoot {
  if (binRoot) return binRoot;
  binRoot = new TestRoot("stor-fuzz-bin-");
  const base = join(binRoot.path, "..", `${binRoot.path.split("/").pop()}-base.tar`);
  writeFileSync(base, encode(BASE));
  for (const sn of FUZZED) {
    binRoot.ok(["-s", sn, "snapshot", "prepare", "base-a"]);
    binRoot.ok(["-s", sn, "snapshot", "apply", "base-a", base]);
    binRoot.ok(["-s", sn, "snapshot", "commit", "base", "base-a"]);
  }
  return binRoot;
}

let runs = 0;
let accepted = 0;
let refused = 0;
let skipped = 0;
const say = (line: string) => process.stdout.write(`${line}\n`);

for (let i = start; i < start + count && Date.now() < until; i++) {
  const input = sweep ? sweepInput(i) : fuzzInput(seed, i);
  if (!input) break;
  say(`start ${i}`);
  const outcomes: Outcome[] = [];
  for (const bed of beds) {
    try {
      const o = await bed.run(input, seed ^ i);
      outcomes.push(o);
      if (o.skipped) skipped++;
      if (o.accepted) accepted++;
      else refused++;
    } catch (err) {
      say(`bad ${i} ${bed.sn} ${(err instanceof Violation ? err.message : `crash: ${describe(err)} ${(err as Error).stack?.split("\n")[1]?.trim()}`).replace(/\n/g, " ")}`);
    }
  }
  runs++;
  const differ = outcomes.length === 2 ? undecidedAlike(outcomes[0]!, outcomes[1]!) : undefined;
  if (differ) say(`bad ${i} ${differ}`);
  if (binaryEvery > 0 && i % binaryEvery === 0) {
    const root = binaryRoot();
    const file = join(root.path, "..", `${root.path.split("/").pop()}-input.tar`);
    writeFileSync(file, input);
    for (const sn of FUZZED) {
      const key = `k${i}`;
      root.ok(["-s", sn, "snapshot", "prepare", key, "base"]);
      const r = root.stor(["-s", sn, "snapshot", "apply", key, file]);
      if (!(r.code === 0 && r.stderr === "") && !(r.code === 2 && oneLineError(r.stderr))) say(`bad ${i} ${sn} binary: exit ${r.code}: ${JSON.stringify(r.stderr.slice(0, 300))}`);
      root.ok(["-s", sn, "snapshot", "rm", key]);
    }
  }
}
for (const bed of beds) bed.close();
binRoot?.close();
say(`done ${runs} ${accepted} ${refused} ${skipped}`);
