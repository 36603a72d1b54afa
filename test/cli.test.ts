/** How stor reads a command line: `--`, option clusters, bare labels, and errors that stay one line. */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { STOR, TestRoot, sh } from "./helpers.ts";

let r: TestRoot;
beforeAll(() => {
  r = new TestRoot();
});
afterAll(() => r.close());

const snap = (...args: string[]) => r.stor(["snapshot", "-s", "native", ...args]);

describe("-- ends the options", () => {
  test("a volume name after -- is the volume's name", () => {
    expect(r.stor(["volume", "create", "--", "goodname"])).toEqual({ code: 0, stdout: "goodname\n", stderr: "" });
    expect(r.ok(["volume", "ls", "-q"])).toContain("goodname\n");
  });

  test("a snapshot key that looks like an option is taken as given after --", () => {
    expect(snap("prepare", "--", "-dash").code).toBe(0);
    expect(JSON.parse(snap("info", "--", "-dash").stdout).Name).toBe("-dash");
  });

  test("global options after -- are positionals too", () => {
    const res = r.stor(["volume", "create", "--", "--root"]);
    expect(res.code).toBe(2);
    expect(res.stderr).toStartWith('stor: volume name "--root": includes invalid characters');
  });
});

describe("options", () => {
  test("an unknown letter in a cluster is a usage error, not help", () => {
    expect(snap("prepare", "-dash", "seed")).toEqual({ code: 2, stdout: "", stderr: "stor: snapshot prepare: unknown option -d in -dash (see --help)\n" });
    expect(snap("info", "seed").code).toBe(3);
  });

  test("a value may be attached to its option, or follow =", () => {
    snap("prepare", "-lx=1", "--label=y=2", "attached");
    expect(JSON.parse(snap("info", "attached").stdout).Labels).toEqual({ x: "1", y: "2" });
  });

  test("a bare volume --label K is K with an empty value, as docker", () => {
    r.ok(["volume", "create", "--label", "c", "--label", "d=1", "labelled"]);
    expect(JSON.parse(r.ok(["volume", "inspect", "labelled"]))[0].Labels).toEqual({ c: "", d: "1" });
  });

  test("a bare snapshot -l K is K=true, as ctr reads labels", () => {
    snap("prepare", "-l", "c", "bare");
    expect(JSON.parse(snap("info", "bare").stdout).Labels).toEqual({ c: "true" });
  });

  test("an unknown option before the command is named as an option", () => {
    expect(sh([STOR, "--bogus", "snapshot", "ls"])).toMatchObject({ code: 2, stderr: "stor: option --bogus: unknown (see stor --help)\n" });
  });

  test("a command's error names the command once", () => {
    expect(r.stor(["mount"])).toMatchObject({ code: 2, stderr: "stor: mount: missing argument KEY (see --help)\n" });
  });
});

describe("errors stay one line", () => {
  beforeAll(() => {
    snap("prepare", "long-labels");
  });
  test("stor without a command is a usage error: one line on stderr, nothing on stdout", () => {
    for (const args of [[], ["--no-color"]]) expect(sh([STOR, ...args])).toEqual({ code: 2, stdout: "", stderr: "stor: command: missing (see stor --help)\n" });
  });
  test("a control character in a name is escaped", () => {
    const res = r.stor(["volume", "create", "bad\nname\x1b[31m"]);
    expect(res.code).toBe(2);
    expect(res.stderr).toStartWith('stor: volume name "bad\\nname\\x1b[31m": includes invalid characters');
    expect(res.stderr.split("\n")).toHaveLength(2);
  });

  test.each([
    ["a 130 KB label key", ["label", "long-labels", `${"L".repeat(130_000)}=v`], /^stor: label "L{100,}…L{100,}": longer than \d+ bytes\n$/],
    ["a 4000-byte key not found", ["info", "k".repeat(4000)], /^stor: snapshot "k{100,}…k{100,}": not found\n$/],
  ])("%s is named, not repeated whole: the error line is bounded, its head and its reason kept", (_what, args, line) => {
    const res = snap(...args);
    expect(res.stderr.length).toBeLessThan(1100);
    expect(res.stderr).toMatch(line);
  });

  test("each failure of a command that goes on is one line", () => {
    const res = r.stor(["volume", "rm", "no\nsuch", "other\tone"]);
    expect(res.stderr).toBe('stor: volume "no\\nsuch": not found\nstor: volume "other\\tone": not found\n');
  });

  test("a file where the root should be is named as such", () => {
    const file = join(r.path, "plain-file");
    writeFileSync(file, "");
    expect(sh([STOR, "--root", file, "snapshot", "ls"])).toMatchObject({ code: 2, stderr: `stor: root ${file}: is not a directory\n` });
    expect(sh([STOR, "--root", `${file}/below`, "volume", "ls"])).toMatchObject({ code: 2, stderr: `stor: root ${file}/below: ${file} is not a directory\n` });
  });

  test("a root that cannot be made where the kernel says no such directory below an existing one (procfs) is one line", () => {
    for (const command of [["snapshot", "prepare", "a"], ["volume", "create", "vol"]]) {
      expect(sh([STOR, "--root", "/proc/stor-no-such/root", "--config", r.config, ...command])).toMatchObject({
        code: 1,
        stderr: "stor: root /proc/stor-no-such/root: mkdir /proc/stor-no-such: no such file or directory\n",
      });
    }
  });
});

