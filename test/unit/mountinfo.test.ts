/**
 * The mountinfo parser's escapes (src/sys/mountinfo.ts), with their fast paths for text that has
 * no backslash, held to the plain RegExp definitions on every short string over an alphabet of
 * the characters that matter.
 */
import { expect, test } from "bun:test";
import { overlayLayers, parseMountInfo, unescapeOctal } from "../../src/sys/mountinfo.ts";

/** The definitions as RegExps alone, the reference. */
const reference = {
  unescapeOctal: (s: string) => s.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8))),
  overlayLayers(superOptions: string): string[] {
    const out: string[] = [];
    for (const option of superOptions.split(",")) {
      const m = /^(lowerdir\+?|upperdir|workdir|datadir\+)=(.*)$/.exec(option);
      if (!m) continue;
      const values = m[1] === "lowerdir" ? m[2]!.split(/(?<!\\):/) : [m[2]!];
      out.push(...values.map((v) => reference.unescapeOctal(v).replace(/\\(.)/g, "$1")));
    }
    return out;
  },
};

/** Every string of up to `n` characters from `alphabet`. */
function strings(alphabet: readonly string[], n: number): string[] {
  let level = [""];
  const all = [""];
  for (let i = 0; i < n; i++) {
    level = level.flatMap((s) => alphabet.map((c) => s + c));
    all.push(...level);
  }
  return all;
}

test("unescapeOctal undoes \\ooo as the RegExp did, on 100,000+ strings", () => {
  const all = strings(["\\", "0", "1", "4", "7", "8", "a"], 6);
  expect(all.length).toBeGreaterThan(100_000);
  for (const s of all) if (unescapeOctal(s) !== reference.unescapeOctal(s)) expect([s, unescapeOctal(s)]).toEqual([s, reference.unescapeOctal(s)]);
  expect(unescapeOctal("/mnt/a\\040b\\134c")).toBe("/mnt/a b\\c");
});

test("overlayLayers reads the layers as the RegExps did", () => {
  const values = strings(["\\", ":", "a", "1", "\n", "\u2028"], 4);
  const keys = ["lowerdir", "lowerdir+", "upperdir", "workdir", "datadir+", "lowerdirx", "index", "=", ""];
  let checked = 0;
  for (const k of keys) {
    for (const v of values) {
      const options = `rw,${k}=${v},xino=off`;
      expect([options, overlayLayers(options)]).toEqual([options, reference.overlayLayers(options)]);
      checked++;
    }
  }
  expect(checked).toBeGreaterThan(10_000);
  expect(overlayLayers("rw,lowerdir=/l/2:/l/1\\:x,upperdir=/u\\040d,workdir=/w")).toEqual(["/l/2", "/l/1:x", "/u d", "/w"]);
});

test("a mountinfo line with escaped spaces parses to its paths", () => {
  const [m] = parseMountInfo("36 35 98:0 /mnt\\040one /a\\040b rw,noatime master:1 - ext3 /dev/root rw,errors=continue\n");
  expect(m).toMatchObject({ id: 36, parent: 35, device: "98:0", root: "/mnt one", mountPoint: "/a b", fsType: "ext3", source: "/dev/root" });
});
