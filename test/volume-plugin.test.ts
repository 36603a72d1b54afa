/**
 * Docker volume plugins as stor volume drivers, over real sockets: `stor serve --docker-volume`
 * on a second root is the first plugin; a small plugin of the tests' own (misbehavingPlugin.ts)
 * misbehaves on purpose; and, where dockerd is installed, Docker and stor see one volume through
 * one plugin. The plugin directories are the tests' own (`[volume] plugin_dirs`), never the host's.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
import { connectable, Daemon } from "./daemon.ts";
import { Dockerd, startStor } from "./daemons.ts";
import { have, isRoot, need, sh, TestRoot, type Result } from "./helpers.ts";

const PLUGIN = join(import.meta.dir, "misbehavingPlugin.ts");
/** Seconds: how long a plugin that cannot be reached is retried, and a call may take. */
const RETRY = 2;
const TIMEOUT = 2;

/** A root whose plugins are looked for in `dir` (and no place else: see helpers.ts), waited for briefly. */
class PluginRoot extends TestRoot {
  constructor(readonly pluginDir: string) {
    super();
    writeFileSync(this.config, `[volume]\nplugin_retry = ${RETRY}\nplugin_timeout = ${TIMEOUT}\n`);
  }

  override stor(args: string[], opts: { env?: Record<string, string> } = {}): Result {
    return super.stor(["--plugin-dir", this.pluginDir, ...args], opts);
  }
}
const pluginRoot = (dir: string) => new PluginRoot(dir);

/** The test plugin on `DIR/NAME.sock`, its state in `DIR/NAME-state`; ready when it accepts connections. */
async function startPlugin(dir: string, name: string, socket = join(dir, `${name}.sock`)): Promise<{ daemon: Daemon; state: string; socket: string }> {
  const state = join(dir, `${name}-state`);
  mkdirSync(state, { recursive: true });
  const daemon = new Daemon([process.execPath, PLUGIN, socket, state], join(state, "plugin.log"));
  await daemon.until(() => connectable(socket), { timeoutMs: 15_000 });
  return { daemon, state, socket };
}

/** The test plugin on TCP `port` of 127.0.0.1 (TLS with `tls`), its state in `DIR/NAME-state`. */
async function startTcpPlugin(dir: string, name: string, port: number, tls: string[] = []): Promise<Daemon> {
  const state = join(dir, `${name}-state`);
  mkdirSync(state, { recursive: true });
  const daemon = new Daemon([process.execPath, PLUGIN, `tcp://127.0.0.1:${port}`, state, ...tls], join(state, "plugin.log"));
  const open = () =>
    new Promise<boolean>((done) => {
      const c = connect(port, "127.0.0.1");
      c.once("connect", () => done(c.destroy() !== undefined));
      c.once("error", () => done(false));
    });
  await daemon.until(open, { timeoutMs: 15_000 });
  return daemon;
}

/** The methods the plugin was called with, in order. */
function calls(state: string): { method: string; body: Record<string, unknown>; contentType: string }[] {
  const file = join(state, "calls.jsonl");
  return existsSync(file) ? readFileSync(file, "utf8").trim().split("\n").map((l) => JSON.parse(l)) : [];
}