describe("--format json on every command that prints data", () => {
  beforeAll(() => {
    snap("prepare", "j-base");
    snap("commit", "j-parent", "j-base");
    snap("prepare", "j-child", "j-parent");
    const [mount] = JSON.parse(snap("mounts", "--format", "json", "/t", "j-child").stdout);
    writeFileSync(join(mount.Source, "added"), "x");
  });

  test("snapshot mounts prints the mounts as prepare --mounts does", () => {
    const mounts = JSON.parse(snap("mounts", "--format", "json", "/t", "j-child").stdout);
    expect(mounts).toEqual([{ Type: "bind", Source: expect.stringContaining("/snapshots/native/"), Options: ["rbind", "rw"] }]);
  });

  test("snapshot tree prints each snapshot with its children", () => {
    const roots = JSON.parse(snap("tree", "--format", "json").stdout) as { Name: string; Children: unknown[] }[];
    expect(roots.find((n) => n.Name === "j-parent")).toEqual({ Name: "j-parent", Children: [{ Name: "j-child", Children: [] }] });
  });

  test("snapshot usage prints sizes in bytes and inode counts", () => {
    expect(JSON.parse(snap("usage", "--format", "json", "j-parent").stdout)).toEqual([{ Key: "j-parent", Size: expect.any(Number), Inodes: expect.any(Number) }]);
  });

  test("snapshot changes prints Docker API's {Path, Kind}", () => {
    expect(JSON.parse(snap("changes", "--format", "json", "j-child").stdout)).toEqual([{ Path: "/added", Kind: 1 }]);
  });
});

describe.each([
  ["--log-level", ["--log-level", "bogus"], {}],
  ["STOR_LOG_LEVEL", [], { STOR_LOG_LEVEL: "bogus" }],
] as const)("a bad %s", (_how, option, env) => {
  test.each(["unmount /tmp/stor-no-such-target", "completion bash", "man", "snapshot ls", "volume ls"])(
    "is refused before %s runs, whether or not it reads the configuration",
    (command) => {
      const r = sh([STOR, ...option, "--root", "/tmp/stor-no-such-root", ...command.split(" ")], { env: { ...env } });
      expect([r.code, r.stdout, r.stderr]).toEqual([2, "", 'stor: log level "bogus": must be one of error, warn, info, debug\n']);
    },
  );
});

