#!/usr/bin/env bun
/**
 * Entry point of the stor executable, and of its worker threads (`stor serve` starts them from
 * this same entry, which is found inside the compiled binary as from the sources). No top-level
 * await: the build compiles to bytecode.
 */
import { main } from "./cli/main.ts";
import { databasesReleased } from "./db.ts";
import { allowHelperThreads } from "./fs/helperThreads.ts";
import { exitNow } from "./sys/libc.ts";
import { useNormalJit } from "./jitPolicy.ts";

if (Bun.isMainThread) {
  allowHelperThreads();
  // Exit at once: output is written synchronously and every command (serve too) has finished its
  // work when main resolves, so waiting for the runtime to tear itself down only costs time (~1 ms).
  // A command that released a database connection ends without closing it (see src/db.ts). A run
  // recording the bytecode's layout (src/build.ts) writes its profile in that teardown, so has it.
  void main(process.argv.slice(2)).then((code) => {
    if (databasesReleased() && process.env.BUN_BYTECODE_ORDER_OUT === undefined) exitNow(code);
    process.exit(code);
  });
} else {
  // Helper threads exist only for bulk work, serve's for as long as it runs.
  useNormalJit();
  // A thread of this executable: a large copy's second or read-ahead thread, a prune's remover, or one of serve's.
  const { workerData } = require("node:worker_threads") as typeof import("node:worker_threads");
  if (workerData?.copyThread) (require("./fs/copyThread.ts") as typeof import("./fs/copyThread.ts")).runCopyThread(workerData.copyThread);
  else if (workerData?.prefetchThread) (require("./fs/prefetchThread.ts") as typeof import("./fs/prefetchThread.ts")).runPrefetchThread(workerData.prefetchThread);
  else if (workerData?.removeThread) (require("./fs/removeThread.ts") as typeof import("./fs/removeThread.ts")).runRemoveThread();
  else void import("./serve/thread.ts");
}
