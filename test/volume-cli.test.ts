/** The volume command line as a `docker volume` user meets it: outputs, errors, exit codes, files on disk. */
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { lookup } from "node:dns/promises";
import { join } from "node:path";
import { STOR, TestRoot, isRoot, must, need, sh } from "./helpers.ts";

const HEX64 = /^[0-9a-f]{64}$/;
const CREATED = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/;

describe("errors are one line with the contract's exit code", () => {
  let r: TestRoot;
  beforeAll(() => {
    r = new TestRoot();
    r.ok(["volume", "create", "tx-a"]);
    r.ok(["volume", "create", "busy"]);
    r.ok(["volume", "mount", "busy", "c1"]);
  });
  afterAll(() => r.close());

  test.each([
    [["create", "tx-a"], 0, "tx-a\n", ""],
    [["create", "--driver", "local", "tx-a"], 0, "tx-a\n", ""],
    // An existing volume comes back as it is: its options are not even looked at.
    [["create", "-o", "type=tmpfs", "tx-a"], 0, "tx-a\n", ""],
    [["create", "-d", "nosuch", "tx-a"], 3, "", 'stor: volume driver "nosuch": not found\n'],
    [["create", "-d", "nosuch", "tx-new"], 3, "", 'stor: volume driver "nosuch": not found\n'],
    [["create", "x"], 2, "", 'stor: volume name "x": too short, names should be at least two alphanumeric characters\n'],
    [["create", "."], 2, "", 'stor: volume name ".": too short, names should be at least two alphanumeric characters\n'],
    ...["a/b", "..", "has space", "ünïcode", "_lead", "../etc"].map(
      (n) =>
        [
          ["create", n],
          2,
          "",
          `stor: volume name "${n}": includes invalid characters for a local volume name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed\n`,
        ] as const,
    ),
    [["create", "n".repeat(256)], 2, "", `stor: volume name "${"n".repeat(256)}": longer than 255 characters\n`],
    [["create", "one", "two"], 2, "", 'stor: volume create: unexpected argument "two" (see --help)\n'],
    [["create", "-bad"], 2, "", "stor: volume create: unknown option -b in -bad (see --help)\n"],
    [["create", "-o", "foo=bar", "tx-badopt"], 2, "", 'stor: volume "tx-badopt": invalid option: "foo"\n'],
    [["create", "-o", "device=/nonexistent", "-o", "o=bind", "tx-bind"], 2, "", 'stor: volume "tx-bind": missing required option: "type"\n'],
    [["create", "-o", "type=tmpfs", "tx-t"], 2, "", 'stor: volume "tx-t": missing required option: "device"\n'],
    [["create", "-o", "o=size=1m", "tx-t"], 2, "", 'stor: volume "tx-t": missing required option: "device"\n'],
    [["create", "-o", "size=ten", "tx-q"], 2, "", "stor: volume \"tx-q\": invalid size: 'ten'\n"],
    [["create", "-o", "size=10mx", "tx-q"], 2, "", "stor: volume \"tx-q\": invalid size: '10mx'\n"],
    [["create", "-o", "size=16384p", "tx-q"], 2, "", "stor: volume \"tx-q\": invalid size: '16384p'\n"],
    [["create", "-o", "type=cifs", "-o", "device=//srv:445/share", "tx-c"], 2, "", "stor: volume \"tx-c\": port not allowed in CIFS device URL, include 'port' in 'o='\n"],
    [["create", "-o", "noequals", "tx-o"], 2, "", 'stor: option "noequals": expected KEY=VALUE\n'],
    [["create", "--label", "=v", "tx-l"], 2, "", 'stor: label "=v": expected KEY=VALUE\n'],
    [["ls", "--format", "yaml"], 2, "", 'stor: format "yaml": expected table or json\n'],
    [["ls", "-f", "bogus=1"], 2, "", 'stor: filter "bogus": unknown (expected name, driver, label, dangling)\n'],
    [["ls", "-f", "dangling=maybe"], 2, "", 'stor: filter "dangling=maybe": expected true or false\n'],
    [["ls", "-f", "noequals"], 2, "", 'stor: filter "noequals": bad format (expected name=value)\n'],
    [["inspect", "nosuch"], 3, "[]\n", 'stor: volume "nosuch": not found\n'],
    [["inspect", "../../etc"], 3, "[]\n", 'stor: volume "../../etc": not found\n'],
    [["inspect", "--format", "table", "tx-a"], 2, "", 'stor: format "table": expected json\n'],
    [["inspect"], 2, "", "stor: volume inspect: missing argument NAME (see --help)\n"],
    [["rm", "nosuch"], 3, "", 'stor: volume "nosuch": not found\n'],
    [["rm", "-f", "nosuch"], 0, "nosuch\n", ""],
    [["rm"], 2, "", "stor: volume rm: missing argument NAME (see --help)\n"],
    [["rm", "busy"], 5, "", 'stor: volume "busy": in use - [c1]\n'],
    [["rm", "-f", "busy"], 5, "", 'stor: volume "busy": in use - [c1]\n'],
    // Several failures: their code when they share one, else 1 (as docker's), whatever the order.
    [["rm", "nosuch", "nosuch2"], 3, "", 'stor: volume "nosuch": not found\nstor: volume "nosuch2": not found\n'],
    [["rm", "busy", "nosuch"], 1, "", 'stor: volume "busy": in use - [c1]\nstor: volume "nosuch": not found\n'],
    [["rm", "nosuch", "busy"], 1, "", 'stor: volume "nosuch": not found\nstor: volume "busy": in use - [c1]\n'],
    [["inspect", "nosuch", "../x"], 3, "[]\n", 'stor: volume "nosuch": not found\nstor: volume "../x": not found\n'],
    [["mount", "nosuch", "c1"], 3, "", 'stor: volume "nosuch": not found\n'],
    [["mount", "tx-a"], 2, "", "stor: volume mount: missing argument REF (see --help)\n"],
    [["mount", "tx-a", ""], 2, "", 'stor: reference "": must be non-empty, without NUL\n'],
    [["unmount", "nosuch", "c1"], 3, "", 'stor: volume "nosuch": not found\n'],
    [["prune", "-f", "--filter", "name=x"], 2, "", 'stor: filter "name": unknown (expected label, label!, all)\n'],
    [["prune", "-f", "-a", "--filter", "all=1"], 2, "", "stor: prune: conflicting options: cannot specify both --all and --filter all=1\n"],
    [["frobnicate"], 2, "", 'stor: volume: unknown command "frobnicate" (see stor volume --help)\n'],
    [[], 2, "", "stor: volume: missing command (see stor volume --help)\n"],
  ] as const)("stor volume %p → exit %p", (args, code, stdout, stderr) => {
    const res = r.stor(["volume", ...args]);
    expect([res.code, res.stdout, res.stderr]).toEqual([code, stdout, stderr]);
  });

  // Docker skips a plugin directory it cannot read; so does every volume command, whatever is wrong with it.
  test.each([
    ["missing", (d: string) => join(d, "nosuch")],
    ["a file", (d: string) => join(d, "file")],
    ["below a file", (d: string) => join(d, "file", "plugins")],
    ["a dangling symlink", (d: string) => join(d, "dangling")],
  ])("a plugin directory that is %s holds no plugins: create, ls, inspect and rm work", (_what, dir) => {
    const d = r.dir("plugin-dirs");
    writeFileSync(join(d, "file"), "");
    sh(["ln", "-sfn", join(d, "nosuch"), join(d, "dangling")]);
    const v = (...a: string[]) => r.stor(["--plugin-dir", dir(d), "volume", ...a]);
    expect(v("create", "pd-vol")).toEqual({ code: 0, stdout: "pd-vol\n", stderr: "" });
    expect(v("ls", "-q")).toMatchObject({ code: 0, stdout: expect.stringContaining("pd-vol\n"), stderr: "" });
    expect(v("inspect", "pd-vol")).toMatchObject({ code: 0, stderr: "" });
    expect(v("rm", "pd-vol")).toEqual({ code: 0, stdout: "pd-vol\n", stderr: "" });
  });

  test("nothing is left of a create that failed", () => {
    expect(sh(["ls", "-A", join(r.path, "volumes")]).stdout).toBe(".meta\nbusy\ntx-a\n");
  });

  test("the configured default driver is used, and must exist when the config is loaded", () => {
    const ini = join(r.path, "other.ini");
    writeFileSync(ini, "[volume]\ndefault_driver = nosuch\n");
    const refusal = `stor: config ${ini}: volume.default_driver: unknown volume driver "nosuch" (known: local)\n`;
    for (const args of [["volume", "create", "-d", "local", "vx"], ["snapshot", "ls"]]) {
      expect(sh([STOR, "--root", r.path, "--config", ini, ...args])).toMatchObject({ code: 2, stdout: "", stderr: refusal });
    }
    writeFileSync(ini, "[volume]\ndefault_driver = local\n");
    expect(sh([STOR, "--root", r.path, "--config", ini, "volume", "create", "vx"]).stdout).toBe("vx\n");
    expect(JSON.parse(r.ok(["volume", "inspect", "vx"]))[0].Driver).toBe("local");
  });

  test("help for every command", () => {
    for (const cmd of ["create", "ls", "inspect", "rm", "prune", "mount", "unmount"]) {
      const res = r.stor(["volume", cmd, "--help"]);
      expect([res.code, res.stdout.includes(`Usage: stor volume ${cmd}`)]).toEqual([0, true]);
    }
    expect(sh([STOR, "--help"]).stdout).toContain("volume <command>");
  });
});

