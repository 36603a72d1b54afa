/**
 * The client side of Docker's plugin protocol: POST `/<Method>` with a JSON body to a plugin's
 * address (unix socket, TCP, or HTTPS with the spec's TLS files), answered with JSON. As
 * Docker's client, a call that cannot reach the plugin (no socket, nothing listening) is retried
 * with doubling waits (1s, 2s, 4s, …) until the retry window would be passed; unlike it, a call
 * that reached the plugin is never retried, not even one that timed out or was cut off; an
 * answer other than 200 fails with the plugin's `Err`, or its body; an answer larger than
 * {@link MAX_ANSWER} fails unread past it. Every failure is one line naming the plugin, its
 * address and the method.
 */
import { concatBytes } from "../fileName.ts";
import { readFileSync } from "../nodeFs.ts";
import type { PluginSettings } from "../config.ts";
import { StorError, describe } from "../errors.ts";
import { log } from "../log.ts";
import type { PluginSpec } from "./pluginDiscovery.ts";

/** The protocol's media type, sent as the body's type and as what is accepted. */
export const PLUGIN_MIME = "application/vnd.docker.plugins.v1.2+json";
/** How much of an answer's body an error quotes: enough for a message, never a page. */
const MAX_QUOTED = 200;
/**
 * The most of an answer read: a List of tens of thousands of volumes is a few MiB. A plugin that
 * answers without end must not take the host's memory with it.
 */
const MAX_ANSWER = 16 * 2 ** 20;

/** An answer's JSON object. */
export type Answer = Record<string, unknown>;

/** A call's own time limit: `long` for Create and Mount, which may provision or attach storage. */
export type CallTime = "short" | "long";

/** Text from a plugin made fit for one line of an error: control characters escaped, length bounded. */
export function oneLine(text: string): string {
  const flat = text.trim().replace(/[\u0000-\u001f\u007f]/g, (c) => (c === "\n" ? "\\n" : `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`));
  return flat.length > MAX_QUOTED ? `${flat.slice(0, MAX_QUOTED)}…` : flat;
}

/** Thrown for everything a plugin does wrong or cannot do: exit 1, one line naming plugin and address. */
export class PluginError extends StorError {
  override name = "PluginError";
  constructor(spec: PluginSpec, why: string) {
    super(`volume driver "${spec.name}" (${spec.addr})`, why);
  }
}

/** A connection to one plugin. */
export class PluginClient {
  readonly spec: PluginSpec;
  readonly #settings: PluginSettings;
  readonly #url: string;
  readonly #init: { unix?: string; tls?: Record<string, unknown> };

  constructor(spec: PluginSpec, settings: PluginSettings) {
    this.spec = spec;
    this.#settings = settings;
    const addr = spec.addr;
    const scheme = addr.slice(0, addr.indexOf("://")).toLowerCase();
    const rest = addr.slice(scheme.length + 3);
    if (scheme === "unix") {
      // The host is a placeholder, as Docker's: only the socket matters.
      this.#url = "http://plugin";
      this.#init = { unix: rest };
    } else if (scheme === "tcp" || scheme === "http" || scheme === "https") {
      // As Docker: TLS only for an https address; tcp:// is plain HTTP.
      this.#url = `${scheme === "https" ? "https" : "http"}://${rest.replace(/\/+$/, "")}`;
      this.#init = scheme === "https" ? { tls: tlsOptions(spec) } : {};
    } else {
      throw new PluginError(spec, `unsupported address scheme "${scheme}" (unix, tcp, http or https)`);
    }
  }

