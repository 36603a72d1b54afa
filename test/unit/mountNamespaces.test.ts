/** Reading other processes' mount namespaces through /proc, where processes end while they are read. */
import { expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { ofLiveProcess } from "../../src/sys/mountNamespaces.ts";
import { readLink, readText } from "../../src/sys/pathCalls.ts";

test("a process that has ended but is not yet waited for (a zombie) reads as ended, not as an error", async () => {
  // The shell's child ends at once; `exec sleep` never waits for it, so it stays a zombie.
  const holder = Bun.spawn(["sh", "-c", "sleep 0 & exec sleep 30"]);
  try {
    let zombie = "";
    for (let i = 0; i < 500 && zombie === ""; i++) {
      const child = readFileSync(`/proc/${holder.pid}/task/${holder.pid}/children`, "utf8").trim();
      if (child !== "" && readFileSync(`/proc/${child}/stat`, "utf8").split(" ")[2] === "Z") zombie = child;
      else await Bun.sleep(10);
    }
    expect(zombie).not.toBe("");
    // Between reading its namespace and its mountinfo a process may end: both say "ended".
    expect(ofLiveProcess(() => readText(`/proc/${zombie}/mountinfo`))).toBeUndefined();
    expect(ofLiveProcess(() => readLink(`/proc/${zombie}/ns/mnt`))).toBeUndefined();
    // A live one's are read.
    expect(ofLiveProcess(() => readText(`/proc/${process.pid}/mountinfo`))).toContain(" / / ");
  } finally {
    holder.kill();
    await holder.exited;
  }
});
