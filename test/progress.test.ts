/**
 * Progress of long operations: drawn on stderr when it is a terminal (here a pty, through
 * script(1)), and nothing of it when stderr is a pipe.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { STOR, TestRoot, have, holdAt, isRoot, must, need, untilHeld } from "./helpers.ts";

const canRun = need(isRoot(), "root: native snapshots keep their owners") && need(have("script"), "script(1), for a pty");

let r: TestRoot;
beforeAll(() => {
  r = new TestRoot();
});
afterAll(() => r?.close());

/** How long a held command waits: past the quiet time before a progress line shows (200 ms). */
const HOLD_MS = 400;

/**
 * Runs stor on a pty, held at failpoint `point` before its long work begins and let go
 * {@link HOLD_MS} later, so its progress line shows however fast the machine does the work;
 * returns the exit code and everything the terminal got.
 */
async function onTerminal(args: string[], point: string): Promise<{ code: number; screen: string }> {
  const held = join(r.dir("run"), "held");
  rmSync(held, { force: true });
  const line = [STOR, "--root", r.path, "--config", r.config, ...args].map((a) => `'${a}'`).join(" ");
  const script = Bun.spawn(["script", "-qefc", line, "/dev/null"], {
    env: { ...process.env, ...holdAt(point, held) },
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  const screen = new Response(script.stdout).text();
  let ended = false;
  void script.exited.then(() => (ended = true));
  try {
    // Held at the failpoint, or ended without reaching it (what it printed then says why).
    if (await untilHeld(held, () => ended)) await Bun.sleep(HOLD_MS);
    // A failpoint counts in each thread: each helper thread holds the command once more.
    while (!ended) {
      rmSync(held, { force: true });
      await Bun.sleep(10);
    }
  } finally {
    // A test that failed leaves no command held behind it.
    rmSync(held, { force: true });
    if (!ended) script.kill("SIGKILL");
  }
  return { code: await script.exited, screen: await screen };
}

/** Fills `dir` with a tree whose copy or removal reports progress many times (4,000 entries). */
function bigTree(dir: string): void {
  for (let d = 0; d < 40; d++) {
    mkdirSync(join(dir, `d${d}`));
    for (let f = 0; f < 100; f++) writeFileSync(join(dir, `d${d}`, `f${f}`), "data");
  }
}

/** The directory of native snapshot `key`, from its mounts. */
const snapshotDir = (key: string) => JSON.parse(r.ok(["snapshot", "-s", "native", "mounts", "--format", "json", "/t", key]))[0].Source as string;

describe.skipIf(!canRun)("progress", () => {
  beforeAll(() => {
    r.ok(["snapshot", "-s", "native", "prepare", "big-src"]);
    bigTree(snapshotDir("big-src"));
    r.ok(["snapshot", "-s", "native", "commit", "big", "big-src"]);
  });

  test("on a terminal, a native prepare shows the entries and bytes it copied, then takes the line away", async () => {
    const { code, screen } = await onTerminal(["snapshot", "-s", "native", "prepare", "copy-1", "big"], "prepare:made");
    expect(code).toBe(0);
    expect(screen).toMatch(/\r\x1b\[Kcopying: \d+ entries, \d+\.\d [KM]iB/);
    expect(screen).toEndWith("\r\x1b[K");
  });

  test("on a terminal, snapshot rm of a large tree shows what it removed", async () => {
    r.ok(["snapshot", "-s", "native", "prepare", "copy-2", "big"]);
    const { code, screen } = await onTerminal(["snapshot", "-s", "native", "rm", "copy-2"], "remove-tree:opened");
    expect(code).toBe(0);
    expect(screen).toMatch(/\r\x1b\[Kremoving snapshot copy-2: \d+ entries/);
  });

  test("on a terminal, volume rm of a large volume shows what it removed, then prints the name on a clean line", async () => {
    r.ok(["volume", "create", "bigvol"]);
    bigTree(JSON.parse(r.ok(["volume", "inspect", "bigvol"]))[0].Mountpoint);
    const { code, screen } = await onTerminal(["volume", "rm", "bigvol"], "remove-tree:opened");
    expect(code).toBe(0);
    expect(screen).toMatch(/\r\x1b\[Kremoving volume bigvol: \d+ entries/);
    expect(screen).toEndWith("\r\x1b[Kbigvol\r\n");
  });

  test("on a terminal, volume prune shows what it removed", async () => {
    r.ok(["volume", "create", "--label", "tmp", "prunable"]);
    bigTree(JSON.parse(r.ok(["volume", "inspect", "prunable"]))[0].Mountpoint);
    const { code, screen } = await onTerminal(["volume", "prune", "-f", "-a", "--filter", "label=tmp"], "remove-tree:opened");
    expect(code).toBe(0);
    expect(screen).toMatch(/\r\x1b\[Kremoving: \d+ entries/);
    expect(screen).toContain("Deleted Volumes:\r\nprunable\r\n");
  });

  test("on a terminal, a prune of several batches, whose trees go on helper threads, shows what they removed", async () => {
    // More volumes than one batch of locks (256): the trash of each batch goes on a helper thread.
    const vols = join(r.path, "volumes");
    for (let i = 0; i < 300; i++) mkdirSync(join(vols, `many${i}`, "_data"), { recursive: true });
    bigTree(join(vols, "many7", "_data"));
    r.ok(["restore"]); // adopts them
    const { code, screen } = await onTerminal(["volume", "prune", "-f", "-a"], "remove-tree:opened");
    expect(code).toBe(0);
    expect(screen).toMatch(/\r\x1b\[Kremoving: \d+ entries/);
    expect(screen).toContain("many7\r\n");
    expect(r.ok(["volume", "ls", "-q"])).toBe("");
  });

  test("on a terminal, an unpack that fails takes its progress line away before it says why", async () => {
    const dir = r.dir("image");
    must(`cd ${dir} && head -c 8388608 /dev/urandom > blob && tar -cf layer.tar blob && rm blob`);
    const put = (b: Buffer | string) => {
      const hex = createHash("sha256").update(b).digest("hex");
      mkdirSync(join(dir, "blobs/sha256"), { recursive: true });
      writeFileSync(join(dir, "blobs/sha256", hex), b);
      return { digest: `sha256:${hex}`, size: Buffer.byteLength(b) };
    };
    const layer = put(readFileSync(join(dir, "layer.tar")));
    const architecture = process.arch === "x64" ? "amd64" : process.arch;
    const config = put(JSON.stringify({ architecture, os: "linux", rootfs: { type: "layers", diff_ids: [layer.digest] } }));
    const manifest = put(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: "application/vnd.oci.image.manifest.v1+json",
        config: { mediaType: "application/vnd.oci.image.config.v1+json", ...config },
        layers: [{ mediaType: "application/vnd.oci.image.layer.v1.tar", ...layer }],
      }),
    );
    writeFileSync(join(dir, "oci-layout"), '{"imageLayoutVersion":"1.0.0"}');
    writeFileSync(join(dir, "index.json"), JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: "application/vnd.oci.image.manifest.v1+json", ...manifest }] }));
    // Its last byte is not the one its digest says: found at its end, once the progress showed.
    const blob = join(dir, "blobs/sha256", layer.digest.slice(7));
    const bytes = readFileSync(blob);
    bytes[bytes.length - 1]! ^= 1;
    writeFileSync(blob, bytes);
    const { code, screen } = await onTerminal(["unpack", "-s", "native", dir], "unpack:claimed");
    expect(code).toBe(2);
    expect(screen).toMatch(/\r\x1b\[Klayer 1\/1 \S+ +applying/);
    expect(screen).toMatch(/\r\x1b\[Kstor: [^\r\n]*content does not match its digest\r\n$/);
  });

  test("not on a terminal, the same commands print no progress at all", () => {
    for (const args of [["snapshot", "-s", "native", "prepare", "quiet-copy", "big"], ["snapshot", "-s", "native", "rm", "quiet-copy"]]) {
      expect(r.stor(args)).toEqual({ code: 0, stdout: "", stderr: "" });
    }
  });
});
