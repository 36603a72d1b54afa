/** The libc handle: each symbol bound on first use and kept as a plain property; nothing else is found on it. */
import { expect, test } from "bun:test";
import { closeSync, openSync } from "node:fs";
import { check, errno, Errno, libc, SysError } from "../../src/sys/libc.ts";
import { writeAllAt } from "../../src/sys/file.ts";
import { statPath } from "../../src/sys/pathCalls.ts";

test("a symbol is bound on first use, then read as the object's own property", () => {
  const access = libc.access;
  expect(typeof access).toBe("function");
  expect(Object.hasOwn(libc, "access")).toBe(true);
  expect(libc.access).toBe(access); // the same function, not bound again
  // And it is libc's access(2): a missing path fails with ENOENT.
  expect(access(new TextEncoder().encode("/nonexistent/stor-libc-test\0"), 0)).toBe(-1);
  expect(errno()).toBe(2);
});

test("a name that is not a libc symbol of stor's reads as undefined, so inspecting the object is safe", () => {
  expect((libc as unknown as Record<string, unknown>).then).toBeUndefined();
  expect((libc as unknown as Record<string, unknown>).getpid).toBeUndefined();
  expect(() => Bun.inspect(libc)).not.toThrow();
});

test("a failure reports the failed call's errno, whatever making its message calls into libc", () => {
  // Making this message fails a libc call of its own (ENOENT), as a message that shows a path may.
  const clobbering = () => {
    expect(statPath("/nonexistent/stor-libc-test")).toBeUndefined();
    expect(errno()).toBe(Errno.ENOENT);
    return "the call";
  };
  const errnoOf = (fn: () => unknown) => {
    try {
      fn();
    } catch (err) {
      return err instanceof SysError ? err.errno : err;
    }
    return "no error";
  };
  expect(errnoOf(() => check(libc.close(-1), clobbering))).toBe(Errno.EBADF);
  const fd = openSync("/dev/null", "r"); // written to: EBADF
  try {
    expect(errnoOf(() => writeAllAt(fd, new Uint8Array(1), 0, clobbering))).toBe(Errno.EBADF);
  } finally {
    closeSync(fd);
  }
});
