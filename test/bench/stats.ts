/** Small statistics and formatting helpers for the benchmark: medians, percentiles, tables. */

/** The p-th percentile (0..100) of `xs` by nearest rank; NaN for an empty list. */
export function percentile(xs: readonly number[], p: number): number {
  if (xs.length === 0) return Number.NaN;
  const sorted = [...xs].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]!;
}

/** The median of `xs` (mean of the two middle values for an even count); NaN when empty. */
export function median(xs: readonly number[]): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** Milliseconds with a precision that suits their size. */
export function fmtMs(ms: number): string {
  if (!Number.isFinite(ms)) return "—";
  if (ms >= 10_000) return `${(ms / 1000).toFixed(1)} s`;
  if (ms >= 1000) return `${(ms / 1000).toFixed(2)} s`;
  if (ms >= 100) return `${ms.toFixed(0)} ms`;
  return `${ms.toFixed(1)} ms`;
}

export function fmtRatio(r: number): string {
  return Number.isFinite(r) ? `${r.toFixed(2)}×` : "—";
}

export function fmtBytes(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i === 0 ? v.toFixed(0) : v.toFixed(1)} ${units[i]}`;
}

/** A plain text table: the first row is the header; columns padded, numbers right-aligned. */
export function table(rows: readonly (readonly string[])[]): string {
  const widths: number[] = [];
  for (const r of rows) r.forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, c.length)));
  const numeric = (c: string) => /^[-\d.,]+\s*(ms|s|×|MiB|GiB|KiB|B|\/s)?$/.test(c) || c === "—";
  const line = (r: readonly string[]) =>
    r.map((c, i) => (numeric(c) && i > 0 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join("  ").trimEnd();
  const out = [line(rows[0]!), widths.map((w) => "-".repeat(w)).join("  ")];
  for (const r of rows.slice(1)) out.push(line(r));
  return out.join("\n") + "\n";
}

/** One figure that the closing summary compares with its target (a maximum ratio, or none). */
export interface Figure {
  section: string;
  what: string;
  stor: number;
  reference?: number;
  referenceName?: string;
  /** Maximum acceptable stor/reference ratio; undefined for figures reported without a target. */
  target?: number;
  note?: string;
  /** How `stor` is measured: milliseconds (default) or a rate per second. */
  unit?: "ms" | "/s";
}

/** A figure's stor value in its unit. */
export function fmtValue(f: Figure): string {
  if (f.unit === "/s") return Number.isFinite(f.stor) ? `${f.stor.toFixed(0)}/s` : "—";
  return fmtMs(f.stor);
}

/** Every figure measured in this run, in the order they were measured. */
export const figures: Figure[] = [];

export function ratioOf(f: Figure): number {
  return f.reference === undefined || f.reference <= 0 ? Number.NaN : f.stor / f.reference;
}

/** "meets" / "MISSES" against the target, or "info" when the figure has none. */
export function verdict(f: Figure): string {
  const r = ratioOf(f);
  if (f.target === undefined || !Number.isFinite(r)) return "info";
  return r <= f.target ? "meets" : "MISSES";
}