describe.skipIf(!need(isRoot(), "root (stor serve mounts)"))("stor serve --docker-volume on a second root as the plugin", () => {
  let dir = "";
  let a: TestRoot;
  let b: TestRoot;
  let serve: Daemon | undefined;

  beforeAll(async () => {
    b = new TestRoot();
    dir = b.dir("plugins");
    a = pluginRoot(dir);
    serve = await startStor(b, ["--docker-volume", join(dir, "storb.sock")]);
  });
  afterAll(async () => {
    await serve?.stop();
    a?.close();
    b?.close();
  });

  test.skipIf(!isRoot())("stor volume plugins lists it, answering", () => {
    expect(a.ok(["volume", "plugins"])).toMatch(new RegExp(`^storb\\s+unix://${dir}/storb.sock\\s+local\\s+answers$`, "m"));
  });

  test.skipIf(!isRoot())("create, mount, write, unmount and rm from the first root; the data is in the second", () => {
    expect(a.ok(["volume", "create", "-d", "storb", "--label", "team=a", "shared"])).toBe("shared\n");
    // The second root has the volume; the first keeps its driver and labels.
    expect(b.ok(["volume", "ls", "-q"])).toBe("shared\n");
    const [v] = JSON.parse(a.ok(["volume", "inspect", "shared"]));
    expect(v).toMatchObject({ Name: "shared", Driver: "storb", Labels: { team: "a" }, Mountpoint: join(b.path, "volumes/shared/_data"), Scope: "local" });

    const path = a.ok(["volume", "mount", "shared", "container-1"]).trim();
    expect(path).toBe(join(b.path, "volumes/shared/_data"));
    writeFileSync(join(path, "f"), "through the plugin");
    expect(readFileSync(join(b.path, "volumes/shared/_data/f"), "utf8")).toBe("through the plugin");
    // The reference is the plugin's Mount ID: the second root holds it too.
    expect(b.stor(["volume", "rm", "shared"])).toMatchObject({ code: 5, stderr: expect.stringContaining("container-1") });
    expect(a.stor(["volume", "rm", "shared"])).toMatchObject({ code: 5, stderr: expect.stringContaining("in use") });

    a.ok(["volume", "unmount", "shared", "container-1"]);
    expect(a.ok(["volume", "rm", "shared"])).toBe("shared\n");
    expect(b.ok(["volume", "ls", "-q"])).toBe("");
    expect(existsSync(join(b.path, "volumes/shared"))).toBe(false);
    expect(a.ok(["volume", "ls", "-q"])).toBe("");
  });

  test.skipIf(!isRoot())("a reference restore releases ends at the plugin too (its Unmount); the volume stays", () => {
    a.ok(["volume", "create", "-d", "storb", "held"]);
    a.ok(["volume", "mount", "held", "container-2"]);
    expect(b.stor(["volume", "rm", "held"])).toMatchObject({ code: 5 });
    expect(a.ok(["restore", "--force"])).toContain('released volume "held": references container-2\n');
    expect(b.ok(["volume", "ls", "-q", "-f", "dangling=true"])).toBe("held\n");
    expect(a.ok(["volume", "rm", "held"])).toBe("held\n");
  });

  test.skipIf(!isRoot())("a plugin's volume stor has no record of is listed as Docker lists it, and can be inspected", () => {
    a.ok(["volume", "create", "mine"]);
    b.ok(["volume", "create", "theirs"]);
    expect(a.ok(["volume", "ls"])).toBe("DRIVER    VOLUME NAME\nlocal     mine\nstorb     theirs\n");
    expect(a.ok(["volume", "ls", "-q", "-f", "driver=storb"])).toBe("theirs\n");
    expect(a.ok(["volume", "ls", "-q", "-f", "driver=local"])).toBe("mine\n");
    const [v] = JSON.parse(a.ok(["volume", "inspect", "theirs"]));
    expect(v).toMatchObject({ Name: "theirs", Driver: "storb", Mountpoint: join(b.path, "volumes/theirs/_data") });
    a.ok(["volume", "rm", "theirs", "mine"]);
    expect(b.ok(["volume", "ls", "-q"])).toBe("");
  });

  test.skipIf(!isRoot())("a plugin's volume is mounted and removed from a root with no store yet, which records it", () => {
    const fresh = pluginRoot(dir);
    try {
      b.ok(["volume", "create", "elsewhere"]);
      expect(existsSync(join(fresh.path, "volumes"))).toBe(false);
      expect(fresh.ok(["volume", "mount", "elsewhere", "c1"]).trim()).toBe(join(b.path, "volumes/elsewhere/_data"));
      expect(fresh.ok(["volume", "ls", "-q"])).toBe("elsewhere\n");
      fresh.ok(["volume", "unmount", "elsewhere", "c1"]);
      expect(fresh.ok(["volume", "rm", "elsewhere"])).toBe("elsewhere\n");
      expect(b.ok(["volume", "ls", "-q"])).toBe("");
    } finally {
      fresh.close();
    }
  });

  test.skipIf(!isRoot())("df and prune count local volumes only, and never ask the plugin to remove anything", () => {
    a.ok(["volume", "create", "-d", "storb", "kept"]);
    expect(a.ok(["volume", "prune", "-f", "-a"])).toBe("Total reclaimed space: 0B\n");
    expect(a.ok(["df"])).toMatch(/^Local Volumes\s+0\s+0\s+0B\s+0B$/m);
    expect(b.ok(["volume", "ls", "-q"])).toBe("kept\n");
    a.ok(["volume", "rm", "kept"]);
  });
});