// Bad input is refused before the store is opened: on a root that does not exist, nothing is made.
describe("bad input creates nothing", () => {
  let r: TestRoot;
  let roots = 0;
  beforeAll(() => {
    r = new TestRoot();
  });
  afterAll(() => r.close());

  test.each([
    ["snapshot prepare -l =bad k", 'stor: label "=bad": expected KEY=VALUE\n'],
    ["snapshot view -l =bad k", 'stor: label "=bad": expected KEY=VALUE\n'],
    ["snapshot commit -l =bad c k", 'stor: label "=bad": expected KEY=VALUE\n'],
    ["snapshot label k =bad", 'stor: label "=bad": expected KEY=VALUE\n'],
    ["snapshot ls --format yaml", 'stor: format "yaml": expected table or json\n'],
    ["snapshot tree --format yaml", 'stor: format "yaml": expected table or json\n'],
    ["snapshot usage --format yaml", 'stor: format "yaml": expected table or json\n'],
    ["snapshot mounts --format yaml /mnt k", 'stor: format "yaml": expected table or json\n'],
    ["-s bogus snapshot ls", undefined],
    ["-s bogus snapshot prepare k", undefined],
    ["volume create --label =x v1", 'stor: label "=x": expected KEY=VALUE\n'],
    ["volume create -o =x v1", 'stor: option "=x": expected KEY=VALUE\n'],
    ["volume ls --format yaml", 'stor: format "yaml": expected table or json\n'],
    ["volume ls -f bogus=1", undefined],
    ["volume inspect --format yaml v1", 'stor: format "yaml": expected json\n'],
    ["volume prune -f --filter bogus=1", undefined],
    ["volume create x", 'stor: volume name "x": too short, names should be at least two alphanumeric characters\n'],
    ["volume create -o foo=bar vv", 'stor: volume "vv": invalid option: "foo"\n'],
    ["volume create -o foo=bar", 'stor: volume: invalid option: "foo"\n'],
    ["volume create -o size=lots vv", "stor: volume \"vv\": invalid size: 'lots'\n"],
  ])("%s: exit 2, one line, no root", (command, message) => {
    const root = join(r.path, `missing-${++roots}`); // one each: a failing case must not hide the next
    const res = sh([STOR, "--root", root, "--config", r.config, ...command.split(" ")]);
    expect(res.code).toBe(2);
    expect(res.stderr.split("\n").length).toBe(2); // one line
    if (message !== undefined) expect(res.stderr).toBe(message);
    expect(existsSync(root)).toBe(false);
  });

  test("a prepare or view on a parent where the snapshotter has nothing yet is not found (exit 3), and makes nothing", () => {
    const root = join(r.path, `missing-${++roots}`);
    for (const command of ["-s native snapshot prepare k nosuch", "snapshot view k nosuch"]) {
      const res = sh([STOR, "--root", root, "--config", r.config, ...command.split(" ")]);
      expect([res.code, res.stdout, res.stderr]).toEqual([3, "", 'stor: parent snapshot "nosuch": not found\n']);
      expect(existsSync(root)).toBe(false);
    }
  });

  test("mount of a snapshot on a missing root is not found (exit 3), and makes no root", () => {
    const root = join(r.path, `missing-${++roots}`);
    const res = sh([STOR, "--root", root, "--config", r.config, "mount", "nokey", r.path]);
    expect(res.code).toBe(3);
    expect(res.stderr.split("\n").length).toBe(2); // one line
    expect(existsSync(root)).toBe(false);
  });

  test("volume plugins lists without a store, and makes none", () => {
    const root = join(r.path, `missing-${++roots}`);
    const res = sh([STOR, "--root", root, "--config", r.config, "volume", "plugins"]);
    expect(res).toEqual({ code: 0, stdout: "NAME      ADDRESS   SCOPE     STATUS\n", stderr: "" });
    expect(existsSync(root)).toBe(false);
  });
});

