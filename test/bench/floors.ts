/**
 * The floors under stor's figures: minimal programs compiled as stor is (bun build --compile
 * --minify --bytecode), each doing only what a command cannot do without, with no CLI, no
 * configuration and no checks. What they take is what any stor must take on this runtime.
 *
 * - hello: Bun's own start-up (a program that prints a line).
 * - info: bun:sqlite, libc through bun:ffi as stor's file calls go, one query and its JSON.
 * - contract info: the same, with what stor's contract puts in front of every command: the
 *   words parsed by cac, and the configuration file read.
 * - create: a crash-safe create in a store of its own, as stor's prepare and volume create must
 *   do it: SQLite with WAL and synchronous=FULL, the directories made under a temporary name,
 *   BEGIN IMMEDIATE, the row inserted, the rename, an fsync of the parent directory, COMMIT (the
 *   WAL's fsync, and its directory's), and _exit.
 * - remove: a crash-safe remove of what create made, as stor's rm must do it: BEGIN IMMEDIATE,
 *   the row looked up, its children asked for (a parent is not removed from under them),
 *   /proc/self/mountinfo read for a mount of its directory (stor refuses to remove a mounted
 *   snapshot), a lock tried on it without waiting (nor one a layer is being applied to), the row
 *   deleted, COMMIT, then the directory removed (its two empty subdirectories
 *   and itself: a directory left by a crash after COMMIT is cleanup's), and _exit.
 * - apply: an uncompressed layer extracted and its diffID hashed on a second thread, as stor's
 *   apply must do it (applyFloor.ts, a program of its own for its length).
 * - proxy: containerd's Snapshots API served with grpc-js over a Map, as any proxy snapshotter
 *   on this runtime must serve it (proxyFloor.ts).
 */
import { Database } from "bun:sqlite";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { must } from "./proc.ts";
import { START_UP_JIT_SCALE } from "../../src/jitPolicy.ts";
import { leanCac } from "../../src/cacSource.ts";

/** A minimal program: its argv, given the run's index (for fresh names). */
export type Floor = (i: number) => string[];

/** Compiles `source` as stor is compiled, to `dir/name`. */
function compile(dir: string, name: string, source: string): string {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, `${name}.ts`), source);
  return compileFile(join(dir, `${name}.ts`), join(dir, name));
}

/** Compiles the program at `path` as stor is compiled, to `out`. */
function compileFile(path: string, out: string): string {
  // The same runtime options as src/build.ts gives stor: no .env or bunfig read, the start-up JIT policy.
  must([
    process.execPath, "build", "--compile", "--minify", "--bytecode", "--format=esm", "--no-compile-autoload-dotenv", "--no-compile-autoload-bunfig",
    `--compile-jit-policy=${START_UP_JIT_SCALE}`, path, "--outfile", out,
  ]);
  return out;
}

const LIBC = (symbols: string) => `import { dlopen, FFIType } from "bun:ffi";
const { ptr, i32, u32 } = FFIType;
const { symbols: libc } = dlopen("libc.so.6", { ${symbols} });
const encoder = new TextEncoder();
const c = (s: string) => encoder.encode(s + "\\0");
`;

/**
 * The head of a program on the store at `store` that {@link createFloor} makes: bun:sqlite, libc's
 * `symbols`, `ok` (a failed call throws), `items` (the items' directory), `key` (argv[2]), and `db`
 * opened as stor opens a database to write.
 */
function storeProgram(store: string, symbols: string): string {
  return `import { Database } from "bun:sqlite";
${LIBC(symbols)}
const ok = (r: number, what: string) => {
  if (r < 0) throw new Error(what);
  return r;
};
const items = ${JSON.stringify(join(store, "items"))};
const key = process.argv[2]!;
const db = new Database(${JSON.stringify(join(store, "metadata.db"))}, { strict: true });
db.run("PRAGMA busy_timeout = 60000; PRAGMA synchronous = FULL");
`;
}

/** Bun's start-up: prints a line. */
export function helloFloor(dir: string): Floor {
  const bin = compile(dir, "hello", 'console.log("stor");\n');
  return () => [bin];
}

/**
 * The rest of a `snapshot info` program after its key is known (in `key`): the root looked at, the
 * overlay database below `root` opened to read, one query, its JSON written. `libc` must hold
 * `access` and `write`.
 */