  /**
   * Calls `method` with `body` and returns the answer's JSON object. An `Err` in a 200 answer is
   * left to the caller, which knows what the call was for.
   */
  async call(method: string, body: object | null, time: CallTime = "short"): Promise<Answer> {
    const started = Date.now();
    const limit = this.#settings.timeoutMs * (time === "long" ? 2 : 1);
    for (let attempt = 0; ; attempt++) {
      let res: Response;
      let text: string | undefined;
      try {
        res = await fetch(`${this.#url}/${method}`, {
          method: "POST",
          headers: { "Content-Type": PLUGIN_MIME, Accept: PLUGIN_MIME },
          body: body === null ? "" : JSON.stringify(body),
          signal: AbortSignal.timeout(limit),
          keepalive: false,
          ...this.#init,
        } as RequestInit);
        text = await bodyText(res);
      } catch (err) {
        const why = transportError(err, limit);
        // Doubling waits while the window lasts. Only a call that never reached the plugin: one
        // it took (timed out, cut off mid-answer) may have been done, and a Mount done twice
        // is a device mounted twice.
        const wait = Math.min(1000 * 2 ** attempt, 30_000);
        if (!unreached(err) || Date.now() - started + wait >= this.#settings.retryMs) throw new PluginError(this.spec, `${method}: ${why}`);
        log.info(`volume driver "${this.spec.name}" (${this.spec.addr}): ${method}: ${why}; retrying in ${wait / 1000}s`);
        await Bun.sleep(wait);
        continue;
      }
      // The plugin answered: too large is its fault, not the connection's, so not retried.
      if (text === undefined) throw new PluginError(this.spec, `${method}: answer too large (more than ${MAX_ANSWER / 2 ** 20} MiB)`);
      return this.#answer(method, res.status, text);
    }
  }

  #answer(method: string, status: number, text: string): Answer {
    let json: unknown;
    try {
      json = text.trim() === "" ? {} : JSON.parse(text);
    } catch {
      json = undefined;
    }
    const err = json && typeof json === "object" && typeof (json as Answer).Err === "string" ? String((json as Answer).Err) : "";
    if (status !== 200) throw new PluginError(this.spec, `${method}: ${err ? oneLine(err) : `HTTP ${status}${text.trim() ? `: ${oneLine(text)}` : ""}`}`);
    if (!json || typeof json !== "object" || Array.isArray(json)) throw new PluginError(this.spec, `${method}: malformed answer: ${oneLine(text) || "(empty)"}`);
    return json as Answer;
  }
}

/** `res`'s body as text (UTF-8, as `res.text()`), or undefined once it passes {@link MAX_ANSWER}: the rest is not read. */
async function bodyText(res: Response): Promise<string | undefined> {
  if (!res.body) return "";
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return new TextDecoder().decode(concatBytes(chunks));
    size += value.length;
    if (size > MAX_ANSWER) {
      await reader.cancel();
      return undefined;
    }
    chunks.push(value);
  }
}

/** What Bun's fetch reports by code, in a few words. */
const TRANSPORT: Record<string, string> = {
  ENOENT: "no socket there",
  ECONNREFUSED: "connection refused",
  ECONNRESET: "connection reset before the answer was complete",
  ConnectionRefused: "connection refused",
  ConnectionClosed: "connection closed before the answer was complete",
};

/** Whether a call failed before the plugin could take it: no socket, or nothing listening on it. */
function unreached(err: unknown): boolean {
  const code = (err as { code?: string })?.code;
  return code === "ENOENT" || code === "ECONNREFUSED" || code === "ConnectionRefused";
}

/** Why a call did not get an answer, in a few words. */
function transportError(err: unknown, limitMs: number): string {
  const e = err as { name?: string; code?: string };
  if (e?.name === "TimeoutError") return `no answer within ${limitMs / 1000}s`;
  return (typeof e?.code === "string" && TRANSPORT[e.code]) || oneLine(describe(err));
}

/** Bun's TLS options from the spec's files; a file that cannot be read is an error naming it. */
function tlsOptions(spec: PluginSpec): Record<string, unknown> {
  const t = spec.tls ?? { insecureSkipVerify: true };
  const read = (file: string | undefined) => {
    if (!file) return undefined;
    try {
      return readFileSync(file, "utf8");
    } catch (err) {
      throw new PluginError(spec, `TLS file: ${describe(err)}`);
    }
  };
  return { ca: read(t.caFile), cert: read(t.certFile), key: read(t.keyFile), rejectUnauthorized: !t.insecureSkipVerify };
}
