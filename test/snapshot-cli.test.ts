/** The snapshot command line as a ctr user meets it: outputs, errors, exit codes, config. */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { STOR, TestRoot, isRoot, need, sh } from "./helpers.ts";

let r: TestRoot;
beforeAll(() => {
  r = new TestRoot();
});
afterAll(() => r.close());

describe("errors are one line with the contract's exit code", () => {
  test.each([
    [["prepare", "a"], 0, ""],
    [["prepare", "a"], 4, 'stor: snapshot "a": already exists\n'],
    [["prepare", "x", "nosuch"], 3, 'stor: parent snapshot "nosuch": not found\n'],
    [["prepare", "x", "a"], 5, 'stor: parent snapshot "a": is active, not committed\n'],
    [["commit", "z", "nosuch"], 3, 'stor: snapshot "nosuch": not found\n'],
    [["info", "nosuch"], 3, 'stor: snapshot "nosuch": not found\n'],
    [["mounts", "/t", "nosuch"], 3, 'stor: snapshot "nosuch": not found\n'],
    [["rm", "nosuch"], 3, 'stor: snapshot "nosuch": not found\n'],
    [["prepare", "", "b"], 2, "stor: snapshot key: must not be empty\n"],
    [["prepare"], 2, "stor: snapshot prepare: missing argument KEY (see --help)\n"],
    [["prepare", "k", "p", "extra"], 2, 'stor: snapshot prepare: unexpected argument "extra" (see --help)\n'],
    [["prepare", "--bogus", "k"], 2, "stor: snapshot prepare: unknown option --bogus (see --help)\n"],
    [["frobnicate"], 2, 'stor: snapshot: unknown command "frobnicate" (see stor snapshot --help)\n'],
    [["ls", "--format", "yaml"], 2, 'stor: format "yaml": expected table or json\n'],
    [["-s", "zfs", "ls"], 2, 'stor: snapshotter "zfs": unknown; expected overlay, btrfs, native\n'],
    [["label", "a", "=v"], 2, 'stor: label "=v": expected KEY=VALUE\n'],
  ] as const)("stor snapshot %p → exit %p", (args, code, stderr) => {
    const res = r.stor(["snapshot", "-s", "native", ...args]);
    expect([res.code, res.stderr]).toEqual([code, stderr]);
  });

  test("rm stops at the first failure, as ctr does", () => {
    r.ok(["snapshot", "-s", "native", "prepare", "r1"]);
    r.ok(["snapshot", "-s", "native", "prepare", "r2"]);
    expect(r.stor(["snapshot", "-s", "native", "rm", "r1", "nosuch", "r2"]).code).toBe(3);
    expect(r.stor(["snapshot", "-s", "native", "info", "r1"]).code).toBe(3);
    expect(r.stor(["snapshot", "-s", "native", "info", "r2"]).code).toBe(0);
  });

  test("keys are free-form: `../escape` is a key, not a path", () => {
    r.ok(["snapshot", "-s", "native", "prepare", "../escape"]);
    expect(JSON.parse(r.ok(["snapshot", "-s", "native", "info", "../escape"])).Name).toBe("../escape");
    // Nothing but the store's own files (SQLite's -wal and -shm are the database's).
    expect(sh(["ls", join(r.path, "snapshots/native")]).stdout.replace(/^metadata\.db-(wal|shm)\n/gm, "")).toBe("metadata.db\nmetadata.reserve\nsnapshots\n");
  });

  test("no stack trace unless --log-level debug", () => {
    const quiet = r.stor(["snapshot", "-s", "native", "info", "nosuch"]);
    expect(quiet.stderr.split("\n")).toHaveLength(2);
    const loud = r.stor(["--log-level", "debug", "snapshot", "-s", "native", "info", "nosuch"]);
    expect(loud.stderr).toContain("NotFoundError");
    expect(loud.stderr.split("\n").length).toBeGreaterThan(3);
    // A newline in a key forges no line of its own: every line is stor's, the key's escaped in it.
    const forged = r.stor(["--log-level", "debug", "snapshot", "-s", "native", "info", "x\nstor: error: forged"]);
    const lines = forged.stderr.split("\n").filter(Boolean);
    expect(lines.filter((l) => l.includes("forged"))).toEqual(['stor: snapshot "x\\nstor: error: forged": not found', 'stor: debug: NotFoundError: snapshot "x\\nstor: error: forged": not found']);
    for (const l of lines.slice(2)) expect(l).toStartWith("stor: debug:     at ");
  });
});

