/**
 * cac's source as the build compiles it into stor (src/build.ts). Not part of the executable.
 *
 * Every command parses through cac, so what cac runs for the first time in a process is paid by
 * every command: each RegExp on its first run (25–75 µs) and each JavaScript-implemented builtin
 * on its first call (Array.prototype.map 55 µs, reduce, entries). The parse of a command with no
 * options ran four RegExps, map and reduce and took 0.45 ms; with the helpers below written as
 * loops and string searches, 0.2 ms. Each replacement does what the code it replaces does, for
 * every input (test/unit/cacSource.test.ts holds the two builds of cac to each other).
 *
 * cac extends node:events' EventEmitter only to emit `command:*` events, which stor never
 * listens to, and loading node:events (with the internal modules it pulls in) cost every command
 * about 0.17 ms: cac gets a class with the one method it calls.
 */

/** A piece of cac's source and what it becomes. */
const REPLACEMENTS: readonly (readonly [string, string])[] = [
  ["import { EventEmitter } from 'events';", "class EventEmitter { emit() { return false; } }"],
  // `v.replace(/[<[].+/, "")`: from the first `<` or `[` with a character after it on its line, to the line's end.
  [
    `const removeBrackets = (v) => v.replace(/[<[].+/, "").trim();`,
    `const isLineEnd = (c) => c === "\\n" || c === "\\r" || c === "\\u2028" || c === "\\u2029";
const removeBrackets = (v) => {
  for (let i = 0; i + 1 < v.length; i++) {
    if ((v[i] === "<" || v[i] === "[") && !isLineEnd(v[i + 1])) {
      let end = i + 2;
      while (end < v.length && !isLineEnd(v[end])) end++;
      return (v.slice(0, i) + v.slice(end)).trim();
    }
  }
  return v.trim();
};`,
  ],
  // Every `<x>`, then every `[x]`, as the global RegExps /<([^>]+)>/g and /\[([^\]]+)\]/g find them.
  [
    `  let angledMatch;
  while (angledMatch = ANGLED_BRACKET_RE_GLOBAL.exec(v)) {
    res.push(parse(angledMatch));
  }
  let squareMatch;
  while (squareMatch = SQUARE_BRACKET_RE_GLOBAL.exec(v)) {
    res.push(parse(squareMatch));
  }`,
    `  const every = (open, close) => {
    for (let i = v.indexOf(open); i >= 0; ) {
      const j = v.indexOf(close, i + 1);
      if (j < 0) return;
      if (j === i + 1) {
        i = v.indexOf(open, i + 1);
        continue;
      }
      res.push(parse([v.slice(i, j + 1), v.slice(i + 1, j)]));
      i = v.indexOf(open, j + 1);
    }
  };
  every("<", ">");
  every("[", "]");`,
  ],
  [
    `  const ANGLED_BRACKET_RE_GLOBAL = /<([^>]+)>/g;
  const SQUARE_BRACKET_RE_GLOBAL = /\\[([^\\]]+)\\]/g;
`,
    "",
  ],
  // `input.replace(/([a-z])-([a-z])/g, …)`: `x-y` becomes `xY`, left to right, matches not overlapping.
  [
    `  return input.replace(/([a-z])-([a-z])/g, (_, p1, p2) => {
    return p1 + p2.toUpperCase();
  });`,
    `  const lower = (c) => c !== undefined && c >= "a" && c <= "z";
  let out = "";
  for (let i = 0; i < input.length; i++) {
    if (lower(input[i]) && input[i + 1] === "-" && lower(input[i + 2])) {
      out += input[i] + input[i + 2].toUpperCase();
      i += 2;
    } else out += input[i];
  }
  return out;`,
  ],
  // Only the part before the first dot is camel-cased.
  [
    `  return name.split(".").map((v, i) => {
    return i === 0 ? camelcase(v) : v;
  }).join(".");`,
    `  const dot = name.indexOf(".");
  return dot < 0 ? camelcase(name) : camelcase(name.slice(0, dot)) + name.slice(dot);`,
  ],
  [
    "  for (const [index, option] of options.entries()) {",
    `  for (let index = 0; index < options.length; index++) {
    const option = options[index];`,
  ],
  // The reduce built a new object per key; assigning in the same order gives the same object.
  [
    `    parsed = Object.keys(parsed).reduce((res, name) => {
      return __assign(__assign({}, res), {
        [camelcaseOptionName(name)]: parsed[name]
      });
    }, {_: []});`,
    `    const camelCased = {_: []};
    for (const name of Object.keys(parsed)) camelCased[camelcaseOptionName(name)] = parsed[name];
    parsed = camelCased;`,
  ],
  // An option's spelling: `.*` removed, then each name's leading `-` or `--`, then a `no-`.
  [`    rawName = rawName.replace(/\\.\\*/g, "");`, `    rawName = rawName.split(".*").join("");`],
  [`      let name = v.trim().replace(/^-{1,2}/, "");`, `      let name = v.trim();\n      name = name.slice(name.startsWith("--") ? 2 : name.startsWith("-") ? 1 : 0);`],
  [`        name = name.replace(/^no-/, "");`, `        name = name.slice(3);`],
  // An option's names: the same callback on each comma-separated part, in a loop instead of map
  // (which a command given an option compiled for it), then the same sort.
  [`    this.names = removeBrackets(rawName).split(",").map((v) => {`, `    const toName = (v) => {`],
  [
    `    }).sort((a, b) => a.length > b.length ? 1 : -1);`,
    `    };
    this.names = [];
    for (const v of removeBrackets(rawName).split(",")) this.names.push(toName(v));
    this.names.sort((a, b) => a.length > b.length ? 1 : -1);`,
  ],
];

/** Where cac's source is, for the build's loader. */
export const CAC_SOURCE_PATH = /[\\/]cac[\\/]dist[\\/]index\.mjs$/;

/**
 * cac's `source` with {@link REPLACEMENTS} made. A piece that is not found exactly once fails
 * the build: a cac that changed is looked at again, not compiled half-changed.
 */
export function leanCac(source: string): string {
  let out = source;
  for (const [from, to] of REPLACEMENTS) {
    const at = out.indexOf(from);
    if (at < 0 || out.indexOf(from, at + 1) >= 0) throw new Error(`cac: ${at < 0 ? "no" : "more than one"} "${from.split("\n")[0]}" to replace (has cac changed?)`);
    out = out.slice(0, at) + to + out.slice(at + from.length);
  }
  return out;
}