describe("a plugin that misbehaves", () => {
  let dir = "";
  let a: TestRoot;
  let plugin: Awaited<ReturnType<typeof startPlugin>>;
  const behave = (b: Record<string, string>) => writeFileSync(join(plugin.state, "behaviour.json"), JSON.stringify(b));
  /** Every row of stor's volume metadata. */
  const metadata = () => {
    const db = new Database(join(a.path, "volumes/.meta/metadata.db"), { readonly: true });
    try {
      return ["volumes", "labels", "options", "refs"].map((t) => db.query(`SELECT * FROM ${t} ORDER BY 1, 2`).all());
    } finally {
      db.close();
    }
  };

  beforeAll(async () => {
    dir = mkdtempSync("/tmp/stor-plugins-");
    a = pluginRoot(dir);
    plugin = await startPlugin(dir, "bad");
    behave({});
    a.ok(["volume", "create", "-d", "bad", "--label", "k=v", "held"]);
  });
  afterAll(async () => {
    await plugin?.daemon.stop();
    a?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test("calls carry Docker's content type; Mount and Unmount carry the reference", () => {
    a.ok(["volume", "mount", "held", "ref-9"]);
    a.ok(["volume", "unmount", "held", "ref-9"]);
    const seen = calls(plugin.state);
    expect(seen.every((c) => c.contentType === "application/vnd.docker.plugins.v1.2+json")).toBe(true);
    expect(seen.filter((c) => /mount$/i.test(c.method))).toEqual([
      { method: "VolumeDriver.Mount", body: { Name: "held", ID: "ref-9" }, contentType: expect.any(String) },
      { method: "VolumeDriver.Unmount", body: { Name: "held", ID: "ref-9" }, contentType: expect.any(String) },
    ]);
    expect(seen.find((c) => c.method === "VolumeDriver.Create")?.body).toEqual({ Name: "held", Opts: {} });
  });

  test("a volume the plugin no longer lists keeps its metadata at restore while it has references", () => {
    a.ok(["volume", "create", "-d", "bad", "--label", "keep=me", "unlisted"]);
    a.ok(["volume", "mount", "unlisted", "container-7"]);
    rmSync(join(plugin.state, "volumes/unlisted"), { recursive: true }); // the plugin's List leaves it out
    const out = a.ok(["restore"]);
    expect(out).toContain('kept volume "unlisted": references container-7 (in use in this boot)');
    expect(out).not.toContain('dropped volume "unlisted"');
    expect(JSON.parse(a.ok(["volume", "inspect", "unlisted"]))[0].Labels).toEqual({ keep: "me" });
    expect(a.stor(["volume", "rm", "unlisted"])).toMatchObject({ code: 5, stderr: expect.stringContaining("in use") });
    // Its reference gone, the next restore finds it gone.
    a.ok(["volume", "unmount", "unlisted", "container-7"]);
    expect(a.ok(["restore"])).toContain('dropped volume "unlisted"');
  });

  test("options go to Create as given; a reference taken again asks the plugin for the path (Path)", () => {
    a.ok(["volume", "create", "-d", "bad", "-o", "size=1G", "-o", "tier=fast", "opted"]);
    expect(calls(plugin.state).at(-1)).toMatchObject({ method: "VolumeDriver.Create", body: { Name: "opted", Opts: { size: "1G", tier: "fast" } } });
    const path = a.ok(["volume", "mount", "opted", "r1"]);
    expect(a.ok(["volume", "mount", "opted", "r1"])).toBe(path);
    expect(calls(plugin.state).at(-1)).toMatchObject({ method: "VolumeDriver.Path", body: { Name: "opted" } });
    expect(JSON.parse(a.ok(["volume", "inspect", "opted"]))[0].Options).toEqual({ size: "1G", tier: "fast" });
    a.ok(["volume", "unmount", "opted", "r1"]);
    a.ok(["volume", "rm", "opted"]);
  });

  test("an option named as a secret goes to the plugin as given, and inspect masks it", () => {
    a.ok(["volume", "create", "-d", "bad", "-o", "password=hunter2", "-o", "token=abc", "-o", "o=user=u,password2=x y", "-o", "tier=fast", "secret"]);
    expect(calls(plugin.state).at(-1)).toMatchObject({ method: "VolumeDriver.Create", body: { Opts: { password: "hunter2", token: "abc", o: "user=u,password2=x y" } } });
    const shown = a.ok(["volume", "inspect", "secret"]);
    expect(JSON.parse(shown)[0].Options).toEqual({ password: "********", token: "********", o: "user=u,password2=********", tier: "fast" });
    expect(shown).not.toContain("hunter2");
    a.ok(["volume", "rm", "secret"]);
  });

  const cases = [
    ["slow", `VolumeDriver.Create: no answer within ${2 * TIMEOUT}s`, `VolumeDriver.Remove: no answer within ${TIMEOUT}s`],
    ["malformed", 'VolumeDriver.Create: malformed answer: {"Mountpoint":', 'VolumeDriver.Remove: malformed answer: {"Mountpoint":'],
    ["err", "VolumeDriver.Create: the disk is on fire\\nsecond line", "VolumeDriver.Remove: the disk is on fire\\nsecond line"],
    ["http500", "VolumeDriver.Create: internal trouble", "VolumeDriver.Remove: internal trouble"],
    ["reset", "VolumeDriver.Create: connection reset before the answer was complete", "VolumeDriver.Remove: connection reset before the answer was complete"],
  ] as const;
  test.each(cases)("%p: create and rm fail with one line naming plugin and socket, exit 1; metadata unchanged", (how, createWhy, removeWhy) => {
    const before = metadata();
    behave({ "VolumeDriver.Create": how, "VolumeDriver.Remove": how });
    const where = `stor: volume driver "bad" (unix://${plugin.socket}): `;
    expect(a.stor(["volume", "create", "-d", "bad", "fresh"])).toEqual({ code: 1, stdout: "", stderr: `${where}${createWhy}\n` });
    expect(a.stor(["volume", "rm", "held"])).toEqual({ code: 1, stdout: "", stderr: `${where}${removeWhy}\n` });
    behave({});
    expect(metadata()).toEqual(before);
    expect(a.ok(["volume", "ls", "-q"])).toBe("held\n");
  }, 30_000);

  test("a call the plugin took but did not answer in time is not made again: one Mount, one failure", () => {
    const settings = readFileSync(a.config, "utf8");
    writeFileSync(a.config, "[volume]\nplugin_retry = 30\nplugin_timeout = 1\n");
    try {
      const before = calls(plugin.state).length;
      behave({ "VolumeDriver.Mount": "slow" });
      const res = a.stor(["volume", "mount", "held", "r-slow"]);
      expect(res).toMatchObject({ code: 1, stderr: expect.stringMatching(/VolumeDriver\.Mount: no answer within \d+s\n$/) });
      expect(calls(plugin.state).slice(before).filter((c) => c.method === "VolumeDriver.Mount")).toHaveLength(1);
    } finally {
      behave({});
      writeFileSync(a.config, settings);
    }
  }, 30_000);

  test("an answer past 16 MiB fails with one line (exit 1), is not read to its end, and records no reference", async () => {
    const before = metadata();
    behave({ "VolumeDriver.Mount": "huge" });
    expect(a.stor(["volume", "mount", "held", "r-huge"])).toEqual({
      code: 1,
      stdout: "",
      stderr: `stor: volume driver "bad" (unix://${plugin.socket}): VolumeDriver.Mount: answer too large (more than 16 MiB)\n`,
    });
    behave({});
    expect(metadata()).toEqual(before);
    // The connection was closed after the bound: of the 256 MiB, little more than 16 were written.
    const log = join(plugin.state, "huge.jsonl");
    // The plugin sees the close a moment later, and writes its line then: waited for whole, not only for the file.
    await plugin.daemon.until(() => existsSync(log) && readFileSync(log, "utf8").endsWith("\n"), { timeoutMs: 10_000 });
    const { sent } = JSON.parse(readFileSync(log, "utf8"));
    expect(sent).toBeLessThan(64 * 2 ** 20);
  });

  test.each([
    ["{}", "the answer has no mount point"],
    ['{"Mountpoint": ""}', "the answer has no mount point"],
    ['{"Mountpoint": 5}', "malformed answer: Mountpoint is not a string"],
    ['{"Mountpoint": ["/x"]}', "malformed answer: Mountpoint is not a string"],
    ['{"Mountpoint": "/x", "Err": {"why": "x"}}', "malformed answer: Err is not a string"],
    ['{"Mountpoint": "/x", "Err": true}', "malformed answer: Err is not a string"],
  ])("a Mount or Path answer %s fails with one line (exit 1) and records no reference", (body, why) => {
    const before = metadata();
    const where = `stor: volume driver "bad" (unix://${plugin.socket}): `;
    behave({ "VolumeDriver.Mount": `answer:${body}` });
    expect(a.stor(["volume", "mount", "held", "r-new"])).toEqual({ code: 1, stdout: "", stderr: `${where}VolumeDriver.Mount: ${why}\n` });
    expect(metadata()).toEqual(before);
    // A reference taken again asks for the path alone (Path): its answer is held to the same.
    behave({});
    a.ok(["volume", "mount", "held", "r-taken"]);
    const taken = metadata();
    behave({ "VolumeDriver.Path": `answer:${body}` });
    expect(a.stor(["volume", "mount", "held", "r-taken"])).toEqual({ code: 1, stdout: "", stderr: `${where}VolumeDriver.Path: ${why}\n` });
    expect(metadata()).toEqual(taken);
    behave({});
    a.ok(["volume", "unmount", "held", "r-taken"]);
    expect(metadata()).toEqual(before);
  });

  test.each(["{}", '{"Volumes": null}'])("a List answer %s is malformed: restore keeps the plugin's volumes as recorded, in use", (body) => {
    a.ok(["volume", "mount", "held", "r-live"]);
    const before = metadata();
    behave({ "VolumeDriver.List": `answer:${body}` });
    const restore = a.stor(["restore"]);
    expect(restore).toMatchObject({ code: 0, stderr: "" });
    expect(restore.stdout).toContain(`kept the volumes of driver "bad" as recorded: volume driver "bad" (unix://${plugin.socket}): VolumeDriver.List: malformed answer: Volumes is not a list\n`);
    expect(restore.stdout).not.toContain("dropped");
    behave({});
    expect(metadata()).toEqual(before);
    expect(a.stor(["volume", "rm", "held"])).toMatchObject({ code: 5, stderr: expect.stringContaining("r-live") });
    a.ok(["volume", "unmount", "held", "r-live"]);
  });

  test("a plugin that is no volume driver is not found (exit 3), as is a name no plugin has", () => {
    behave({ "Plugin.Activate": "notvolume" });
    expect(a.stor(["volume", "create", "-d", "bad", "fresh"])).toEqual({
      code: 3,
      stdout: "",
      stderr: `stor: volume driver "bad" (unix://${plugin.socket}): the plugin does not implement VolumeDriver (it implements NetworkDriver)\n`,
    });
    behave({});
    expect(a.stor(["volume", "create", "-d", "nosuch", "fresh"])).toEqual({ code: 3, stdout: "", stderr: 'stor: volume driver "nosuch": not found\n' });
    expect(a.ok(["volume", "ls", "-q"])).toBe("held\n");
  });

  test("a global volume is not removed when this host's reference ends: not by unmount, restore or prune", () => {
    behave({ "VolumeDriver.Capabilities": "global" });
    const [v] = JSON.parse(a.ok(["volume", "inspect", "held"]));
    expect(v).toMatchObject({ Driver: "bad", Scope: "global", Status: { plugin: "misbehaving" } });
    a.ok(["volume", "mount", "held", "here-1"]);
    a.ok(["volume", "mount", "held", "here-2"]);
    a.ok(["volume", "unmount", "held", "here-1"]);
    expect(a.ok(["restore", "--force"])).toContain('released volume "held": references here-2\n');
    expect(a.ok(["volume", "prune", "-f", "-a"])).toBe("Total reclaimed space: 0B\n");
    const seen = calls(plugin.state).filter((c) => /mount$|Remove$/i.test(c.method));
    expect(seen.slice(-4).map((c) => [c.method, c.body.ID])).toEqual([
      ["VolumeDriver.Mount", "here-1"],
      ["VolumeDriver.Mount", "here-2"],
      ["VolumeDriver.Unmount", "here-1"],
      ["VolumeDriver.Unmount", "here-2"],
    ]);
    behave({});
    expect(a.ok(["volume", "ls", "-q"])).toBe("held\n");
    expect(existsSync(join(plugin.state, "volumes/held"))).toBe(true);
  });

  test("gone between calls: its volumes stay listed with the error, rm fails, restore keeps them; back, all works", async () => {
    const before = metadata();
    await plugin.daemon.stop();
    rmSync(plugin.socket, { force: true });
    const ls = a.stor(["volume", "ls"]);
    expect(ls).toEqual({ code: 0, stdout: "DRIVER    VOLUME NAME\nbad       held\n", stderr: 'stor: warn: volume driver "bad": not found (its volumes are listed as stor recorded them)\n' });
    expect(a.stor(["volume", "rm", "held"])).toEqual({ code: 3, stdout: "", stderr: 'stor: volume driver "bad": not found\n' });
    expect(a.stor(["volume", "mount", "held", "r"])).toMatchObject({ code: 3 });
    expect(a.ok(["restore"])).toBe('kept the volumes of driver "bad" as recorded: volume driver "bad": not found\n');
    expect(a.stor(["df"])).toMatchObject({ code: 0, stderr: "" }); // local volumes only: no plugin is asked
    expect(metadata()).toEqual(before);

    // A socket left behind that nothing answers on: retried for the window, then one line.
    sh(["python3", "-c", `import socket; socket.socket(socket.AF_UNIX).bind(${JSON.stringify(plugin.socket)})`]);
    const started = Date.now();
    expect(a.stor(["volume", "rm", "held"])).toEqual({
      code: 1,
      stdout: "",
      stderr: `stor: volume driver "bad" (unix://${plugin.socket}): Plugin.Activate: connection refused\n`,
    });
    expect(Date.now() - started).toBeGreaterThanOrEqual(1000); // one retry, after a second, as Docker's first
    expect(a.ok(["restore"])).toContain('kept the volumes of driver "bad" as recorded');
    expect(metadata()).toEqual(before);

    plugin = await startPlugin(dir, "bad");
    expect(a.ok(["volume", "rm", "held"])).toBe("held\n");
    expect(a.ok(["volume", "ls", "-q"])).toBe("");
  }, 60_000);
});

describe("finding plugins as Docker does", () => {
  let dir = "";
  let extra = "";
  let a: TestRoot;
  const daemons: Daemon[] = [];
  const port = 20_000 + (process.pid % 20_000);

  beforeAll(async () => {
    dir = mkdtempSync("/tmp/stor-plugins-");
    extra = mkdtempSync("/tmp/stor-plugins-extra-");
    a = pluginRoot(dir);
    // A self-signed certificate for 127.0.0.1, and another that signed nothing of this.
    for (const n of ["cert", "other"]) {
      sh(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", join(dir, `${n}.key`), "-out", join(dir, `${n}.pem`), "-days", "1",
        "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"]);
    }
    mkdirSync(join(dir, "sub"));
    daemons.push((await startPlugin(dir, "sub", join(dir, "sub/sub.sock"))).daemon);
    daemons.push(await startTcpPlugin(dir, "plain", port));
    daemons.push(await startTcpPlugin(dir, "secure", port + 1, [join(dir, "cert.pem"), join(dir, "cert.key")]));
    daemons.push((await startPlugin(extra, "elsewhere")).daemon);
    writeFileSync(join(dir, "plain.spec"), `tcp://127.0.0.1:${port}\n`);
    writeFileSync(join(dir, "secure.json"), JSON.stringify({ Name: "secure", Addr: `https://127.0.0.1:${port + 1}`, TLSConfig: { CAFile: join(dir, "cert.pem") } }));
    writeFileSync(join(dir, "insecure.json"), JSON.stringify({ Addr: `https://127.0.0.1:${port + 1}`, TLSConfig: {} }));
    writeFileSync(join(dir, "untrusted.json"), JSON.stringify({ Addr: `https://127.0.0.1:${port + 1}`, TLSConfig: { CAFile: join(dir, "other.pem") } }));
    writeFileSync(join(dir, "broken.spec"), "127.0.0.1:1\n");
    writeFileSync(join(dir, "gone.spec"), `unix://${join(dir, "gone.sock")}\n`); // a plugin long gone
    // A socket wins over a spec file of the same name, as in Docker.
    writeFileSync(join(dir, "sub.spec"), "tcp://127.0.0.1:1\n");
  }, 60_000);
  afterAll(async () => {
    await Promise.all(daemons.map((d) => d.stop()));
    a?.close();
    rmSync(dir, { recursive: true, force: true });
    rmSync(extra, { recursive: true, force: true });
  });

  test("stor volume plugins lists each, with its address and whether it answers", () => {
    const r = a.stor(["volume", "plugins", "--format", "json"]);
    expect(r.code).toBe(0);
    const seen = Object.fromEntries(r.stdout.trim().split("\n").map((l) => JSON.parse(l)).map((p) => [p.Name, [p.Addr, p.Answers]]));
    expect(seen).toEqual({
      broken: ["", false],
      gone: [`unix://${join(dir, "gone.sock")}`, false],
      insecure: [`https://127.0.0.1:${port + 1}`, true],
      plain: [`tcp://127.0.0.1:${port}`, true],
      secure: [`https://127.0.0.1:${port + 1}`, true],
      sub: [`unix://${join(dir, "sub/sub.sock")}`, true],
      untrusted: [`https://127.0.0.1:${port + 1}`, false],
    });
  }, 30_000);

  test.each(["sub", "plain", "secure", "insecure"])("a volume through %p: create, mount, rm", (name) => {
    a.ok(["volume", "create", "-d", name, `v-${name}`]);
    expect(a.ok(["volume", "mount", `v-${name}`, "r"]).trim()).toBe(join(dir, `${name === "insecure" ? "secure" : name}-state/volumes/v-${name}`));
    a.ok(["volume", "unmount", `v-${name}`, "r"]);
    expect(a.ok(["volume", "rm", `v-${name}`])).toBe(`v-${name}\n`);
  });

  test("a certificate the CA file did not sign, and a spec that is no address, are one line each", () => {
    const untrusted = a.stor(["volume", "create", "-d", "untrusted", "never"]);
    expect(untrusted).toMatchObject({ code: 1, stdout: "" });
    expect(untrusted.stderr).toStartWith(`stor: volume driver "untrusted" (https://127.0.0.1:${port + 1}): Plugin.Activate: `);
    expect(untrusted.stderr.split("\n")).toHaveLength(2);
    expect(a.stor(["volume", "create", "-d", "broken", "never"])).toEqual({
      code: 2,
      stdout: "",
      stderr: `stor: plugin spec ${join(dir, "broken.spec")}: "127.0.0.1:1" is not an address (unix:///path or tcp://host:port)\n`,
    });
    expect(a.ok(["volume", "ls", "-q"])).toBe("");
  });

  test("a spec that is not UTF-8 is refused, naming it: its address and files decoded would be others", () => {
    // Bytes \xff decoded are U+FFFD: the socket and the CA file below would be these.
    const specs = { "latin1.spec": Buffer.concat([Buffer.from("unix:///tmp/stor-plug-"), Buffer.from([0xff]), Buffer.from(".sock\n")]), "latin1tls.json": Buffer.concat([Buffer.from(`{"Addr": "https://127.0.0.1:${port + 1}", "TLSConfig": {"CAFile": "/tmp/stor-ca-`), Buffer.from([0xff]), Buffer.from('.pem"}}')]) };
    try {
      for (const [file, bytes] of Object.entries(specs)) {
        writeFileSync(join(dir, file), bytes);
        expect(a.stor(["volume", "create", "-d", file.split(".")[0]!, "never"])).toEqual({ code: 2, stdout: "", stderr: `stor: plugin spec ${join(dir, file)}: is not UTF-8\n` });
      }
    } finally {
      for (const file of Object.keys(specs)) rmSync(join(dir, file), { force: true });
    }
    expect(a.ok(["volume", "ls", "-q"])).toBe("");
  });

  test("plugins that do not answer and hold no volume of stor's neither hold up nor clutter a listing", () => {
    const started = Date.now();
    expect(a.stor(["volume", "ls"])).toEqual({ code: 0, stdout: "DRIVER    VOLUME NAME\n", stderr: "" });
    expect(Date.now() - started).toBeLessThan(1000); // no retry: one attempt each
  });

  test("--plugin-dir adds a directory to look in", () => {
    expect(a.stor(["volume", "create", "-d", "elsewhere", "far"])).toMatchObject({ code: 3 });
    expect(a.ok(["--plugin-dir", extra, "volume", "create", "-d", "elsewhere", "far"])).toBe("far\n");
    // Without it, the volume stays listed from stor's record, with a warning.
    expect(a.stor(["volume", "ls"])).toMatchObject({ code: 0, stdout: expect.stringMatching(/^elsewhere\s+far$/m), stderr: expect.stringContaining("not found") });
    expect(a.ok(["--plugin-dir", extra, "volume", "rm", "far"])).toBe("far\n");
  });
});

describe.skipIf(!need(isRoot() && have("dockerd") && have("docker"), "dockerd and docker, as root"))("dockerd with the same plugin", () => {
  const PLUGIN_NAME = `stor-i16-${process.pid}`;
  const SPEC_DIR = "/etc/docker/plugins";
  const SPEC = join(SPEC_DIR, `${PLUGIN_NAME}.spec`);
  let a: TestRoot;
  let b: TestRoot;
  let serve: Daemon | undefined;
  let dockerd: Dockerd | undefined;
  let dir = "";
  const docker = (...args: string[]) => dockerd!.docker(...args);

  beforeAll(async () => {
    b = new TestRoot();
    dir = b.dir("docker");
    const socket = join(b.dir("run"), "plugin.sock");
    serve = await startStor(b, ["--docker-volume", socket]);
    // dockerd looks in fixed places only; the stor under test looks where its config says.
    mkdirSync(SPEC_DIR, { recursive: true });
    writeFileSync(SPEC, `unix://${socket}\n`);
    a = pluginRoot(SPEC_DIR);
    dockerd = await Dockerd.start(dir);
  }, 180_000);
  afterAll(async () => {
    await dockerd?.stop();
    await serve?.stop();
    rmSync(SPEC, { force: true });
    a?.close();
    b?.close();
  }, 90_000);

  test("a volume made with stor volume create -d P is the same volume for docker volume inspect", () => {
    a.ok(["volume", "create", "-d", PLUGIN_NAME, "both"]);
    const mine = JSON.parse(a.ok(["volume", "inspect", "both"]))[0];
    const r = docker("volume", "inspect", "both");
    expect(r.stderr).toBe("");
    const theirs = JSON.parse(r.stdout)[0];
    expect(theirs).toMatchObject({ Name: "both", Driver: PLUGIN_NAME, Mountpoint: mine.Mountpoint, Scope: mine.Scope });
    expect(mine.Mountpoint).toBe(join(b.path, "volumes/both/_data"));
    // Removed through dockerd, it is gone for stor too once the plugin no longer has it.
    expect(docker("volume", "rm", "both").code).toBe(0);
    expect(a.stor(["volume", "inspect", "both"])).toMatchObject({ code: 0 }); // stor's record remains until restore finds the volume gone
    expect(a.ok(["restore"])).toContain('dropped volume "both"');
    expect(a.stor(["volume", "inspect", "both"]).code).toBe(3);
  });
});

test("bad plugin settings in the config are one line naming the key (exit 2)", () => {
  const r = new TestRoot();
  try {
    writeFileSync(r.config, "[volume]\nplugin_dirs = /etc/docker/plugins relative/dir\n");
    expect(r.stor(["volume", "ls"])).toEqual({ code: 2, stdout: "", stderr: `stor: config ${r.config}: volume.plugin_dirs: must be absolute paths, space-separated\n` });
    writeFileSync(r.config, "[volume]\nplugin_timeout = 0\n");
    expect(r.stor(["volume", "ls"])).toEqual({ code: 2, stdout: "", stderr: `stor: config ${r.config}: volume.plugin_timeout: Number must be greater than 0\n` });
  } finally {
    r.close();
  }
});