describe("help and usage", () => {
  for (const cmd of ["prepare", "view", "commit", "mounts", "rm", "ls", "info", "usage", "tree", "label", "cleanup"]) {
    test(`snapshot ${cmd} --help`, () => {
      const res = r.stor(["snapshot", cmd, "--help"]);
      expect(res.code).toBe(0);
      expect(res.stdout).toContain(`Usage: stor snapshot ${cmd}`);
    });
  }
  test("stor --help, --version, no command", () => {
    expect(sh([STOR, "--help"]).stdout).toContain("Usage: stor");
    expect(sh([STOR, "--version"]).stdout).toMatch(/^stor \d+\.\d+\.\d+\n$/);
    expect(sh([STOR]).code).toBe(2);
    expect(sh([STOR, "bogus"]).stderr).toBe('stor: command "bogus": unknown (see stor --help)\n');
  });
  test("aliases as ctr has them", () => {
    r.ok(["snapshots", "-s", "native", "prepare", "al"]);
    expect(r.ok(["snapshot", "-s", "native", "list"])).toBe(r.ok(["snapshot", "-s", "native", "ls"]));
    expect(r.ok(["snapshot", "-s", "native", "m", "/t", "al"])).toBe(r.ok(["snapshot", "-s", "native", "mounts", "/t", "al"]));
    r.ok(["snapshot", "-s", "native", "remove", "al"]);
    expect(r.ok(["snapshot", "--snapshotter", "overlayfs", "ls"])).toBe(r.ok(["snapshot", "-s", "overlay", "ls"]));
  });
});

