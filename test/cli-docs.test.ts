/**
 * Help, the man pages, docs/CLI.md and completion say the same thing, and say all of it: every
 * command explains itself, lists every option that applies and shows an example.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { STOR, TestRoot, have, need, sh } from "./helpers.ts";

const DOCS = readFileSync(resolve(import.meta.dir, "../docs/CLI.md"), "utf8");
const help = (...args: string[]) => sh([STOR, ...args, "--help"]);

/** Every command as `[group words..., command]`, read from the help of stor and of each group. */
function commands(): string[][] {
  const top = help().stdout;
  const section = top.slice(top.indexOf("Commands:"), top.indexOf("Global options:"));
  const out: string[][] = [];
  for (const [, word, rest] of section.matchAll(/^ {2}(\S+) ?(\S*)/gm)) {
    if (rest !== "<command>") {
      out.push([word!]);
      continue;
    }
    const group = help(word!).stdout;
    const cmds = group.slice(group.indexOf("Commands:"), group.indexOf("Global options:"));
    for (const [, c] of cmds.matchAll(/^ {2}(\S+)/gm)) out.push([word!, c!]);
  }
  return out;
}

const ALL = commands();

test("stor --help lists every command group and command, changes, diff and apply among them", () => {
  const names = ALL.map((c) => c.join(" "));
  for (const c of ["snapshot changes", "snapshot diff", "snapshot apply", "mount", "unmount", "unpack", "volume prune", "df", "restore", "serve", "completion", "man"]) {
    expect(names).toContain(c);
  }
});

describe.each(ALL.map((c) => [c.join(" "), c] as const))("stor %s --help", (_name, words) => {
  const text = help(...words).stdout;

  test("says what the command does, lists its options and global options, and shows an example", () => {
    expect(help(...words).code).toBe(0);
    const lines = text.split("\n");
    expect(lines[0]).toStartWith(`Usage: stor ${words.join(" ")}`);
    expect(lines[2]!.length).toBeGreaterThan(20); // the description
    expect(text).toMatch(/\nOptions:\n(.*\n)*  -h, --help /);
    expect(text).toContain("\nGlobal options:\n");
    expect(text).toMatch(new RegExp(`\\nExample:\\n  stor ${words[0]}`));
  });

  test("-s/--snapshotter is listed exactly where it applies", () => {
    const snapshotter = words[0] === "snapshot" || ["mount", "unpack", "serve"].includes(words[0]!);
    expect(text.includes("-s, --snapshotter S")).toBe(snapshotter);
  });

  test("docs/CLI.md documents its usage and every option help lists", () => {
    const usage = text.split("\n")[0]!.replace("Usage: ", "");
    expect(DOCS).toContain(`\`${usage}\``);
    const section = DOCS.slice(DOCS.indexOf(`\`${usage}\``));
    const options = text.slice(text.indexOf("Options:"), text.indexOf("Global options:"));
    for (const [, spelling] of options.matchAll(/^ {2}(-.+?)(?: {2,}|\n)/gm)) {
      expect(section.slice(0, section.indexOf("\n#"))).toContain(`\`${spelling!.trim()}\``);
    }
  });
});

test("stor help WORDS is WORDS --help", () => {
  expect(sh([STOR, "help", "volume", "create"]).stdout).toBe(help("volume", "create").stdout);
  expect(sh([STOR, "help", "snapshot"]).stdout).toBe(help("snapshot").stdout);
});

test("docs/CLI.md is what `stor man --format markdown` writes (regenerate it after changing a command)", () => {
  expect(sh([STOR, "man", "--format", "markdown"]).stdout).toBe(DOCS);
});

test("docs/CLI.md has the exit codes and the on-disk layout", () => {
  for (const code of [0, 1, 2, 3, 4, 5]) expect(DOCS).toMatch(new RegExp(`^\\| ${code} \\| \\w`, "m"));
  expect(DOCS).toContain("| `snapshots/<snapshotter>/metadata.db` |");
  expect(DOCS).toContain("| `volumes/<name>/_data` |");
});

describe("man pages", () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync("/tmp/stor-man-");
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test.skipIf(!need(have("man"), "man (man-db)"))("stor man --dir writes stor(1), stor-snapshot(1) and stor-volume(1), found by man", () => {
    expect(sh([STOR, "man", "--dir", dir]).code).toBe(0);
    for (const page of ["stor", "stor-snapshot", "stor-volume"]) {
      expect(sh(["man", "-w", page], { env: { MANPATH: dir } }).stdout.trim()).toBe(join(dir, "man1", `${page}.1`));
    }
  });

  test("man --dir where a file is in the way is bad input (exit 2), naming it", () => {
    const file = join(dir, "a-file");
    writeFileSync(file, "");
    expect(sh([STOR, "man", "--dir", file])).toEqual({ code: 2, stdout: "", stderr: `stor: manual directory ${file}/man1: ${file} is not a directory\n` });
  });

  test.skipIf(!need(have("groff") && have("man"), "groff and man (man-db)"))("the pages are roff groff reads without a warning, with every command", () => {
    for (const page of [[], ["snapshot"], ["volume"]]) {
      const roff = sh([STOR, "man", ...page]).stdout;
      const res = sh(["groff", "-man", "-ww", "-z"], { input: roff });
      expect([page, res.stderr]).toEqual([page, ""]);
    }
    const whole = sh(["sh", "-c", `${STOR} man | MANWIDTH=100 man -l -`]).stdout;
    for (const c of ALL) expect(whole).toContain(`stor ${c.join(" ")} `);
    for (const section of ["EXIT STATUS", "FILES", "ENVIRONMENT", "CONFIGURATION"]) expect(whole).toContain(`\n${section}\n`);
  });
});