describe("create, ls and inspect print what docker prints", () => {
  let r: TestRoot;
  let anon: string;
  beforeAll(() => {
    r = new TestRoot();
    anon = r.ok(["volume", "create", "--label", "anchor-tx=anon"]).trim();
    r.ok(["volume", "create", "tx-a"]);
    r.ok(["volume", "create", "--label", "env=test", "--label", "anchor-tx=1", "tx-b"]);
    r.ok(["volume", "create", "--opt", "type=tmpfs", "--opt", "device=tmpfs", "--opt", "o=size=10m", "tx-tmpfs"]);
    r.ok(["volume", "create", "-o", "type=none", "-o", "device=/nonexistent", "-o", "o=bind", "tx-bind"]);
    r.ok(["volume", "create", "v10"]);
    r.ok(["volume", "create", "v2"]);
  });
  afterAll(() => r.close());

  test("an anonymous volume gets a 64-hex name and Docker's anonymous label", () => {
    expect(anon).toMatch(HEX64);
    const [v] = JSON.parse(r.ok(["volume", "inspect", anon]));
    expect(v.Labels).toEqual({ "anchor-tx": "anon", "com.docker.volume.anonymous": "" });
  });

  test("ls: docker's table, names in natural order", () => {
    expect(r.ok(["volume", "ls"])).toBe(
      "DRIVER    VOLUME NAME\n" + [anon, "tx-a", "tx-b", "tx-bind", "tx-tmpfs", "v2", "v10"].map((n) => `local     ${n}\n`).join(""),
    );
    expect(r.ok(["volume", "list", "-q"])).toBe([anon, "tx-a", "tx-b", "tx-bind", "tx-tmpfs", "v2", "v10"].join("\n") + "\n");
  });

  test("ls filters: name (a pattern), label, driver, dangling", () => {
    const q = (...f: string[]) => r.ok(["volume", "ls", "-q", ...f.flatMap((x) => ["-f", x])]);
    expect(q("name=tx-")).toBe("tx-a\ntx-b\ntx-bind\ntx-tmpfs\n");
    expect(q("name=^v", "name=tx-a")).toBe("tx-a\nv2\nv10\n");
    expect(q("name=v1$")).toBe("");
    expect(q("label=env=test")).toBe("tx-b\n");
    expect(q("label=anchor-tx")).toBe(`${anon}\ntx-b\n`);
    expect(q("label=anchor-tx", "label=env")).toBe("tx-b\n");
    expect(q("label=env=prod")).toBe("");
    expect(q("driver=local", "name=v")).toBe("v2\nv10\n");
    expect(q("driver=other")).toBe("");
    r.ok(["volume", "mount", "v2", "c1"]);
    expect(q("dangling=false")).toBe("v2\n");
    expect(q("dangling=0")).toBe("v2\n");
    expect(q("dangling=true", "name=v")).toBe("v10\n");
    r.ok(["volume", "unmount", "v2", "c1"]);
    expect(q("dangling=false")).toBe("");
  });

  test("ls --format json: one object a line, as docker's {{json .}}", () => {
    const out = r.ok(["volume", "ls", "--format", "json", "-f", "name=tx-[ab]$"]);
    expect(out).toBe(
      `{"Driver":"local","Labels":"","Links":"N/A","Mountpoint":"${r.path}/volumes/tx-a/_data","Name":"tx-a","Scope":"local","Size":"N/A"}\n` +
        `{"Driver":"local","Labels":"anchor-tx=1,env=test","Links":"N/A","Mountpoint":"${r.path}/volumes/tx-b/_data","Name":"tx-b","Scope":"local","Size":"N/A"}\n`,
    );
  });

  test("inspect: docker's JSON, several at once", () => {
    const out = r.ok(["volume", "inspect", "tx-b", "tx-tmpfs"]);
    const created = [...out.matchAll(/"CreatedAt": "([^"]+)"/g)].map((m) => m[1]!);
    expect(created.every((c) => CREATED.test(c))).toBe(true);
    expect(out).toBe(`[
    {
        "CreatedAt": "${created[0]}",
        "Driver": "local",
        "Labels": {
            "anchor-tx": "1",
            "env": "test"
        },
        "Mountpoint": "${r.path}/volumes/tx-b/_data",
        "Name": "tx-b",
        "Options": {},
        "Scope": "local"
    },
    {
        "CreatedAt": "${created[1]}",
        "Driver": "local",
        "Labels": {},
        "Mountpoint": "${r.path}/volumes/tx-tmpfs/_data",
        "Name": "tx-tmpfs",
        "Options": {
            "device": "tmpfs",
            "o": "size=10m",
            "type": "tmpfs"
        },
        "Scope": "local"
    }
]
`);
  });

  test("inspect of found and missing names prints the found and fails with 3", () => {
    const res = r.stor(["volume", "inspect", "tx-a", "nosuch", "nosuch2"]);
    expect(res.code).toBe(3);
    expect(JSON.parse(res.stdout).map((v: { Name: string }) => v.Name)).toEqual(["tx-a"]);
    expect(res.stderr).toBe('stor: volume "nosuch": not found\nstor: volume "nosuch2": not found\n');
  });

  test("on disk: Docker's layout and modes, options in opts.json, labels in labels.json, metadata root's alone", () => {
    const vols = join(r.path, "volumes");
    const mode = (p: string) => (statSync(p).mode & 0o7777).toString(8);
    expect([mode(vols), mode(join(vols, "tx-a")), mode(join(vols, "tx-a/_data"))]).toEqual(["701", "701", "755"]);
    expect(sh(["stat", "-c", "%A", join(vols, "tx-tmpfs")]).stdout).toBe("drwx-----x\n");
    expect(existsSync(join(vols, "tx-a/opts.json"))).toBe(false);
    expect(existsSync(join(vols, "tx-a/labels.json"))).toBe(false);
    expect(readFileSync(join(vols, "tx-b/labels.json"), "utf8")).toBe('{"env":"test","anchor-tx":"1"}');
    expect(mode(join(vols, "tx-b/labels.json"))).toBe("600");
    expect(readFileSync(join(vols, "tx-tmpfs/opts.json"), "utf8")).toBe(
      '{"MountType":"tmpfs","MountOpts":"size=10m","MountDevice":"tmpfs","Quota":{"Size":0}}',
    );
    expect(mode(join(vols, "tx-tmpfs/opts.json"))).toBe("600");
    expect(mode(join(vols, ".meta/metadata.db"))).toBe("600");
    expect(sh(["ls", "-A", join(vols, ".meta/locks")]).stdout).toBe(""); // each lock file goes with its lock
  });
});

