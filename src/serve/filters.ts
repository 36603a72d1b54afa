/**
 * containerd's filter expressions over snapshots, as the List call takes them: selectors
 * `FIELD`, `FIELD==VALUE`, `FIELD!=VALUE` and `FIELD~=REGEXP`, joined by `,` (all must match);
 * of several expressions, any may match. Fields are `name`, `parent`, `kind` (active, view,
 * committed) and `labels.KEY`; a field or value with other characters is quoted with `"`, `/`
 * or `|` (`labels."containerd.io/gc.root"`, `name~=/^sha256:/`).
 *
 * As in containerd, a `~=` value is a Go regular expression (RE2 syntax, matched anywhere in the
 * field), and `~=` and `!=` take an absent field for an empty one.
 */
import type { RE2JS } from "re2js";
import { InvalidArgumentError } from "../errors.ts";
import type { Info } from "../snapshot/service.ts";

/** Whether a snapshot passes. */
export type SnapshotPredicate = (info: Info) => boolean;

type Operator = "present" | "==" | "!=" | "~=";

interface Selector {
  path: string[];
  op: Operator;
  value: string;
  re?: RE2JS;
}

const FIELD_RUNE = /[A-Za-z0-9_]/;
const QUOTES = new Set(['"', "/", "|"]);

/**
 * The most characters of filters one List takes. containerd's clients send a few selectors; each
 * `~=` is compiled here, on serve's main thread, and 4,000 of them (95 KB) had held every call up
 * for 7 s.
 */
export const MAX_FILTER_CHARS = 4096;

/** The predicate of `exprs`; none (or only empty ones) lets every snapshot pass. */
export function snapshotFilter(exprs: readonly string[]): SnapshotPredicate {
  let chars = 0;
  for (const e of exprs) chars += e.length;
  if (chars > MAX_FILTER_CHARS) throw new InvalidArgumentError("filters", `${chars} characters, more than the ${MAX_FILTER_CHARS} a List takes`);
  const alternatives = exprs.filter((e) => e.trim() !== "").map(parseExpression);
  if (alternatives.length === 0) return () => true;
  return (info) => alternatives.some((selectors) => selectors.every((s) => matches(s, info)));
}

/** The value of field `path` of `info`, or undefined when it has none. */
function field(info: Info, path: readonly string[]): string | undefined {
  switch (path[0]) {
    case "name":
      return path.length === 1 ? info.name : undefined;
    case "parent":
      return path.length === 1 ? (info.parent ?? "") : undefined;
    case "kind":
      return path.length === 1 ? info.kind : undefined;
    case "labels": {
      // containerd joins the rest, so `labels.a.b` names the label "a.b". Only the snapshot's own:
      // `labels.constructor` is no label every snapshot has.
      const name = path.slice(1).join(".");
      return path.length > 1 && Object.hasOwn(info.labels, name) ? info.labels[name] : undefined;
    }
    default:
      return undefined;
  }
}

function matches(s: Selector, info: Info): boolean {
  const value = field(info, s.path);
  switch (s.op) {
    case "present":
      return value !== undefined;
    case "==":
      return value === s.value;
    case "!=":
      return (value ?? "") !== s.value;
    case "~=":
      return s.re!.test(value ?? "");
  }
}

/**
 * `source` compiled by RE2, as Go compiles it: it matches in time linear in the text, where a
 * backtracking RegExp can take seconds a snapshot (`(.*)*z`) and hold up every other call.
 * Loaded on the first `~=`, so only a List that asks for one pays for it.
 */
function re2(source: string): RE2JS {
  const { RE2JS } = require("re2js") as typeof import("re2js");
  return RE2JS.compile(source);
}

/** Parses one expression into its selectors. */
function parseExpression(expr: string): Selector[] {
  const fail = (why: string): never => {
    throw new InvalidArgumentError(`filter "${expr}"`, why);
  };
  let i = 0;
  const skipSpace = () => {
    while (i < expr.length && /\s/.test(expr[i]!)) i++;
  };
  /** A quoted token starting at `i`: `"` takes JSON escapes, `/` and `|` take text as it is (`\/` for `/`). */
  const quoted = (): string => {
    const q = expr[i]!;
    let j = i + 1;
    while (j < expr.length && expr[j] !== q) j += expr[j] === "\\" ? 2 : 1;
    if (j >= expr.length) fail(`unterminated quote at ${i}`);
    const body = expr.slice(i + 1, j);
    i = j + 1;
    if (q !== '"') return body.replaceAll(`\\${q}`, q);
    try {
      return JSON.parse(`"${body}"`) as string;
    } catch {
      return fail(`bad escape in ${expr.slice(i - body.length - 2, i)}`);
    }
  };
  const name = (): string => {
    if (QUOTES.has(expr[i] ?? "")) return quoted();
    const start = i;
    while (i < expr.length && FIELD_RUNE.test(expr[i]!)) i++;
    if (i === start) fail(`expected a field name at ${i}`);
    return expr.slice(start, i);
  };
  const value = (): string => {
    if (QUOTES.has(expr[i] ?? "")) return quoted();
    const start = i;
    while (i < expr.length && expr[i] !== "," && !/\s/.test(expr[i]!)) i++;
    if (i === start) fail(`expected a value at ${i}`);
    return expr.slice(start, i);
  };

  const selectors: Selector[] = [];
  for (;;) {
    skipSpace();
    const path = [name()];
    while (expr[i] === ".") {
      i++;
      path.push(name());
    }
    skipSpace();
    const two = expr.slice(i, i + 2);
    let s: Selector = { path, op: "present", value: "" };
    if (two === "==" || two === "!=" || two === "~=") {
      i += 2;
      skipSpace();
      s = { path, op: two, value: value() };
      if (two === "~=") {
        try {
          s.re = re2(s.value);
        } catch (err) {
          fail((err as Error).message);
        }
      }
    }
    selectors.push(s);
    skipSpace();
    if (i >= expr.length) return selectors;
    if (expr[i] !== ",") fail(`unexpected "${expr[i]}" at ${i}`);
    i++;
  }
}