describe("config", () => {
  const withConfig = (text: string, args: string[]) => {
    const path = join(r.path, "..", `${r.path.split("/").pop()}-cfg.ini`);
    writeFileSync(path, text);
    return sh([STOR, "--config", path, "--root", r.path, ...args]);
  };
  test("a bad value names file, key and reason", () => {
    const res = withConfig("[snapshot]\ndefault = zfs\n", ["snapshot", "ls"]);
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(/^stor: config \/\S+-cfg\.ini: snapshot\.default: .*overlay.*native.*\n$/);
  });
  test("an unknown key is refused", () => {
    const res = withConfig("rooot = /x\n", ["snapshot", "ls"]);
    expect([res.code, res.stderr.includes("rooot: unknown key")]).toEqual([2, true]);
  });
  test("root must be absolute", () => {
    expect(withConfig("root = relative\n", ["snapshot", "ls"]).stderr).toContain("root: must be an absolute path");
  });
  test("a NUL byte in a value is bad input naming the key, not an internal error", () => {
    for (const [text, key] of [["root = /tmp/x\0junk\n", "root"], ["[volume]\nplugin_dirs = /a\0b\n", "volume.plugin_dirs"]] as const) {
      const res = withConfig(text, ["snapshot", "ls"]);
      expect([res.code, res.stderr]).toEqual([2, expect.stringMatching(new RegExp(`^stor: config \\S+: ${key.replace(".", "\\.")}: holds a NUL byte\n$`))]);
    }
  });
  test("a key or section named __proto__ is refused as unknown, as any other", () => {
    // ini unquotes a key or section, and takes `key[]` for an array: each of these is the same key to it.
    for (const text of ["__proto__ = 1\n", "[__proto__]\nx = 1\n", '"__proto__" = 1\n', "'__proto__' = 1\n", "__proto__[] = 1\n", '["__proto__"]\nx = 1\n', "[ __proto__ ]\nx = 1\n"]) {
      const res = withConfig(text, ["snapshot", "ls"]);
      expect([res.code, res.stderr]).toEqual([2, expect.stringMatching(/^stor: config \S+: __proto__: unknown key\n$/)]);
    }
  });
  test("the default snapshotter comes from the file", () => {
    const cfg = join(r.path, "..", `${r.path.split("/").pop()}-native.ini`);
    writeFileSync(cfg, "[snapshot]\ndefault = native\n");
    const out = sh([STOR, "--config", cfg, "--root", r.path, "snapshot", "prepare", "--mounts", "cfgdefault"]).stdout;
    expect(out).toContain("/snapshots/native/snapshots/");
  });
  test("a named config file must exist; the default one may be missing", () => {
    expect(sh([STOR, "--config", "/nonexistent/stor.ini", "snapshot", "ls"]).stderr).toBe("stor: config /nonexistent/stor.ini: no such file\n");
    expect(sh([STOR, "--root", r.path, "snapshot", "-s", "native", "ls"], { env: { STOR_CONFIG: "" } }).code).not.toBe(1);
  });
  describe("a config path that is no small regular file is refused at once (exit 2, one line), unread", () => {
    const dir = () => join(r.path, "..", `${r.path.split("/").pop()}-odd`);
    const run = (path: string) => sh([STOR, "--config", path, "--root", r.path, "snapshot", "ls"], { timeout: 20_000 });
    beforeAll(() => {
      mkdirSync(dir(), { recursive: true });
      sh(["mkfifo", join(dir(), "fifo")]);
      symlinkSync("/dev/zero", join(dir(), "zero-link"));
      writeFileSync(join(dir(), "over.ini"), ";".repeat(2 ** 20 + 1));
      writeFileSync(join(dir(), "bound.ini"), ";".repeat(2 ** 20));
      symlinkSync(join(dir(), "bound.ini"), join(dir(), "bound-link"));
    });
    afterAll(() => rmSync(dir(), { recursive: true, force: true }));

    test.each(["/dev/zero", "zero-link", "."])("%s: not a regular file", (name) => {
      const path = name.startsWith("/") ? name : join(dir(), name);
      expect(run(path)).toEqual({ code: 2, stdout: "", stderr: `stor: config ${path}: not a regular file\n` });
    });
    test("a FIFO nobody writes yet is refused, not waited for, nor taken for a file of no settings; a pipe's text is read", () => {
      const fifo = join(dir(), "fifo");
      expect(run(fifo)).toEqual({ code: 2, stdout: "", stderr: `stor: config ${fifo}: a FIFO that gave nothing: no writer had it open\n` });
      const piped = sh(["bash", "-c", `${STOR} --config <(printf '[snapshot]\\nroot = relative\\n') --root ${r.path} snapshot ls`], { timeout: 20_000 });
      expect(piped.code).toBe(2); // its text was read, and refused
    });
    test("a file over 1 MiB: larger than the bound", () => {
      const path = join(dir(), "over.ini");
      expect(run(path)).toEqual({ code: 2, stdout: "", stderr: `stor: config ${path}: larger than 1048576 bytes\n` });
    });
    test("a file of 1 MiB, through a symlink, and /dev/null (no settings) are read", () => {
      for (const path of [join(dir(), "bound-link"), "/dev/null"]) expect(run(path)).toMatchObject({ code: 0, stderr: "" });
    });
  });

  test("STOR_ROOT and STOR_LOG_LEVEL from the environment", () => {
    const res = sh([STOR, "snapshot", "-s", "native", "prepare", "--mounts", "envroot"], { env: { STOR_ROOT: r.path, STOR_CONFIG: r.config } });
    expect(res.stdout).toContain(`${r.path}/snapshots/native/`);
    expect(sh([STOR, "snapshot", "ls"], { env: { STOR_LOG_LEVEL: "loud", STOR_ROOT: r.path } }).stderr).toBe(
      'stor: log level "loud": must be one of error, warn, info, debug\n',
    );
  });

  test("an empty STOR_ROOT, STOR_CONFIG or STOR_LOG_LEVEL is no setting, as an unset one", () => {
    // --root given: an empty STOR_ROOT must not win over the default either way.
    for (const name of ["STOR_CONFIG", "STOR_LOG_LEVEL"]) {
      const res = sh([STOR, "--root", r.path, "--version"], { env: { [name]: "" } });
      expect([name, res.code, res.stderr]).toEqual([name, 0, ""]);
    }
    const res = sh([STOR, "--config", r.config, "snapshot", "ls"], { env: { STOR_ROOT: "", STOR_LOG_LEVEL: "" } });
    expect(res.stderr).not.toContain('root ""');
  });
});

describe("stor mount and unmount", () => {
  test.skipIf(!need(isRoot(), "mounting needs root"))("mount a view read-only and unmount it", () => {
    const t = r.dir("target");
    r.ok(["snapshot", "-s", "native", "prepare", "mnt-a"]);
    r.ok(["-s", "native", "mount", "mnt-a", t]);
    writeFileSync(join(t, "f"), "x");
    expect(r.ok(["unmount", t])).toBe("");
    expect(r.stor(["unmount", t])).toMatchObject({ code: 3, stderr: `stor: target ${t}: nothing is mounted there\n` });
    expect(r.stor(["-s", "native", "mount", "mnt-a", "/nonexistent/dir"]).code).toBe(3);
  });
});