/**
 * Runs bash in `cwd` with stor's completion script loaded (stor on `root`), completes the words of
 * `line` (the last being completed) as TAB does, then runs `then`; returns its stdout.
 */
function bashCompletes(root: TestRoot, line: string[], then: string, cwd?: string): string {
  const script = sh([STOR, "completion", "bash"]).stdout;
  const words = line.map((w) => `'${w}'`).join(" ");
  const prog = `stor() { "${STOR}" --root "${root.path}" --config "${root.config}" "$@"; }\n${script}\nCOMP_WORDS=(stor ${words}); COMP_CWORD=${line.length}; _stor; ${then}`;
  return sh(["bash", "-c", prog], { cwd }).stdout;
}

describe("completion", () => {
  let r: TestRoot;
  beforeAll(() => {
    r = new TestRoot();
    r.ok(["snapshot", "-s", "native", "prepare", "alpha"]);
    r.ok(["volume", "create", "vol-one"]);
  });
  afterAll(() => r.close());

  /** What bash offers for the words of `line` (the last being completed). */
  const bashOffers = (line: string[]) => bashCompletes(r, line, `printf '%s\\n' "\${COMPREPLY[@]}"`).split("\n").filter(Boolean);

  test("bash completes commands, options, option values, snapshot keys and volume names", () => {
    expect(bashOffers(["sn"])).toEqual(["snapshot"]);
    expect(bashOffers(["snapshot", "co"])).toEqual(["commit"]);
    expect(bashOffers(["volume", "create", "--l"])).toEqual(["--label", "--log-level"]);
    expect(bashOffers(["snapshot", "ls", "--format", ""])).toEqual(["table", "json"]);
    expect(bashOffers(["-s", "native", "snapshot", "info", ""])).toEqual(["alpha"]);
    expect(bashOffers(["volume", "rm", "vol-"])).toEqual(["vol-one"]);
    expect(bashOffers(["completion", ""])).toEqual(["bash", "zsh", "fish"]);
  });

  test("completion of a root that does not exist offers nothing and makes nothing", () => {
    const gone = join(r.path, "nothing-here");
    expect(sh([STOR, "--root", gone, "__complete", "volume", "rm", ""])).toEqual({ code: 0, stdout: "", stderr: "" });
    expect(sh([STOR, "--root", gone, "__complete", "-s", "native", "snapshot", "rm", ""])).toEqual({ code: 0, stdout: "", stderr: "" });
    expect(sh(["test", "-e", gone]).code).toBe(1);
  });

  test.skipIf(!need(have("zsh"), "zsh"))("the zsh script parses", () => {
    expect(sh(["zsh", "-n", "-c", sh([STOR, "completion", "zsh"]).stdout]).code).toBe(0);
  });

  test.skipIf(!need(have("fish"), "fish"))("the fish script parses", () => {
    expect(sh(["fish", "-n", "-c", sh([STOR, "completion", "fish"]).stdout]).code).toBe(0);
  });

  test("an unknown shell is refused", () => {
    expect(sh([STOR, "completion", "tcsh"])).toMatchObject({ code: 2, stderr: 'stor: shell "tcsh": expected bash, zsh, fish\n' });
  });
});

// Keys are anyone's text (any client of serve --containerd names them): completion offers them as
// they are, and no shell expands or runs them.
describe("completion of keys that hold shell syntax", () => {
  let r: TestRoot;
  let cwd: string;
  let keys: string[];
  const MARKS = ["ran-1", "ran-2"];
  const ran = () => MARKS.filter((f) => existsSync(join(r.path, f)));
  beforeEach(() => {
    for (const f of MARKS) rmSync(join(r.path, f), { force: true });
  });
  beforeAll(() => {
    r = new TestRoot();
    cwd = join(r.path, "cwd");
    mkdirSync(cwd);
    writeFileSync(join(cwd, "a-file"), ""); // what a* would glob to
    keys = [`$(touch ${r.path}/ran-1)`, `\`touch ${r.path}/ran-2\``, "a*", "b c", "$HOME"];
    for (const k of [...keys, "esc\x1b]0;title\x07", "new\nline"]) r.ok(["snapshot", "-s", "native", "prepare", "--", k]);
  });
  afterAll(() => r.close());

  test("bash offers each key quoted, so that the command line holds it as it is, and runs none", () => {
    // Read back as the shell reads the line on Enter.
    const out = bashCompletes(r, ["-s", "native", "snapshot", "info", ""], `eval "typed=(\${COMPREPLY[*]})"; printf '%s\\0' "\${typed[@]}"`, cwd);
    expect(ran()).toEqual([]);
    expect(out.split("\0").filter(Boolean).sort()).toEqual([...keys].sort());
  });

  test("a key with a control character is not offered: a newline would split it, an escape would act on the terminal", () => {
    expect(sh([STOR, "--root", r.path, "--config", r.config, "__complete", "-s", "native", "snapshot", "info", ""]).stdout.split("\n").filter(Boolean).sort()).toEqual([...keys].sort());
  });

  test.skipIf(!need(have("fish"), "fish"))("fish offers each key as it is, and runs none", () => {
    const script = sh([STOR, "completion", "fish"]).stdout;
    const prog = `function stor; "${STOR}" --root "${r.path}" --config "${r.config}" $argv; end\n${script}\ncomplete -C 'stor -s native snapshot info '`;
    const offered = sh(["fish", "-c", prog], { cwd }).stdout;
    expect(ran()).toEqual([]);
    expect(offered.split("\n").filter(Boolean).sort()).toEqual([...keys].sort());
  });
});