function infoQuery(root: string): string {
  const db = join(root, "snapshots/overlay/metadata.db");
  return `if (libc.access(c(${JSON.stringify(root)}), 0) !== 0) throw new Error("no root");
const db = new Database(${JSON.stringify(db)}, { readonly: true });
const s = db.query("SELECT id, key, kind, created, updated FROM snapshots WHERE key = ?").get(key) as Record<string, unknown>;
const labels: Record<string, string> = {};
for (const l of db.query("SELECT name, value FROM labels WHERE snapshot_id = ?").all(s.id as number) as { name: string; value: string }[]) labels[l.name] = l.value;
const out = encoder.encode(JSON.stringify({ Kind: s.kind, Name: s.key, Labels: labels, Created: s.created, Updated: s.updated }, null, 4) + "\\n");
libc.write(1, out, out.length);
`;
}

/** `snapshot info KEY` on stor's overlay database below `root`, as little as it can be done. */
export function infoFloor(dir: string, root: string): Floor {
  const bin = compile(
    dir,
    "info",
    `import { Database } from "bun:sqlite";
${LIBC("access: { args: [ptr, i32], returns: i32 }, write: { args: [i32, ptr, u32], returns: i32 }")}
const key = process.argv[2]!;
${infoQuery(root)}`,
  );
  return () => [bin, "base"];
}

/**
 * The minimal info with what stor's contract adds to any command: its words parsed by cac, as
 * the build compiles cac into stor (src/cacSource.ts), global options first as stor takes them,
 * and the configuration file read (one of comments and sections only, as installed, which sets
 * nothing). Run as `PROGRAM --root ROOT --config FILE snapshot info KEY`.
 */
export function contractInfoFloor(dir: string, root: string): Floor {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "cac.mjs"), leanCac(readFileSync(join(import.meta.dir, "../../node_modules/cac/dist/index.mjs"), "utf8")));
  const bin = compile(
    dir,
    "contract-info",
    `import { Database } from "bun:sqlite";
import { cac } from "./cac.mjs";
${LIBC(`access: { args: [ptr, i32], returns: i32 }, write: { args: [i32, ptr, u32], returns: i32 }, open: { args: [ptr, i32, u32], returns: i32 },
  read: { args: [i32, ptr, u32], returns: i32 }, close: { args: [i32], returns: i32 }`)}
const argv = process.argv.slice(2);
const globals: Record<string, string> = { "--root": "/var/lib/stor", "--config": "/etc/stor/stor.ini" };
while (argv[0] !== undefined && argv[0] in globals) globals[argv.shift()!] = argv.shift()!;
argv.shift(); // the group's word
let key = "";
const cli = cac("stor snapshot");
cli.command("info <key>", "Print snapshot KEY as JSON").action((k: string) => {
  key = k;
});
cli.parse(["", "", ...argv], { run: false });
void cli.runMatchedCommand();
const fd = libc.open(c(globals["--config"]!), 0, 0);
if (fd >= 0) {
  const buf = new Uint8Array(65536);
  const n = libc.read(fd, buf, buf.length);
  if (n < 0) throw new Error("read config");
  libc.close(fd);
  for (const line of new TextDecoder().decode(buf.subarray(0, n)).split("\\n")) {
    const t = line.trim();
    if (t !== "" && t[0] !== ";" && t[0] !== "#" && t[0] !== "[") throw new Error("the config sets something: this floor reads none");
  }
}
${infoQuery(root)}`,
  );
  return () => [bin, "--root", root, "--config", "/dev/null", "snapshot", "info", "base"];
}

/**
 * A crash-safe create of `NAME` in a store of its own under `dir`: directory `new-NAME` with
 * `subdirs` in it, renamed to the row's id inside the write transaction, the parent directory
 * fsynced before COMMIT. `print` writes the name, as volume create does.
 */
