/** mount(8) option words split into mount(2) flags and the filesystem's data (src/sys/mount.ts). */
import { expect, test } from "bun:test";
import { parseOptions } from "../../src/sys/mount.ts";

const MS_RDONLY = 0x1;
const MS_NOSUID = 0x2;

test("flag words become flags, in order (a later word undoes an earlier); the rest is data", () => {
  expect(parseOptions(["ro", "nosuid", "size=1m", "rw", "mode=0755"])).toEqual({ flags: MS_NOSUID, data: ["size=1m", "mode=0755"] });
  expect(parseOptions(["rw", "ro"])).toEqual({ flags: MS_RDONLY, data: [] });
});

test("a word Object has (constructor, toString, __proto__, hasOwnProperty) is data, not a flag nor dropped", () => {
  const inherited = ["constructor", "toString", "__proto__", "hasOwnProperty", "valueOf"];
  expect(parseOptions(["size=1m", ...inherited, "ro"])).toEqual({ flags: MS_RDONLY, data: ["size=1m", ...inherited] });
});
