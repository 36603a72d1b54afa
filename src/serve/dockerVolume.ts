/**
 * Docker's volume plugin protocol over one {@link VolumeService}: POST `/Plugin.Activate` and
 * `/VolumeDriver.*` with JSON bodies, answered with JSON. As the protocol wants, a failed call is
 * HTTP 200 with `{"Err": "..."}`. A plugin-made volume is a volume of stor's default driver, so
 * `stor volume ls` shows it and Docker lists every stor volume; Mount and Unmount take Docker's
 * request ID as the reference, so `stor volume rm` refuses a volume a container uses.
 */
import { ExitCode, InvalidArgumentError, describe, exitCodeOf } from "../errors.ts";
import { log } from "../log.ts";
import type { Volume, VolumeService } from "../volume/service.ts";
import type { Threads } from "./threads.ts";

/** What a plugin answers with (`application/vnd.docker.plugins.v1.2+json`). */
const CONTENT_TYPE = "application/vnd.docker.plugins.v1.2+json";

type Body = Record<string, unknown>;

/** Field `key` of `body`, a string (non-empty unless `optional`). */
function text(body: Body, key: string, optional = false): string {
  const v = body[key];
  if (optional && (v === undefined || v === null)) return "";
  if (typeof v !== "string" || (!optional && v === "")) throw new InvalidArgumentError(`request field ${key}`, "must be a non-empty string");
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

/** The endpoints of the protocol over `volumes`, by path; what mounts or writes runs on `threads`. */
function endpoints(volumes: VolumeService, threads: Threads): Record<string, (body: Body) => object | Promise<object>> {
  const serial = new Serial();
  const byName = <T>(body: Body, fn: (name: string) => T | Promise<T>) => {
    const name = text(body, "Name");
    return serial.run(name, () => fn(name));
  };
  return {
    "/Plugin.Activate": () => ({ Implements: ["VolumeDriver"] }),
    "/VolumeDriver.Capabilities": () => ({ Capabilities: { Scope: "local" } }),
    "/VolumeDriver.Create": (b) =>
      byName(b, async (name) => {
        await threads.run("volumes", "create", name, { options: strings(b, "Opts") });
        return {};
      }),
    "/VolumeDriver.Remove": (b) =>
      byName(b, async (name) => {
        await threads.run("volumes", "remove", name);
        return {};
      }),
    "/VolumeDriver.Mount": (b) => byName(b, async (name) => ({ Mountpoint: await threads.run("volumes", "mount", name, text(b, "ID")) })),
    "/VolumeDriver.Unmount": (b) =>
      byName(b, async (name) => {
        await threads.run("volumes", "unmount", name, text(b, "ID"));
        return {};
      }),
    "/VolumeDriver.Path": (b) => byName(b, async (name) => ({ Mountpoint: (await volumes.inspect(name)).mountpoint })),
    "/VolumeDriver.Get": (b) => byName(b, async (name) => ({ Volume: { ...summary(await volumes.inspect(name)), Status: {} } })),
    "/VolumeDriver.List": async () => ({ Volumes: (await volumes.list()).map(summary) }),
  };
}

/** A request body: a JSON object, or nothing (`null` or empty, as Docker sends to calls without arguments). */
function parseBody(raw: string): Body {
  let body: unknown;
  try {
    body = raw.trim() === "" ? null : JSON.parse(raw);
  } catch (err) {
    throw new InvalidArgumentError("request", `malformed JSON: ${(err as Error).message}`);
  }
  if (body === null) return {};
  if (typeof body !== "object" || Array.isArray(body)) throw new InvalidArgumentError("request", "not a JSON object");
  return body as Body;
}

const reply = (body: object, status = 200) => new Response(JSON.stringify(body), { status, headers: { "Content-Type": CONTENT_TYPE } });

/** The request handler of the volume plugin over `volumes` and `threads`, for Bun.serve. */
export function dockerVolumeHandler(volumes: VolumeService, threads: Threads): (req: Request) => Promise<Response> {
  const routes = endpoints(volumes, threads);
  return async (req) => {
    // dockerd sends an empty Host header, which leaves Bun a URL of the path alone.
    const path = new URL(req.url, "http://plugin").pathname;
    const endpoint = routes[path];
    if (!endpoint) return reply({ Err: `${path}: not a volume plugin endpoint` }, 404);
    if (req.method !== "POST") return reply({ Err: `${path}: only POST` }, 405);
    try {
      const result = await endpoint(parseBody(await req.text()));
      log.debug(`${path}: ok`);
      return reply(result);
    } catch (err) {
      const why = describe(err);
      if (exitCodeOf(err) === ExitCode.internal) log.error(`${path}: ${why}`);
      else log.debug(`${path}: ${why}`);
      return reply({ Err: why });
    }
  };
}
