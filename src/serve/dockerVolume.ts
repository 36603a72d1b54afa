/**
 * Docker's volume plugin protocol over one {@link VolumeService}: POST `/Plugin.Activate` and
 * `/VolumeDriver.*` with JSON bodies, answered with JSON. As the protocol wants, a failed call is
 * HTTP 200 with `{"Err": "..."}`. A plugin-made volume is a volume of stor's default driver, so
 * `stor volume ls` shows it and Docker lists every stor volume; Mount and Unmount take Docker's
 * request ID as the reference, so `stor volume rm` refuses a volume a container uses, and count
 * each call, as dockerd reuses an ID for each use of a container's mount (a `docker cp` while
 * it runs sends a second Mount, then one Unmount).
 *
 * Some calls have no truthful answer, and dockerd reads any `Err` as a fact: it takes a failed
 * Get for "no such volume" (forgetting the volume, and reporting `docker volume rm` a success),
 * and after a lost connection it resends a call with an empty body. Such a call is left
 * unanswered: its connection is closed, which dockerd's plugin client retries for a while and
 * then reports as an error. That is every call about a volume without a readable Name, and a Get
 * that fails for any reason but the volume's absence or an invalid name.
 */
import { ExitCode, InvalidArgumentError, describe, exitCodeOf } from "../errors.ts";
import { failpoint } from "../failpoint.ts";
import { logCall } from "../log.ts";
import { redact } from "../redact.ts";
import type { Volume, VolumeService } from "../volume/service.ts";
import type { Threads } from "./threads.ts";

/** What a plugin answers with (`application/vnd.docker.plugins.v1.2+json`). */
const CONTENT_TYPE = "application/vnd.docker.plugins.v1.2+json";

type Body = Record<string, unknown>;

/** A call that no answer would tell the truth about (its `cause`, a failure); the connection is closed instead. */
class Unanswerable extends Error {}

/** The errors of a Get that are true answers: dockerd takes every answered error for "no such volume". */
const GET_ANSWERS: ReadonlySet<ExitCode> = new Set([ExitCode.notFound, ExitCode.invalid]);

/** Field `key` of `body`, a non-empty string. */
function text(body: Body, key: string): string {
  const v = body[key];
  if (typeof v !== "string" || v === "") throw new InvalidArgumentError(`request field ${key}`, "must be a non-empty string");
  return v;
}

/** Field `key` of `body`, an object of strings (Docker's map[string]string); absent is empty. */
function strings(body: Body, key: string): Record<string, string> {
  const v = body[key];
  if (v === undefined || v === null) return {};
  if (typeof v !== "object" || Array.isArray(v) || Object.values(v).some((x) => typeof x !== "string")) {
    throw new InvalidArgumentError(`request field ${key}`, "must be an object of strings");
  }
  return v as Record<string, string>;
}

const summary = (v: Volume) => ({ Name: v.name, Mountpoint: v.mountpoint, CreatedAt: v.created });

/**
 * Runs calls on one volume name one after another, in the order dockerd sent them. Without it,
 * calls on threads would race for the volume's file lock in no particular order, each thread
 * waiting for it unable to take other calls meanwhile.
 */
class Serial {
  readonly #tails = new Map<string, Promise<unknown>>();