describe("rm and prune", () => {
  let r: TestRoot | undefined;
  afterEach(() => r?.close());

  test("rm prints each name removed, goes on past failures, and exits with the failure's code", () => {
    r = new TestRoot();
    r.ok(["volume", "create", "ra"]);
    r.ok(["volume", "create", "rb"]);
    writeFileSync(join(r.path, "volumes/ra/_data/file"), "data");
    const res = r.stor(["volume", "rm", "ra", "nosuch", "rb"]);
    expect([res.code, res.stdout, res.stderr]).toEqual([3, "ra\nrb\n", 'stor: volume "nosuch": not found\n']);
    expect(r.ok(["volume", "ls", "-q"])).toBe("");
    expect(sh(["ls", "-A", join(r.path, "volumes")]).stdout).toBe(".meta\n");
    expect(r.ok(["volume", "remove", "-f", "ra", "nosuch"])).toBe("ra\nnosuch\n");
  });

  test("a volume is removable once its last reference is gone", () => {
    r = new TestRoot();
    r.ok(["volume", "create", "held"]);
    r.ok(["volume", "mount", "held", "c1"]);
    r.ok(["volume", "mount", "held", "c2"]);
    expect(r.stor(["volume", "rm", "held"]).stderr).toBe('stor: volume "held": in use - [c1, c2]\n');
    r.ok(["volume", "unmount", "held", "c1"]);
    expect(r.stor(["volume", "rm", "held"]).code).toBe(5);
    r.ok(["volume", "umount", "held", "c2"]);
    expect(r.ok(["volume", "rm", "held"])).toBe("held\n");
  });

  test("prune removes unused anonymous volumes, -a all unused ones; never used or mounting ones", () => {
    r = new TestRoot();
    const anon1 = r.ok(["volume", "create"]).trim();
    const anon2 = r.ok(["volume", "create", "--label", "keep=1"]).trim();
    const anonUsed = r.ok(["volume", "create"]).trim();
    r.ok(["volume", "mount", anonUsed, "c1"]);
    r.ok(["volume", "create", "named"]);
    r.ok(["volume", "create", "-o", "type=tmpfs", "-o", "device=tmpfs", "withopts"]);
    writeFileSync(join(r.path, "volumes", anon1, "_data/a"), "12345");
    mkdirSync(join(r.path, "volumes", anon1, "_data/sub"));
    writeFileSync(join(r.path, "volumes", anon1, "_data/sub/b"), "x".repeat(2000));

    expect(r.ok(["volume", "prune", "-f", "--filter", "label!=keep"])).toBe(`Deleted Volumes:\n${anon1}\n\nTotal reclaimed space: 2.005kB\n`);
    expect(r.ok(["volume", "prune", "--force"])).toBe(`Deleted Volumes:\n${anon2}\n\nTotal reclaimed space: 0B\n`);
    expect(r.ok(["volume", "prune", "-f"])).toBe("Total reclaimed space: 0B\n");
    expect(r.ok(["volume", "prune", "-f", "-a", "--filter", "label=nosuch"])).toBe("Total reclaimed space: 0B\n");
    expect(r.ok(["volume", "prune", "-f", "--filter", "all=true"])).toBe("Deleted Volumes:\nnamed\n\nTotal reclaimed space: 0B\n");
    expect(r.ok(["volume", "ls", "-q"]).split("\n").filter(Boolean).sort()).toEqual([anonUsed, "withopts"].sort());
  });

  test("prune asks first, and only y confirms", () => {
    r = new TestRoot();
    r.ok(["volume", "create", "p1"]);
    const asked =
      "WARNING! This will remove all local volumes not used by at least one container.\nAre you sure you want to continue? [y/N] ";
    expect(r.ok(["volume", "prune", "-a"])).toBe(`${asked}Total reclaimed space: 0B\n`);
    expect(r.ok(["volume", "prune", "-a"], { input: "n\n" })).toBe(`${asked}Total reclaimed space: 0B\n`);
    expect(r.ok(["volume", "ls", "-q"])).toBe("p1\n");
    expect(r.ok(["volume", "prune", "-a"], { input: "y\n" })).toBe(`${asked}Deleted Volumes:\np1\n\nTotal reclaimed space: 0B\n`);
    expect(r.ok(["volume", "prune"])).toStartWith("WARNING! This will remove anonymous local volumes not used by at least one container.\n");
  });
});

