/**
 * The layer fuzzer (`npm run fuzz`): runs the inputs of one seed through a worker process
 * ({@link ./worker.ts}) for a chosen time, and watches it. A worker that stops reporting for
 * {@link HANG_MS} is stuck on its current input: it is killed, the input is kept as a crasher,
 * and a new worker carries on after it. Inputs that break an invariant are kept too, as
 * `test/fuzz/regressions/found-SEED-INDEX.tar` with the message beside it (`.txt`); the test suite
 * replays every file there.
 *
 * `--sweep` runs the truncation sweep instead: every seed layer cut at every offset (from input
 * `--start`, 0 unless given).
 *
 * Usage: bun test/fuzz/run.ts [--seconds N] [--seed S | --sweep] [--start I] [--binary-every K] [--out DIR]
 * Prints a summary; exits 1 when anything was found.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { spawn } from "bun";
import { unmountBelow } from "../helpers.ts";
import { fuzzInput, sweepInput } from "./tarModel.ts";

/** Longest a worker may go without starting the next input: an apply past 2 s/MiB is bad anyway. */
const HANG_MS = 20_000;

export interface FuzzSummary {
  runs: number;
  accepted: number;
  refused: number;
  skipped: number;
  seconds: number;
  found: { index: number; message: string; file?: string }[];
}

/** Runs the fuzzer for `seconds`; `out` (if given) receives the crashers. */
export async function fuzz(opts: { seconds: number; seed: number | "sweep"; start?: number; binaryEvery: number; out?: string; log?: (line: string) => void }): Promise<FuzzSummary> {
  const dir = mkdtempSync("/tmp/stor-fuzz-");
  const t0 = Date.now();
  const until = t0 + opts.seconds * 1000;
  const summary: FuzzSummary = { runs: 0, accepted: 0, refused: 0, skipped: 0, seconds: 0, found: [] };
  const keep = (index: number, message: string) => {
    let file: string | undefined;
    if (opts.out && !summary.found.some((f) => f.index === index)) {
      mkdirSync(opts.out, { recursive: true });
      file = join(opts.out, `found-${opts.seed}-${index}.tar`);
      writeFileSync(file, opts.seed === "sweep" ? sweepInput(index)! : fuzzInput(opts.seed, index));
      writeFileSync(file.replace(/\.tar$/, ".txt"), `${message}\n`);
    }
    summary.found.push({ index, message, file });
    opts.log?.(`found ${index}: ${message}`);
  };
  try {
    let next = opts.start ?? 0;
    while (Date.now() < until) {
      const work = join(dir, `w${next}`);
      mkdirSync(work);
      const worker = spawn([process.execPath, resolve(import.meta.dir, "worker.ts"), work, String(opts.seed), String(next), String(1e9), String(until), String(opts.binaryEvery)], {
        stdout: "pipe",
        stderr: "inherit",
      });
      let current = next;
      let last = Date.now();
      let done = false;
      const watchdog = setInterval(() => {
        if (Date.now() - last > HANG_MS) worker.kill(9);
      }, 1000);
      const decoder = new TextDecoder();
      let buffered = "";
      for await (const chunk of worker.stdout) {
        buffered += decoder.decode(chunk, { stream: true });
        const lines = buffered.split("\n");
        buffered = lines.pop()!;
        for (const line of lines) {
          const [word, a, ...rest] = line.split(" ");
          if (word === "start") {
            current = Number(a);
            last = Date.now();
          } else if (word === "bad") keep(Number(a), rest.join(" "));
          else if (word === "done") {
            done = true;
            summary.runs += Number(a);
            summary.accepted += Number(rest[0]);
            summary.refused += Number(rest[1]);
            summary.skipped += Number(rest[2]);
          }
        }
      }
      await worker.exited;
      clearInterval(watchdog);
      unmountBelow(work);
      rmSync(work, { recursive: true, force: true });
      if (done) break;
      // The worker hung or died on `current`: runs before it are lost from the count, not the crasher.
      summary.runs += current - next + 1;
      keep(current, Date.now() - last > HANG_MS ? `no progress for ${HANG_MS / 1000} s (a hang)` : `the worker died (exit ${worker.exitCode}, signal ${worker.signalCode})`);
      next = current + 1;
    }
  } finally {
    unmountBelow(dir);
    rmSync(dir, { recursive: true, force: true });
  }
  summary.seconds = (Date.now() - t0) / 1000;
  return summary;
}

if (import.meta.main) {
  const arg = (name: string, fallback: number) => {
    const i = process.argv.lastIndexOf(`--${name}`);
    return i > 0 ? Number(process.argv[i + 1]) : fallback;
  };
  const outAt = process.argv.lastIndexOf("--out");
  const seed = process.argv.includes("--sweep") ? "sweep" : arg("seed", Date.now() % 1_000_000);
  const s = await fuzz({
    seconds: arg("seconds", 300),
    seed,
    start: arg("start", 0),
    binaryEvery: arg("binary-every", 50),
    out: outAt > 0 ? process.argv[outAt + 1] : resolve(import.meta.dir, "regressions"),
    log: (l) => console.log(l),
  });
  console.log(`seed ${seed}: ${s.runs} inputs in ${s.seconds.toFixed(0)} s (${(s.runs / s.seconds).toFixed(1)}/s), each on overlay and native: ${s.accepted} applies accepted, ${s.refused} refused, ${s.skipped} round trips skipped (diff over 64 MiB); ${s.found.length} found`);
  process.exit(s.found.length ? 1 : 0);
}
