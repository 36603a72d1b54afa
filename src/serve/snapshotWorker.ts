/**
 * The thread side of {@link ../serve/snapshotThreads.ts}: one {@link SnapshotService} of its own
 * (its own database connection and file locks, as another stor process would have), running the
 * calls posted to it one at a time. Loaded by the executable's entry point on a thread.
 */
import { StorError, describe } from "../errors.ts";
import { setLogLevel } from "../log.ts";
import { SNAPSHOTTERS } from "../snapshot/registry.ts";
import { SnapshotService } from "../snapshot/service.ts";
import type { Call, Reply, ThreadInit } from "./snapshotThreads.ts";

declare const self: Worker;

let service: SnapshotService | undefined;

self.onmessage = ({ data }: MessageEvent<ThreadInit | Call | null>) => {
  if (data === null) {
    service?.close();
    process.exit(0); // ends this thread, not the process
  }
  if ("root" in data) {
    setLogLevel(data.logLevel);
    service = new SnapshotService(data.root, SNAPSHOTTERS[data.snapshotter]);
    return;
  }
  let reply: Reply;
  try {
    const fn = service![data.method] as (...args: unknown[]) => unknown;
    reply = { id: data.id, result: fn.apply(service, data.args) };
  } catch (err) {
    const error = err instanceof StorError ? { what: err.what, why: err.why, code: err.code } : { message: describe(err) };
    reply = { id: data.id, error };
  }
  self.postMessage(reply);
};