test("ls --format json gives each snapshot its parent and labels, as info does", () => {
  const t = new TestRoot();
  try {
    const s = (...a: string[]) => t.ok(["snapshot", "-s", "native", ...a]);
    s("prepare", "l-base");
    s("commit", "-l", "a=1", "-l", "b=2", "l-parent", "l-base");
    s("prepare", "-l", "c=3", "l-child", "l-parent");
    s("view", "l-view", "l-parent");
    const listed = JSON.parse(s("ls", "--format", "json")) as { Name: string }[];
    expect(listed.map((i) => i.Name)).toEqual(["l-child", "l-parent", "l-view"]);
    for (const i of listed) expect(i).toEqual(JSON.parse(s("info", i.Name)));
    expect(listed[0]).toMatchObject({ Parent: "l-parent", Labels: { c: "3" } });
    expect(listed[1]).toMatchObject({ Labels: { a: "1", b: "2" } });
    expect(listed[1]).not.toHaveProperty("Parent");
  } finally {
    t.close();
  }
});

test("a snapshot label named __proto__ is kept, as any other", () => {
  const r = new TestRoot();
  try {
    r.ok(["snapshot", "-s", "native", "prepare", "-l", "__proto__=p", "-l", "team=web", "a"]);
    const labels = JSON.parse(r.ok(["snapshot", "-s", "native", "info", "a"])).Labels;
    expect(Object.keys(labels)).toEqual(["__proto__", "team"]);
    expect(labels.team).toBe("web");
    expect(Object.getOwnPropertyDescriptor(labels, "__proto__")?.value).toBe("p");
  } finally {
    r.close();
  }
});

describe("keys, labels and file names that hold control characters print as what they are", () => {
  test.skipIf(!need(isRoot(), "needs root"))("ls, tree, label, changes: one escaped row each; JSON escapes as Go's", () => {
    const t = new TestRoot();
    try {
      const osc52 = "\x1b]52;c;cm0gLXJmIH4=\x07";
      const keys = [`title${osc52}`, "two\nlines", "rtl\u202etxt.exe", "sep\u2028x"];
      for (const k of keys) t.ok(["snapshot", "-s", "native", "prepare", k]);
      const ls = t.ok(["snapshot", "-s", "native", "ls"]);
      expect(ls.split("\n").filter(Boolean)).toHaveLength(1 + keys.length); // a row a snapshot
      expect(ls).not.toMatch(/[\x00-\x09\x0b-\x1f\x7f\u202e\u2028]/);
      expect(ls).toContain("title\\x1b]52;c;cm0gLXJmIH4=\\x07 ");
      expect(ls).toContain("two\\nlines ");
      expect(ls).toContain("rtl\\u202etxt.exe ");
      const tree = t.ok(["snapshot", "-s", "native", "tree"]);
      expect(tree.split("\n").filter(Boolean)).toHaveLength(keys.length);
      expect(t.ok(["snapshot", "-s", "native", "label", "two\nlines", `note=a\x1b[2Jb`])).toBe("note=a\\x1b[2Jb\n");
      const json = t.ok(["snapshot", "-s", "native", "ls", "--format", "json"]);
      expect(json).toContain('"sep\\u2028x"'); // as Go's encoder writes it
      expect(JSON.parse(json).map((s: { Name: string }) => s.Name).sort()).toEqual([...keys].sort());
      // A file name too.
      const [m] = JSON.parse(t.ok(["snapshot", "-s", "native", "prepare", "--mounts", "files"]));
      writeFileSync(join(m.Source, "evil\nD etc"), "x");
      expect(t.ok(["snapshot", "-s", "native", "changes", "files"])).toBe("A /evil\\nD etc\n");
      // A name that is not UTF-8: JSON says U+FFFD for what is no Unicode, as Go's encoder does.
      writeFileSync(Buffer.concat([Buffer.from(`${m.Source}/b`), Buffer.from([0xff])]), "x");
      expect(JSON.parse(t.ok(["snapshot", "-s", "native", "changes", "--format", "json", "files"]))).toEqual([
        { Path: "/b\ufffd", Kind: 1 },
        { Path: "/evil\nD etc", Kind: 1 },
      ]);
    } finally {
      t.close();
    }
  });

  test("a reader that goes away (| head) stops stor quietly, as SIGPIPE stops ctr", () => {
    const t = new TestRoot();
    try {
      const [m] = JSON.parse(t.ok(["snapshot", "-s", "native", "prepare", "--mounts", "many"]));
      for (let i = 0; i < 8000; i++) writeFileSync(join(m.Source, `file-with-a-long-name-${i}`), "");
      for (const command of ["changes many", "diff many"]) {
        const res = sh(["bash", "-c", `${STOR} --root ${t.path} --config ${t.config} snapshot -s native ${command} | head -c 10 >/dev/null; echo "\${PIPESTATUS[0]}" >&2`]);
        expect(res.stderr).toBe("141\n"); // nothing else: no error line
      }
    } finally {
      t.close();
    }
  });
});
