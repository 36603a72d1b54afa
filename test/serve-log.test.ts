/**
 * `stor serve`'s log: a line a call, each with a timestamp, the call, the name it was about, how
 * it ended and how long it took; a caller's mistake is a refusal, not an error; JSON on request.
 */
import { afterEach, beforeAll, afterAll, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Daemon, connectable } from "./daemon.ts";
import { STOR, TestRoot } from "./helpers.ts";

let r: TestRoot;
let daemon: Daemon | undefined;
beforeAll(() => {
  r = new TestRoot();
});
afterEach(async () => {
  await daemon?.stop();
  daemon = undefined;
});
afterAll(() => r.close());

/** Starts `stor serve` as a Docker volume plugin with `args`; returns its socket and log file. */
async function serve(name: string, args: string[]): Promise<{ socket: string; log: string }> {
  const socket = join(r.dir(name), "plugin.sock");
  const log = join(r.path, `${name}.log`);
  daemon = new Daemon([STOR, "--root", r.path, "--config", r.config, "--log-level", "info", "serve", "--docker-volume", socket, ...args], log);
  await daemon.until(() => connectable(socket));
  return { socket, log };
}

/** Posts `body` to the plugin's `endpoint` (`Create`); returns the reply's body. */
async function call(socket: string, endpoint: string, body: object): Promise<{ Err?: string }> {
  const res = await fetch(`http://plugin/VolumeDriver.${endpoint}`, { method: "POST", body: JSON.stringify(body), unix: socket } as RequestInit);
  return (await res.json()) as { Err?: string };
}

const STAMP = String.raw`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z`;

test("each call is one timestamped line: call, name, outcome, duration; a bad option is a refusal", async () => {
  const { socket, log } = await serve("text", []);
  expect((await call(socket, "Create", { Name: "logged", Opts: {} })).Err).toBeUndefined();
  expect((await call(socket, "Create", { Name: "bad-opt", Opts: { bogus: "1" } })).Err).toContain('invalid option: "bogus"');
  await daemon!.stop();
  const lines = readFileSync(log, "utf8").split("\n");
  expect(lines).toContainEqual(expect.stringMatching(new RegExp(`^${STAMP} stor: info: Create name="logged" ok \\d+(\\.\\d)?ms$`)));
  expect(lines).toContainEqual(expect.stringMatching(new RegExp(`^${STAMP} stor: info: Create name="bad-opt" refused: volume "bad-opt": invalid option: "bogus" \\d+(\\.\\d)?ms$`)));
  expect(lines.filter((l) => l.includes(" error: "))).toEqual([]);
});

test("--log-format json writes one object a line, with the same fields", async () => {
  const { socket, log } = await serve("json", ["--log-format", "json"]);
  await call(socket, "Create", { Name: "json-one", Opts: {} });
  await call(socket, "Remove", { Name: "nosuch" });
  await daemon!.stop();
  const entries = readFileSync(log, "utf8").trim().split("\n").map((l) => JSON.parse(l));
  expect(entries).toContainEqual({ time: expect.stringMatching(new RegExp(`^${STAMP}$`)), level: "info", msg: expect.any(String), call: "Create", name: "json-one", outcome: "ok", duration_ms: expect.any(Number) });
  expect(entries).toContainEqual(expect.objectContaining({ level: "info", call: "Remove", name: "nosuch", outcome: "refused", error: 'volume "nosuch": not found' }));
});

test("an unknown log format is refused before anything is served", () => {
  const res = Bun.spawnSync([STOR, "--root", r.path, "serve", "--docker-volume", "/nonexistent/x.sock", "--log-format", "xml"]);
  expect([res.exitCode, res.stderr.toString()]).toEqual([2, 'stor: log format "xml": expected text or json\n']);
});
