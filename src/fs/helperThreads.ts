/**
 * Whether this thread may start helper threads, which run the executable's entry point: a large
 * copy's second thread (./copyThread.ts), a long prune's remover (./removeThread.ts). stor's own
 * main thread allows them; elsewhere (serve's threads, a test runner importing the modules) the
 * work stays on the calling thread.
 */
let allowed = false;

/** Lets work on this thread start helper threads: stor's main thread calls it. */
export function allowHelperThreads(): void {
  allowed = true;
}

/** Whether {@link allowHelperThreads} was called on this thread. */
export function helperThreadsAllowed(): boolean {
  return allowed;
}