export function createFloor(dir: string, name: string, subdirs: readonly string[], print: boolean): Floor {
  const store = join(dir, `${name}-store`);
  mkdirSync(join(store, "items"), { recursive: true });
  const db = new Database(join(store, "metadata.db"), { create: true });
  db.run("PRAGMA journal_mode = WAL");
  // A parent column, as snapshots have, for the rm floor's check of children.
  db.run("CREATE TABLE items (id INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT NOT NULL UNIQUE, parent INTEGER REFERENCES items (id), created TEXT NOT NULL)");
  db.run("CREATE INDEX items_parent ON items (parent)");
  db.close();
  const bin = compile(
    dir,
    name,
    `${storeProgram(
      store,
      `mkdir: { args: [ptr, u32], returns: i32 }, rename: { args: [ptr, ptr], returns: i32 },
  open: { args: [ptr, i32, u32], returns: i32 }, fsync: { args: [i32], returns: i32 }, close: { args: [i32], returns: i32 },
  write: { args: [i32, ptr, u32], returns: i32 }, _exit: { args: [i32], returns: FFIType.void }`,
    )}const temp = items + "/new-" + key;
ok(libc.mkdir(c(temp), 0o700), "mkdir");
for (const sub of ${JSON.stringify(subdirs)}) ok(libc.mkdir(c(temp + "/" + sub), 0o755), "mkdir " + sub);
db.run("BEGIN IMMEDIATE");
if (db.query("SELECT id FROM items WHERE key = ?").get(key)) throw new Error("exists");
const { id } = db.query("INSERT INTO items (key, created) VALUES (?, ?) RETURNING id").get(key, new Date().toISOString()) as { id: number };
ok(libc.rename(c(temp), c(items + "/" + id)), "rename");
const fd = ok(libc.open(c(items), 0, 0), "open");
ok(libc.fsync(fd), "fsync");
libc.close(fd);
db.run("COMMIT");
${print ? 'const out = encoder.encode(key + "\\n");\nlibc.write(1, out, out.length);\n' : ""}libc._exit(0);
`,
  );
  return (i) => [bin, `k${i}`];
}

/**
 * A crash-safe remove of `KEY` from the store {@link createFloor} made as `name` under `dir` (run
 * after it, on the keys it made, with the same `subdirs`, empty, as a snapshot prepared and
 * never written has). Like stor's rm it tries a lock on the directory without waiting: a
 * snapshot a layer is being applied to is not removed.
 */
export function removeFloor(dir: string, name: string, subdirs: readonly string[]): Floor {
  const store = join(dir, `${name}-store`);
  const bin = compile(
    dir,
    `${name}-rm`,
    `${storeProgram(
      store,
      `open: { args: [ptr, i32, u32], returns: i32 }, read: { args: [i32, ptr, u32], returns: i32 }, close: { args: [i32], returns: i32 },
  flock: { args: [i32, i32], returns: i32 }, rmdir: { args: [ptr], returns: i32 }, _exit: { args: [i32], returns: FFIType.void }`,
    )}db.run("BEGIN IMMEDIATE");
const row = db.query("SELECT id FROM items WHERE key = ?").get(key) as { id: number } | null;
if (!row) throw new Error("not found");
if (db.query("SELECT 1 FROM items WHERE parent = ? LIMIT 1").get(row.id)) throw new Error("has children");
const path = items + "/" + row.id;
const fd = ok(libc.open(c("/proc/self/mountinfo"), 0, 0), "open mountinfo");
const buf = new Uint8Array(65536);
const decoder = new TextDecoder();
let text = "";
for (let n; (n = ok(libc.read(fd, buf, buf.length), "read")) > 0; ) text += decoder.decode(buf.subarray(0, n), { stream: true });
libc.close(fd);
if (text.includes(" " + path + " ") || text.includes(path + "/")) throw new Error("mounted");
const held = ok(libc.open(c(path), 0, 0), "open");
ok(libc.flock(held, 2 | 4), "being applied to"); // LOCK_EX | LOCK_NB
db.run("DELETE FROM items WHERE id = ?", [row.id]);
db.run("COMMIT");
libc.close(held);
for (const sub of ${JSON.stringify(subdirs)}) ok(libc.rmdir(c(path + "/" + sub)), "rmdir " + sub);
ok(libc.rmdir(c(path)), "rmdir");
libc._exit(0);
`,
  );
  return (i) => [bin, `k${i}`];
}

/** `snapshot apply` of an uncompressed layer, as little as it can be done: the program of applyFloor.ts, run as `PROGRAM LAYER DIR`. */
export function applyFloor(dir: string): string {
  return compile(dir, "apply", readFileSync(join(import.meta.dir, "applyFloor.ts"), "utf8"));
}

/** containerd's snapshots API over a Map: the program of proxyFloor.ts, run as `PROGRAM SOCKET`. */
export function proxyFloor(dir: string): string {
  mkdirSync(dir, { recursive: true });
  // Compiled where it is, so that its packages are found.
  return compileFile(join(import.meta.dir, "proxyFloor.ts"), join(dir, "proxy"));
}
