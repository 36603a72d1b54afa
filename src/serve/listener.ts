/**
 * How serve listens on a unix socket: the socket its owner's alone from the start, and no more
 * connections at once than {@link connectionLimit}; and the volume plugin's fetch-style handler
 * answered over node:http, which, unlike Bun.serve, can be held to that limit.
 */
import type { Server as NetServer } from "node:net";
import type { IncomingMessage, RequestListener, ServerResponse } from "node:http";
import { StorError, describe } from "../errors.ts";
import { log } from "../log.ts";
import { openFileLimit } from "../sys/limits.ts";

/** The most connections one socket takes at once, however many descriptors the process may have. */
const MOST_CONNECTIONS = 1024;
/** How often, at most, serve says that a socket turns connections away. */
const WARN_EVERY_MS = 60_000;

/**
 * The most connections one socket keeps open at once: a quarter of the process's descriptors, and
 * no more than {@link MOST_CONNECTIONS}. Past it a new connection is accepted and closed at once.
 * Without a limit, a client that opened connections until the process ran out of descriptors left
 * the listener spinning a CPU (the kernel offers the connection it cannot accept again and again)
 * and neither socket answering. containerd keeps one connection to a snapshotter, dockerd a few
 * to a plugin; the descriptors beyond both sockets' share are left for the databases, the threads
 * and the trees they walk.
 */
export function connectionLimit(): number {
  return Math.max(1, Math.min(MOST_CONNECTIONS, Math.floor(openFileLimit() / 4)));
}

/**
 * Listens with `server` (node:net, or node:http's) on unix socket `socket`, made under umask 177
 * so it is its owner's alone (0600) from the start: containerd and dockerd run as root, and nobody
 * else gets to change snapshots or mount volumes. Made as the umask had it and changed after, it
 * let anyone connect in between, and stay connected; and a chmod by its path after the bind
 * followed whatever was at the path by then.
 */
export async function listenOn(server: NetServer, socket: string, limit: number): Promise<void> {
  server.maxConnections = limit;
  let warnedAt = -Infinity;
  server.on("drop", () => {
    if (performance.now() - warnedAt < WARN_EVERY_MS) return;
    warnedAt = performance.now();
    log.warn(`socket ${socket}: ${limit} connections open, the most it takes: new ones are closed at once`);
  });
  const before = process.umask(0o177);
  try {
    await new Promise<void>((done, fail) => {
      server.once("error", fail);
      server.listen(socket, () => {
        server.off("error", fail);
        done();
      });
    });
  } catch (err) {
    throw new StorError(`socket ${socket}`, describe(err));
  } finally {
    process.umask(before);
  }
}

/**
 * A node:http request listener that answers with fetch-style `handle`: the request's body, up to
 * `maxBodyBytes` (beyond: 413), given as a Request whose signal aborts when the client goes before
 * its answer; a Response whose body fails is no answer at all (the connection is cut), and a
 * handler that throws answers 500 with the error as the protocol's `Err`. Each answer's end is
 * passed to `track`, for shutdown to wait for.
 */
export function fetchListener(handle: (req: Request) => Promise<Response>, maxBodyBytes: number, track: (answered: Promise<void>) => void): RequestListener {
  return (req, res) => track(answer(handle, maxBodyBytes, req, res));
}

async function answer(handle: (req: Request) => Promise<Response>, maxBodyBytes: number, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const gone = new AbortController();
  res.on("close", () => {
    if (!res.writableFinished) gone.abort();
  });
  try {
    const body = await readBody(req, maxBodyBytes);
    if (body === undefined) {
      res.writeHead(413, { Connection: "close" }).end();
      return;
    }
    const hasBody = req.method !== "GET" && req.method !== "HEAD";
    const request = new Request(`http://plugin${req.url ?? "/"}`, { method: req.method, headers: req.headers as Record<string, string>, body: hasBody ? body : undefined, signal: gone.signal });
    let response: Response;
    try {
      response = await handle(request);
    } catch (err) {
      response = Response.json({ Err: describe(err) }, { status: 500 });
    }
    let bytes: Uint8Array;
    try {
      bytes = await response.bytes();
    } catch {
      res.destroy(); // no answer: the client sees the connection end
      return;
    }
    res.writeHead(response.status, { ...Object.fromEntries(response.headers), "Content-Length": String(bytes.length) }).end(bytes);
  } catch {
    res.destroy(); // the client went while its request was read
  }
}

/** The body of `req`, or undefined when it is longer than `most` bytes. */
async function readBody(req: IncomingMessage, most: number): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > most) return undefined;
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}