// stor resolves names as this test process does; "localhost" is in every sane /etc/hosts.
const LOCALHOST = need(
  (await lookup("localhost", { all: true, family: 4 }).catch(() => [])).some((a) => a.address === "127.0.0.1"),
  "localhost resolves to 127.0.0.1",
);

describe("secrets and network addresses", () => {
  let r: TestRoot;
  beforeAll(() => {
    r = new TestRoot();
  });
  afterAll(() => r.close());

  test.skipIf(!LOCALHOST)("a password in o= never shows: not in inspect, errors or logs", async () => {
    r.ok(["volume", "create", "-o", "type=cifs", "-o", "device=//localhost/share", "-o", "o=username=u,password=hunter2,vers=3.0", "smb"]);
    const [v] = JSON.parse(r.ok(["volume", "inspect", "smb"]));
    expect(v.Options).toEqual({ device: "//localhost/share", o: "username=u,password=********,vers=3.0", type: "cifs" });
    const res = r.stor(["--log-level", "debug", "volume", "mount", "smb", "c1"]);
    expect(res.code).toBe(1); // no server (and maybe no cifs in the kernel)
    expect(res.stdout + res.stderr).not.toContain("hunter2");
    // cifs takes no host names: the device's host was resolved first, as Docker does.
    expect(res.stderr).toContain(`mount -t cifs //127.0.0.1/share ${r.path}/volumes/smb/_data -o username=u,password=********,vers=3.0\n`);
    expect(r.ok(["volume", "ls", "-q", "-f", "dangling=false"])).toBe("");
  }, 60_000);

  test.skipIf(!LOCALHOST)("a password in the device's address or in user=name%password never shows either", async () => {
    r.ok(["volume", "create", "-o", "type=smb3", "-o", "device=//bob:hunter2@localhost/share", "smb-url"]);
    r.ok(["volume", "create", "-o", "type=cifs", "-o", "device=//localhost/share", "-o", "o=username=bob%hunter2,vers=3.0", "smb-pct"]);
    // A user part is no port (Docker parses the device as a URL), and the host after it is resolved.
    r.ok(["volume", "create", "-o", "type=cifs", "-o", "device=//bob:hunter2@localhost/share", "-o", "o=vers=3.0", "smb-user"]);
    const user = r.stor(["--log-level", "debug", "volume", "mount", "smb-user", "c1"]);
    expect(user.stderr).toContain(`mount -t cifs //bob:********@127.0.0.1/share ${r.path}/volumes/smb-user/_data -o vers=3.0\n`);
    for (const name of ["smb-url", "smb-pct", "smb-user"]) {
      const [v] = JSON.parse(r.ok(["volume", "inspect", name]));
      expect(JSON.stringify(v.Options)).not.toContain("hunter2");
      const res = r.stor(["--log-level", "debug", "volume", "mount", name, "c1"]);
      expect(res.code).toBe(1);
      expect(res.stdout + res.stderr).not.toContain("hunter2");
      expect(res.stderr).toContain("********");
    }
  }, 60_000);

  test.skipIf(!LOCALHOST)("nfs: a host name in addr= is resolved to an address", async () => {
    r.ok(["volume", "create", "-o", "type=nfs", "-o", "device=:/export", "-o", "o=addr=localhost,soft,timeo=10,retrans=1", "nfs"]);
    const res = r.stor(["--log-level", "debug", "volume", "mount", "nfs", "c1"]);
    expect(res.code).toBe(1);
    expect(res.stderr).toContain(`mount -t nfs :/export ${r.path}/volumes/nfs/_data -o addr=127.0.0.1,soft,timeo=10,retrans=1\n`);
    expect(res.stderr).toMatch(new RegExp(`^stor: mount nfs :/export on ${r.path}/volumes/nfs/_data: .+$`, "m"));
  }, 60_000);

  test("an address that does not resolve fails the mount with one line", () => {
    r.ok(["volume", "create", "-o", "type=nfs", "-o", "device=:/e", "-o", "o=addr=nosuch.invalid", "nfs2"]);
    const res = r.stor(["volume", "mount", "nfs2", "c1"]);
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/^stor: resolve network volume address "nosuch\.invalid": .+\n$/);
  }, 60_000);
});

