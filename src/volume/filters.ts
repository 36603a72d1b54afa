/**
 * Docker's volume filters (`-f key=value`): `name` (a regular expression, any of them),
 * `driver` (any of them), `label` (`K` or `K=V`, all of them), `label!` (none of them all),
 * `dangling` (true or false) and prune's `all`.
 */
import { InvalidArgumentError } from "../errors.ts";
import type { VolumeRecord } from "./volumeStore.ts";

/** Filter values by key. */
export type Filters = ReadonlyMap<string, readonly string[]>;

/** The keys `ls` takes. */
export const LIST_FILTERS = ["name", "driver", "label", "dangling"] as const;
/** The keys `prune` takes. */
export const PRUNE_FILTERS = ["label", "label!", "all"] as const;

/** Parses `key=value` words, allowing only the `accepted` keys. */
export function parseFilters(words: readonly string[], accepted: readonly string[]): Filters {
  const out = new Map<string, string[]>();
  for (const w of words) {
    const eq = w.indexOf("=");
    if (eq <= 0) throw new InvalidArgumentError(`filter "${w}"`, "bad format (expected name=value)");
    const key = w.slice(0, eq);
    if (!accepted.includes(key)) throw new InvalidArgumentError(`filter "${key}"`, `unknown (expected ${accepted.join(", ")})`);
    out.set(key, [...(out.get(key) ?? []), w.slice(eq + 1)]);
  }
  return out;
}

/** The value of boolean filter `key` (`true`/`1` or `false`/`0`), or undefined when it is not set. */
export function boolFilter(filters: Filters, key: string): boolean | undefined {
  const values = filters.get(key);
  if (!values) return undefined;
  const isTrue = values.includes("true") || values.includes("1");
  const isFalse = values.includes("false") || values.includes("0");
  if (isTrue === isFalse) throw new InvalidArgumentError(`filter "${key}=${values.join(",")}"`, "expected true or false");
  return isTrue;
}

/** True when every label filter `K` or `K=V` in `wanted` holds for `labels`. */
function labelsMatch(wanted: readonly string[], labels: Record<string, string>): boolean {
  return wanted.every((f) => {
    const eq = f.indexOf("=");
    const k = eq < 0 ? f : f.slice(0, eq);
    return Object.hasOwn(labels, k) && (eq < 0 || labels[k] === f.slice(eq + 1));
  });
}

/** A name filter: the name itself, or a regular expression found in the name. */
function namePattern(pattern: string): (name: string) => boolean {
  let re: RegExp | undefined;
  try {
    re = new RegExp(pattern);
  } catch {
    // As Docker: a pattern that does not compile matches only itself.
  }
  return (name) => name === pattern || (re?.test(name) ?? false);
}

/** A test of a volume against every filter; a bad filter value fails here, whatever the volumes. */
export function matcher(filters: Filters): (v: VolumeRecord) => boolean {
  const names = filters.get("name")?.map(namePattern);
  const drivers = filters.get("driver");
  const labels = filters.get("label");
  const notLabels = filters.get("label!");
  const dangling = boolFilter(filters, "dangling");
  // A filter not given calls nothing: a JS-implemented builtin (some, every) compiles on its first call.
  return (v) =>
    (!names || names.some((match) => match(v.name))) &&
    (!drivers || drivers.includes(v.driver)) &&
    (!labels || labelsMatch(labels, v.labels)) &&
    !(notLabels && labelsMatch(notLabels, v.labels)) &&
    (dangling === undefined || dangling === (v.refs.length === 0));
}
