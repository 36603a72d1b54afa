/**
 * The thread side of {@link Threads}: services of its own (their own database connections and
 * file locks, as another stor process would have), opened on first use, running the calls posted
 * to it one at a time. Loaded by the executable's entry point on a thread.
 */
import { StorError, describe } from "../errors.ts";
import { setLogLevel } from "../log.ts";
import { openSnapshots, openVolumes } from "../services.ts";
import type { Call, Reply, Services, ThreadInit } from "./threads.ts";

declare const self: Worker;

let init: ThreadInit;
const opened: Partial<Services> = {};
let running: Promise<void> = Promise.resolve();

async function open<S extends keyof Services>(name: S): Promise<Services[S]> {
  if (!opened[name]) {
    opened[name] = (name === "snapshots"
      ? await openSnapshots(init.config, { access: "write", snapshotter: init.snapshotter })
      : await openVolumes(init.config, "write", { askPlugins: false })) as Services[S];
  }
  return opened[name]!;
}

async function run(call: Call): Promise<void> {
  let reply: Reply;
  try {
    const service = await open(call.service);
    const fn = (service as unknown as Record<string, (...args: unknown[]) => unknown>)[call.method]!;
    reply = { id: call.id, result: await fn.apply(service, call.args) };
  } catch (err) {
    const error = err instanceof StorError ? { what: err.what, why: err.why, code: err.code } : { message: describe(err) };
    reply = { id: call.id, error };
  }
  self.postMessage(reply);
}

self.onmessage = ({ data }: MessageEvent<ThreadInit | Call | null>) => {
  if (data === null) {
    // After the call under way, if any: then the databases close and this thread (only) ends.
    void running.then(() => {
      for (const s of Object.values(opened)) s.close();
      process.exit(0);
    });
  } else if ("config" in data) {
    init = data;
    setLogLevel(data.config.logLevel);
  } else {
    running = run(data);
  }
};
