/**
 * The thread side of {@link Threads}: a service of its own (its own database connection and file
 * locks, as another stor process would have), opened on first use, running the calls posted to it
 * one at a time. Loaded by the executable's entry point on a thread.
 */
import { StorError, describe } from "../errors.ts";
import { setLogLevel } from "../log.ts";
import { openSnapshots, openVolumes } from "../services.ts";
import type { Call, Reply, Services, ThreadStart } from "./threads.ts";

declare const self: Worker;

let start: ThreadStart;
let opened: Services[keyof Services] | undefined;
let running: Promise<void> = Promise.resolve();

async function open(): Promise<Services[keyof Services]> {
  opened ??= start.service === "snapshots"
    ? await openSnapshots(start.config, { access: "write", snapshotter: start.snapshotter, forContainerd: true })
    : await openVolumes(start.config, "write", { askPlugins: false });
  return opened;
}

async function run(call: Call): Promise<void> {
  let reply: Reply;
  try {
    const service = await open();
    const fn = (service as unknown as Record<string, (...args: unknown[]) => unknown>)[call.method]!;
    reply = { id: call.id, result: await fn.apply(service, call.args) };
  } catch (err) {
    const error = err instanceof StorError ? { what: err.what, why: err.why, code: err.code } : { message: describe(err) };
    reply = { id: call.id, error };
  }
  self.postMessage(reply);
}

self.onmessage = ({ data }: MessageEvent<ThreadStart | Call | null>) => {
  if (data === null) {
    // After the call under way, if any: then the database closes and this thread (only) ends.
    void running.then(() => {
      opened?.close();
      process.exit(0);
    });
  } else if ("config" in data) {
    start = data;
    setLogLevel(data.config.logLevel);
  } else {
    running = run(data);
  }
};
