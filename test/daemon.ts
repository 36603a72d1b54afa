/**
 * A daemon of our own, for the tests and the benchmark alike: spawned with its output appended to
 * a log file of its own, waited for until it answers, and stopped with SIGTERM, then SIGKILL after
 * a grace.
 */
import { closeSync, existsSync, openSync, readFileSync } from "node:fs";
import { connect } from "node:net";
import { basename } from "node:path";
import type { Subprocess } from "bun";

/** True when every one of the unix `sockets` accepts a connection. */
export async function connectable(...sockets: string[]): Promise<boolean> {
  const one = (socket: string) =>
    new Promise<boolean>((done) => {
      const c = connect(socket);
      c.once("connect", () => {
        c.destroy();
        done(true);
      });
      c.once("error", () => done(false));
    });
  return (await Promise.all(sockets.map(one))).every(Boolean);
}

/** A daemon process we started, its output in `log`; {@link Daemon.stop} ends it. */
export class Daemon {
  readonly proc: Subprocess;
  /** Its executable's file name, for messages. */
  readonly name: string;
  /** Milliseconds from spawn until {@link Daemon.until} found it ready. */
  startMs = Number.NaN;
  readonly #spawned = performance.now();
  #stopping?: Promise<number | null>;

  constructor(
    cmd: string[],
    readonly log: string,
  ) {
    this.name = basename(cmd[0]!);
    const fd = openSync(log, "a");
    try {
      this.proc = Bun.spawn({ cmd, stdin: "ignore", stdout: fd, stderr: fd });
    } finally {
      closeSync(fd);
    }
  }

  /**
   * Waits until `ready()` holds, asking every `everyMs`. When the daemon exits or `timeoutMs`
   * passes first, stops it and throws with the tail of its log.
   */
  async until(ready: () => boolean | Promise<boolean>, { timeoutMs = 60_000, everyMs = 20 } = {}): Promise<void> {
    const end = Date.now() + timeoutMs;
    while (!(await ready())) {
      const { exitCode, signalCode } = this.proc;
      const why = exitCode !== null || signalCode !== null ? `exited ${exitCode ?? signalCode}` : Date.now() > end ? `not ready after ${timeoutMs} ms` : "";
      if (why) {
        await this.stop();
        throw new Error(`${this.name} ${why}: ${this.tail()}`);
      }
      await Bun.sleep(everyMs);
    }
    this.startMs = performance.now() - this.#spawned;
  }

  /** The last lines of its log. */
  tail(): string {
    return existsSync(this.log) ? readFileSync(this.log, "utf8").trim().split("\n").slice(-8).join("\n") : "";
  }

  /**
   * SIGTERM, then SIGKILL after `graceMs`; resolves with the exit code (null when a signal ended
   * it). A later call waits for the first one's stop.
   */
  stop(graceMs = 15_000): Promise<number | null> {
    this.#stopping ??= (async () => {
      if (this.proc.exitCode === null && this.proc.signalCode === null) {
        this.proc.kill("SIGTERM");
        const timer = setTimeout(() => this.proc.kill("SIGKILL"), graceMs);
        await this.proc.exited;
        clearTimeout(timer);
      }
      return this.proc.exitCode;
    })();
    return this.#stopping;
  }
}
