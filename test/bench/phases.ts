/**
 * An interleaved A/B of stor commands, phase by phase: each command runs N times in turns (the
 * order reversed every other round) with STOR_TRACE=1, and the median of each traced phase and
 * of the wall time is printed per command. A difference of 0.05–0.5 ms can only be read so: runs
 * of one binary after another drift by more than that on a shared VM. Copy the binaries fresh and
 * together first: one read back from disk after its pages were dropped starts 1–2.7 ms slower.
 *
 *   bun test/bench/phases.ts N -- BINARY ARGS… -- BINARY ARGS… [-- …]
 *
 * `{i}` in an argument is replaced by the round's number (`snapshot prepare p{i} base`).
 */
import { median, table } from "./stats.ts";

const LINE = /^stor trace: (.+?)\s+(\d+) µs\s+(?:(\d+) faults)?/;

function parseArgs(argv: readonly string[]): { rounds: number; commands: string[][] } {
  const rounds = Number(argv[0]);
  const commands: string[][] = [];
  for (const a of argv.slice(1)) {
    if (a === "--") commands.push([]);
    else if (commands.length > 0) commands[commands.length - 1]!.push(a);
  }
  if (!Number.isInteger(rounds) || rounds < 1 || commands.length === 0 || commands.some((c) => c.length === 0)) {
    console.error("usage: bun test/bench/phases.ts N -- BINARY ARGS… [-- BINARY ARGS…]");
    process.exit(2);
  }
  return { rounds, commands };
}

function main(): void {
  const { rounds, commands } = parseArgs(process.argv.slice(2));
  const phases = commands.map(() => new Map<string, number[]>());
  const faults = commands.map(() => new Map<string, number[]>());
  const walls = commands.map((): number[] => []);
  for (let i = 0; i < rounds; i++) {
    const order = commands.map((_, k) => k);
    if (i % 2 === 1) order.reverse();
    for (const k of order) {
      const argv = commands[k]!.map((a) => a.replaceAll("{i}", String(i)));
      const t0 = Bun.nanoseconds();
      const p = Bun.spawnSync(argv, { env: { ...process.env, STOR_TRACE: "1" }, stdout: "ignore", stderr: "pipe" });
      walls[k]!.push((Bun.nanoseconds() - t0) / 1e6);
      for (const line of p.stderr.toString().split("\n")) {
        const m = LINE.exec(line);
        if (!m) continue;
        const times = phases[k]!.get(m[1]!) ?? [];
        times.push(Number(m[2]));
        phases[k]!.set(m[1]!, times);
        if (m[3] === undefined) continue; // a cost inside a phase: its faults are the phase's
        const counts = faults[k]!.get(m[1]!) ?? [];
        counts.push(Number(m[3]));
        faults[k]!.set(m[1]!, counts);
      }
    }
  }
  const names = [...new Set(phases.flatMap((p) => [...p.keys()]))];
  const rows = [["phase (median µs, page faults)", ...commands.map((_, k) => `#${k + 1}`)]];
  const cell = (k: number, name: string) => {
    const times = phases[k]!.get(name);
    if (!times) return "—";
    const counts = faults[k]!.get(name);
    return counts ? `${median(times).toFixed(0)} ${median(counts).toFixed(0).padStart(4)}` : median(times).toFixed(0);
  };
  for (const name of names) rows.push([name, ...commands.map((_, k) => cell(k, name))]);
  rows.push([`wall (median ms, N=${rounds})`, ...walls.map((w) => median(w).toFixed(2))]);
  process.stdout.write(table(rows));
  commands.forEach((c, k) => console.log(`#${k + 1}: ${c.join(" ")}`));
}

main();
