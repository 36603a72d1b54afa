/**
 * POSIX path arithmetic, as node:path's posix functions do it, for the five stor uses. stor's own
 * because loading node:path (and the internal modules it pulls in) cost every command about
 * 0.2 ms of its start-up; test/unit/path.test.ts holds these to node:path's results.
 *
 * No JavaScript-implemented builtin (map, filter, split with a RegExp…), which a command pays to
 * compile on its first call, and no loop over characters, which runs slowly in the interpreter
 * that runs a short command's code: a path with nothing to resolve is found so by native string
 * searches and returned as it is.
 */

/** The segments of `path` joined after resolving `.`, `..` and repeated slashes; `..` kept above the start unless `absolute`. */
function normalizeSegments(path: string, absolute: boolean): string {
  const out: string[] = [];
  for (const segment of path.split("/")) {
    if (segment === "" || segment === ".") continue;
    if (segment !== "..") out.push(segment);
    else if (out.length > 0 && out[out.length - 1] !== "..") out.pop();
    else if (!absolute) out.push("..");
  }
  return out.join("/");
}

/**
 * Whether `path` has nothing to resolve: no empty, `.` or `..` segment except a trailing empty
 * one (a trailing slash, which normalizing keeps). Native string searches, so the usual path
 * costs no loop in the interpreter.
 */
function isNormal(path: string): boolean {
  return (
    path !== "" &&
    !path.includes("//") &&
    !path.includes("/./") &&
    !path.includes("/../") &&
    !path.endsWith("/.") &&
    !path.endsWith("/..") &&
    !path.startsWith("./") &&
    !path.startsWith("../") &&
    path !== "." &&
    path !== ".."
  );
}

/** `path` with `.`, `..` and repeated slashes resolved; a trailing slash is kept, as node's `normalize` keeps it. */
function normalize(path: string): string {
  if (isNormal(path)) return path;
  if (path === "") return ".";
  const absolute = path.charCodeAt(0) === 0x2f;
  const trailing = path.charCodeAt(path.length - 1) === 0x2f;
  let s = normalizeSegments(path, absolute);
  if (s === "" && !absolute) s = ".";
  if (s !== "" && trailing) s += "/";
  return absolute ? `/${s}` : s;
}

/** The non-empty `parts` joined with `/` and normalized, as node's `path.join`. */
export function join(...parts: string[]): string {
  let joined = "";
  for (const p of parts) if (p !== "") joined = joined === "" ? p : `${joined}/${p}`;
  return normalize(joined);
}

/** The absolute path `parts` resolve to, right to left from the working directory, as node's `path.resolve`. */
export function resolve(...parts: string[]): string {
  let resolved = "";
  let absolute = false;
  for (let i = parts.length - 1; i >= -1 && !absolute; i--) {
    const p = i >= 0 ? parts[i]! : process.cwd();
    if (p === "") continue;
    resolved = resolved === "" ? p : `${p}/${resolved}`;
    absolute = p.charCodeAt(0) === 0x2f;
  }
  if (absolute && isNormal(resolved) && (resolved.length === 1 || !resolved.endsWith("/"))) return resolved;
  const s = normalizeSegments(resolved, absolute);
  return absolute ? `/${s}` : s === "" ? "." : s;
}

/** `path` without its last segment (and the slashes after it), as node's `path.dirname`. */
export function dirname(path: string): string {
  if (path === "") return ".";
  const rooted = path.charCodeAt(0) === 0x2f;
  let end = -1;
  let inTrailingSlashes = true;
  for (let i = path.length - 1; i >= 1; i--) {
    if (path.charCodeAt(i) === 0x2f) {
      if (!inTrailingSlashes) {
        end = i;
        break;
      }
    } else inTrailingSlashes = false;
  }
  if (end === -1) return rooted ? "/" : ".";
  if (rooted && end === 1) return "//";
  return path.slice(0, end);
}

/** The last segment of `path`, trailing slashes ignored, as node's `path.basename` with one argument. */
export function basename(path: string): string {
  let end = path.length;
  while (end > 0 && path.charCodeAt(end - 1) === 0x2f) end--;
  return path.slice(path.lastIndexOf("/", end - 1) + 1, end);
}

/** The path from `from` to `to`, both resolved first, as node's `path.relative`. */
export function relative(from: string, to: string): string {
  const a = resolve(from);
  const b = resolve(to);
  if (a === b) return "";
  const as = a === "/" ? [] : a.slice(1).split("/");
  const bs = b === "/" ? [] : b.slice(1).split("/");
  let common = 0;
  while (common < as.length && common < bs.length && as[common] === bs[common]) common++;
  const up: string[] = [];
  for (let i = common; i < as.length; i++) up.push("..");
  for (let i = common; i < bs.length; i++) up.push(bs[i]!);
  return up.join("/");
}
