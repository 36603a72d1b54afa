/**
 * A tiny Docker volume plugin for the tests, HTTP over a unix socket written by hand (so it can
 * misbehave below HTTP too). Run as `bun misbehavingPlugin.ts ADDRESS DIR [CERT KEY]`: ADDRESS a
 * socket path or `tcp://HOST:PORT`, over TLS with CERT and KEY. It keeps volumes as
 * directories `DIR/volumes/NAME` and logs each call to `DIR/calls.jsonl`. `DIR/behaviour.json`,
 * read on every call, maps a method (`VolumeDriver.Create`, `Plugin.Activate`, …) to how it
 * misbehaves: `slow` (never answers), `malformed` (200 with a body that is not JSON), `err` (200
 * with an Err), `reset` (the connection is reset after the request is read), `http500` (500 with
 * an Err), `notvolume` (Activate: implements something else), `global` (Capabilities: global),
 * `huge` (200 with a body of 256 MiB, written as fast as it is read; how much was written when the
 * connection closed is logged to `DIR/huge.jsonl`), `answer:BODY` (200 with BODY as it is).
 */
import { appendFileSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync } from "node:fs";
import { createServer, type Socket } from "node:net";
import { join } from "node:path";
import { createServer as createTlsServer } from "node:tls";

const [address, dir, cert, key] = process.argv.slice(2) as [string, string, string?, string?];
const volumes = join(dir, "volumes");
mkdirSync(volumes, { recursive: true });

function behaviour(method: string): string | undefined {
  const file = join(dir, "behaviour.json");
  return existsSync(file) ? (JSON.parse(readFileSync(file, "utf8")) as Record<string, string>)[method] : undefined;
}

/** What a well-behaved plugin answers. */
function answer(method: string, body: Record<string, unknown>): object {
  const name = String(body.Name ?? "");
  const path = join(volumes, name);
  const summary = (n: string) => ({ Name: n, Mountpoint: join(volumes, n), CreatedAt: statSync(join(volumes, n)).mtime.toISOString() });
  switch (method) {
    case "Plugin.Activate":
      return { Implements: [behaviour(method) === "notvolume" ? "NetworkDriver" : "VolumeDriver"] };
    case "VolumeDriver.Capabilities":
      return { Capabilities: { Scope: behaviour(method) === "global" ? "global" : "local" } };
    case "VolumeDriver.Create":
      mkdirSync(path, { recursive: true });
      return {};
    case "VolumeDriver.Remove":
      if (!existsSync(path)) return { Err: `no volume ${name}` };
      rmSync(path, { recursive: true });
      return {};
    case "VolumeDriver.Mount":
    case "VolumeDriver.Path":
      return existsSync(path) ? { Mountpoint: path } : { Err: `no volume ${name}` };
    case "VolumeDriver.Unmount":
      return {};
    case "VolumeDriver.Get":
      return existsSync(path) ? { Volume: { ...summary(name), Status: { plugin: "misbehaving" } } } : { Err: `no volume ${name}` };
    case "VolumeDriver.List":
      return { Volumes: readdirSync(volumes).map(summary) };
    default:
      return { Err: `unknown method ${method}` };
  }
}

const header = (status: number, length: number) =>
  `HTTP/1.1 ${status} ${status === 200 ? "OK" : "Error"}\r\nContent-Type: application/vnd.docker.plugins.v1.2+json\r\nContent-Length: ${length}\r\nConnection: close\r\n\r\n`;

function respond(conn: Socket, status: number, body: string): void {
  conn.end(`${header(status, Buffer.byteLength(body))}${body}`);
}

/** A 200 answer of HUGE spaces, each MiB written once the last one was taken. */
const HUGE = 256 * 2 ** 20;
function respondHuge(conn: Socket): void {
  const chunk = Buffer.alloc(2 ** 20, 0x20);
  let sent = 0;
  conn.once("close", () => appendFileSync(join(dir, "huge.jsonl"), `${JSON.stringify({ sent })}\n`));
  const pump = () => {
    while (sent < HUGE && !conn.destroyed) {
      sent += chunk.length;
      if (!conn.write(chunk)) return void conn.once("drain", pump);
    }
    conn.end();
  };
  conn.write(header(200, HUGE));
  pump();
}

function handle(conn: Socket, head: string, raw: string): void {
  const [requestLine, ...headers] = head.split("\r\n");
  const method = requestLine!.split(" ")[1]!.replace(/^\//, "");
  const contentType = headers.find((h) => /^content-type:/i.test(h))?.replace(/^[^:]*:\s*/, "") ?? "";
  const body = (raw.trim() ? JSON.parse(raw) : {}) as Record<string, unknown>;
  appendFileSync(join(dir, "calls.jsonl"), `${JSON.stringify({ method, body, contentType })}\n`);
  const how = behaviour(method);
  if (how?.startsWith("answer:")) return respond(conn, 200, how.slice("answer:".length));
  switch (how) {
    case "slow":
      return; // the connection stays open, unanswered
    case "malformed":
      return respond(conn, 200, "{\"Mountpoint\": ");
    case "err":
      return respond(conn, 200, JSON.stringify({ Err: "the disk is on fire\nsecond line" }));
    case "http500":
      return respond(conn, 500, JSON.stringify({ Err: "internal trouble" }));
    case "reset":
      conn.resetAndDestroy();
      return;
    case "huge":
      return respondHuge(conn);
  }
  respond(conn, 200, JSON.stringify(answer(method, body)));
}

const serveConnection = (conn: Socket) => {
  let buf = Buffer.alloc(0);
  conn.on("error", () => undefined);
  conn.on("data", (chunk: Buffer) => {
    buf = Buffer.concat([buf, chunk]);
    const end = buf.indexOf("\r\n\r\n");
    if (end < 0) return;
    const head = buf.subarray(0, end).toString();
    const length = Number(/content-length:\s*(\d+)/i.exec(head)?.[1] ?? 0);
    if (buf.length < end + 4 + length) return;
    conn.removeAllListeners("data");
    handle(conn, head, buf.subarray(end + 4, end + 4 + length).toString());
  });
};
const server = cert && key ? createTlsServer({ cert: readFileSync(cert), key: readFileSync(key) }, serveConnection) : createServer(serveConnection);
const tcp = /^tcp:\/\/(.*):(\d+)$/.exec(address);
if (tcp) {
  server.listen(Number(tcp[2]), tcp[1]);
} else {
  rmSync(address, { force: true });
  server.listen(address);
}
// At once, whatever connections a "slow" call left open.
process.on("SIGTERM", () => process.exit(0));
