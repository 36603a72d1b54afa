/** The libc handle: each symbol bound on first use and kept as a plain property; nothing else is found on it. */
import { expect, test } from "bun:test";
import { errno, libc } from "../../src/sys/libc.ts";

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