  run<T>(name: string, fn: () => T | Promise<T>): Promise<T> {
    const prev = this.#tails.get(name) ?? Promise.resolve();
    const next = prev.then(fn, fn);
    const tail = next.catch(() => undefined);
    this.#tails.set(name, tail);
    void tail.then(() => {
      if (this.#tails.get(name) === tail) this.#tails.delete(name);
    });
    return next;
  }
}

/** dockerd's Mount and Unmount: each call a use of the mount ID (see VolumeService.mount). */
const COUNTED = { counted: true };

/**
 * The endpoints of the protocol over `volumes`, by path; what mounts or writes runs on `threads`.
 * The body is undefined when it was not a JSON object.
 */
function endpoints(volumes: VolumeService, threads: Threads<"volumes">): Record<string, (body: Body | undefined, signal: AbortSignal) => object | Promise<object>> {
  const serial = new Serial();
  const byName = <T>(body: Body | undefined, fn: (name: string, body: Body) => T | Promise<T>) => {
    const name = body?.Name;
    if (typeof name !== "string" || name === "") throw new Unanswerable("no volume name in the request (dockerd resends a call without its body after a lost connection)");
    return serial.run(name, () => fn(name, body!));
  };
  return {
    "/Plugin.Activate": () => ({ Implements: ["VolumeDriver"] }),
    "/VolumeDriver.Capabilities": () => ({ Capabilities: { Scope: "local" } }),
    "/VolumeDriver.Create": (req, signal) =>
      byName(req, async (name, b) => {
        await threads.runFor(signal, "create", name, { options: strings(b, "Opts") });
        return {};
      }),
    "/VolumeDriver.Remove": (req, signal) =>
      byName(req, async (name) => {
        await threads.runFor(signal, "remove", name);
        return {};
      }),
    "/VolumeDriver.Mount": (req, signal) =>
      byName(req, async (name, b) => {
        const id = text(b, "ID");
        const mountpoint = await threads.runFor(signal, "mount", name, id, COUNTED);
        // dockerd gave the call up (it timed out): it takes the mount for failed and will send no
        // Unmount, so the use it took is given back, or the volume would stay in use for ever.
        if (signal.aborted) await threads.run("unmount", name, id, COUNTED);
        return { Mountpoint: mountpoint };
      }),
    "/VolumeDriver.Unmount": (req, signal) =>
      byName(req, async (name, b) => {
        await threads.runFor(signal, "unmount", name, text(b, "ID"), COUNTED);
        return {};
      }),
    "/VolumeDriver.Path": (req) => byName(req, async (name) => ({ Mountpoint: (await volumes.inspect(name)).mountpoint })),
    "/VolumeDriver.Get": (req) =>
      byName(req, async (name) => {
        try {
          return { Volume: { ...summary(await volumes.inspect(name)), Status: {} } };
        } catch (err) {
          if (GET_ANSWERS.has(exitCodeOf(err))) throw err;
          throw new Unanswerable(describe(err), { cause: err });
        }
      }),
    "/VolumeDriver.List": async () => ({ Volumes: (await volumes.list()).map(summary) }),
  };
}

/** A request body that is a JSON object; undefined for anything else (nothing, `null`, malformed JSON). */
function parseBody(raw: string): Body | undefined {
  let body: unknown;
  try {
    body = JSON.parse(raw);
  } catch {
    return undefined;
  }
  return typeof body === "object" && body !== null && !Array.isArray(body) ? (body as Body) : undefined;
}

const reply = (body: object, status = 200) => new Response(JSON.stringify(body), { status, headers: { "Content-Type": CONTENT_TYPE } });

/**
 * No answer at all: Bun closes the connection when a response body fails before its first byte,
 * before the status line is written, so dockerd's client sees a broken connection. Failed with
 * no reason, which Bun does not print.
 */
const noAnswer = () => new Response(new ReadableStream({ start: (body) => body.error() }));

/** The request handler of the volume plugin over `volumes` and `threads`, fetch-style (see ./listener.ts). */
export function dockerVolumeHandler(volumes: VolumeService, threads: Threads<"volumes">): (req: Request) => Promise<Response> {
  const routes = endpoints(volumes, threads);
  return async (req) => {
    // dockerd sends an empty Host header, which leaves Bun a URL of the path alone.
    const path = new URL(req.url, "http://plugin").pathname;
    const endpoint = routes[path];
    if (!endpoint) return reply({ Err: `${path}: not a volume plugin endpoint` }, 404);
    if (req.method !== "POST") return reply({ Err: `${path}: only POST` }, 405);
    const start = performance.now();
    const call = path.replace(/^\/VolumeDriver\./, "");
    let body: Body | undefined;
    const logged = (err?: unknown, unanswered = false) => logCall(call, { name: typeof body?.Name === "string" ? body.Name : undefined }, start, err, unanswered);
    try {
      body = parseBody(await req.text());
      failpoint(`plugin:${path.slice(1)}`); // read, not yet answered
      const result = await endpoint(body, req.signal);
      logged();
      return reply(result);
    } catch (err) {
      if (err instanceof Unanswerable) {
        // dockerd takes a closed connection for a failure and retries, where an answered error
        // would tell it the volume is gone.
        logged(err, true);
        return noAnswer();
      }
      logged(err);
      // What dockerd is told it shows and logs: secrets masked, as on stor's own stderr.
      return reply({ Err: redact(describe(err)) });
    }
  };
}