describe("quota without support", () => {
  test.skipIf(!need(isRoot(), "mounting a tmpfs as the root needs root"))("size= on a filesystem without project quotas is refused; size=0 asks for none", () => {
    const r = new TestRoot();
    try {
      // tmpfs has no project quotas, whatever the kernel.
      const root = r.dir("tmpfs-root");
      must(`mount -t tmpfs tmpfs ${root}`);
      const res = sh([STOR, "--root", root, "--config", r.config, "volume", "create", "-o", "size=10m", "tx-quota"]);
      expect([res.code, res.stderr]).toEqual([2, 'stor: volume "tx-quota": quota size requested but no quota support\n']);
      expect(sh([STOR, "--root", root, "--config", r.config, "volume", "create", "-o", "size=0", "tx-zero"]).stdout).toBe("tx-zero\n");
    } finally {
      r.close();
    }
  });
});

test("label names inherited from Object match nothing: prune -f --filter label=toString removes no volume; __proto__ is a label like any other", () => {
  const r = new TestRoot();
  try {
    const anon = r.ok(["volume", "create"]).trim(); // anonymous: what prune removes
    r.ok(["volume", "create", "--label", "__proto__=p", "protolabel"]);
    for (const name of ["toString", "constructor", "hasOwnProperty"]) {
      expect(r.ok(["volume", "ls", "-q", "-f", `label=${name}`])).toBe("");
      expect(r.ok(["volume", "prune", "-f", "--filter", `label=${name}`])).toBe("Total reclaimed space: 0B\n");
    }
    expect(r.ok(["volume", "ls", "-q"])).toBe(`${anon}\nprotolabel\n`);
    expect(r.ok(["volume", "inspect", "protolabel"])).toContain('"Labels": {\n            "__proto__": "p"\n        }');
    expect(r.ok(["volume", "ls", "-q", "-f", "label=__proto__=p"])).toBe("protolabel\n");
  } finally {
    r.close();
  }
});