describe("arguments that are not UTF-8", () => {
  /** Runs stor on `r` with `args`, each a shell word where `printf` escapes (`\377`) stand for raw bytes. */
  const raw = (...args: string[]) => sh(["sh", "-c", `"$0" --root "$1" ${args.map((a) => (a.includes("\\") ? `"$(printf '${a}')"` : `'${a}'`)).join(" ")}`, STOR, r.path]);

  test("are refused, naming the bytes, and nothing is made: two keys that differ in them are not one", () => {
    const before = snap("ls").stdout;
    for (const key of ["img\\377", "img\\376"]) {
      expect(raw("snapshot", "-s", "native", "prepare", key)).toEqual({
        code: 2,
        stdout: "",
        stderr: `stor: argument "img\\x${key.endsWith("7") ? "ff" : "fe"}": is not UTF-8: stor takes names, keys, labels and paths as UTF-8\n`,
      });
    }
    expect(raw("snapshot", "-s", "native", "rm", "img\\376").code).toBe(2);
    expect(raw("snapshot", "-s", "native", "prepare", "-l", "k=v\\377", "labelled").code).toBe(2);
    expect(raw("snapshot", "-s", "native", "diff", "-o", "/tmp/stor-\\377.tar", "labelled").code).toBe(2);
    expect(raw("volume", "create", "--label", "k=\\377")).toMatchObject({ code: 2, stdout: "" });
    expect(snap("ls").stdout).toBe(before);
    expect(r.ok(["volume", "ls", "-q"])).not.toContain("\ufffd");
  });

  test("nor are the environment's roots and paths, nor a config file's, where they came from", () => {
    for (const name of ["STOR_ROOT", "STOR_CONFIG", "STOR_PLUGIN_DIRS"]) {
      const res = sh(["sh", "-c", `${name}="$(printf '/tmp/stor-\\377')" "$0" volume ls`, STOR]);
      expect(res).toEqual({ code: 2, stdout: "", stderr: `stor: environment variable ${name}="/tmp/stor-\\xff": is not UTF-8: stor takes names and paths as UTF-8\n` });
    }
    const config = join(r.path, "latin1.ini");
    sh(["sh", "-c", `printf 'root = /tmp/stor-\\377\\n' > "$0"`, config]);
    expect(sh([STOR, "--config", config, "volume", "ls"])).toEqual({ code: 2, stdout: "", stderr: `stor: config ${config}: is not UTF-8\n` });
    // The same text through a pipe, which gives its bytes once.
    const piped = sh(["bash", "-c", `"$0" --config <(printf 'root = /tmp/stor-\\377\\n') volume ls`, STOR]);
    expect(piped).toEqual({ code: 2, stdout: "", stderr: expect.stringMatching(/^stor: config \/dev\/fd\/\d+: is not UTF-8\n$/) });
    expect(existsSync("/tmp/stor-\ufffd")).toBe(false);
  });

  test("a U+FFFD the user typed is a character like any other", () => {
    expect(raw("snapshot", "-s", "native", "prepare", "typed-\\357\\277\\275")).toEqual({ code: 0, stdout: "", stderr: "" });
    expect(JSON.parse(snap("info", "typed-\ufffd").stdout).Name).toBe("typed-\ufffd");
  });
});

describe("colour", () => {
  /** stor's stderr when run on a terminal (script's pty), with `env`. */
  const onTerminal = (env: Record<string, string>) =>
    sh(["script", "-qec", `"${STOR}" --root "${r.path}" --log-level debug snapshot -s native info nosuch`, "/dev/null"], { env: { TERM: "xterm", ...env } }).stdout;

  test("a log line is painted on a terminal, unless NO_COLOR is set and not empty, or --no-color", () => {
    const painted = /\x1b\[\d+m/;
    expect(onTerminal({})).toMatch(painted);
    expect(onTerminal({ NO_COLOR: "" })).toMatch(painted);
    expect(onTerminal({ NO_COLOR: "1" })).not.toMatch(painted);
    expect(onTerminal({ TERM: "dumb" })).not.toMatch(painted);
  });
});

describe("snapshot mounts for | sh", () => {
  test("a target or root the shell would split or expand is quoted, so the line mounts what it says and runs nothing else; an everyday one as ctr prints it", () => {
    snap("prepare", "for-sh");
    expect(snap("mounts", "/mnt/plain", "for-sh").stdout).toMatch(/^mount -t bind \S+ \/mnt\/plain -o rbind,rw\n$/);
    const canary = join(r.path, "ran");
    const target = `/mnt/a b;touch ${canary};$(touch ${canary})'q`;
    const line = snap("mounts", target, "for-sh").stdout;
    // mount as a shell function that prints its arguments, one a line.
    const words = sh(["sh", "-c", `mount() { for a; do printf '%s\\n' "$a"; done; }\n${line}`]).stdout.split("\n").slice(0, -1);
    expect(words).toEqual(["-t", "bind", expect.stringContaining("/snapshots/native/snapshots/"), target, "-o", "rbind,rw"]);
    expect(existsSync(canary)).toBe(false);
    // A relative target that starts with "-" would be an option to mount: ./-a is the same directory.
    expect(snap("mounts", "--", "-a", "for-sh").stdout).toMatch(/^mount -t bind \S+ \.\/-a -o rbind,rw\n$/);
  });
});
