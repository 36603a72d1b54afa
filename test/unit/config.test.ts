/**
 * The configuration's pre-scan (holdsNoSetting, src/config.ts) against ini itself: a text it calls
 * settingless must be one that ini reads as nothing but the known sections, empty. A comment line
 * hiding a setting after a lone CR got past it once; random texts of the characters ini splits,
 * trims and matches on look for the rest of that class.
 */
import { expect, test } from "bun:test";
import { Rng } from "../fuzz/tarModel.ts";
import { parse } from "ini";
import { holdsNoSetting, whitespaceWords } from "../../src/config.ts";

const PIECES = [
  "[snapshot]", "[volume]", "[bogus]", "[ snapshot ]", "[snapshot.x]", "[", "]",
  ";", "#", " c", "root = /x", "default=native", "=", "k",
  " ", "\t", "\u00a0", "\ufeff", "\u2028", "\r", "\n", "\r\n", "\n\n",
];

/** Whether ini's reading of a text sets nothing: only `snapshot` and `volume`, each empty. */
function emptyToIni(text: string): boolean {
  const parsed = parse(text) as Record<string, unknown>;
  for (const [k, v] of Object.entries(parsed)) {
    if (k !== "snapshot" && k !== "volume") return false;
    if (typeof v !== "object" || v === null || Object.keys(v).length > 0) return false;
  }
  return true;
}

test("every text the pre-scan calls settingless, ini reads as the known sections, empty", () => {
  const rng = new Rng(7);
  let settingless = 0;
  for (let i = 0; i < 40_000; i++) {
    let text = "";
    for (let n = Math.floor(rng.next() * 8); n > 0; n--) text += PIECES[Math.floor(rng.next() * PIECES.length)];
    if (!holdsNoSetting(text)) continue;
    settingless++;
    if (!emptyToIni(text)) throw new Error(`holdsNoSetting(${JSON.stringify(text)}), but ini reads ${JSON.stringify(parse(text))}`);
  }
  // The texts reached both answers: a pre-scan that refused everything would pass alone.
  expect(settingless).toBeGreaterThan(1000);
  expect(holdsNoSetting("; stor\n[snapshot]\n[volume]\n")).toBe(true);
  expect(holdsNoSetting("; c\r[bogus]\n")).toBe(false);
});

test("plugin directories are split at whitespace as split(/\\s+/) and filter(Boolean) split them", () => {
  const rng = new Rng(11);
  const chars = ["/a", "b", "-", " ", "\t", "\n", "\r", "\v", "\f", "\u00a0", "\u2028", "\u3000", "\ufeff", "\u200b", "\u1680", "é", "\ud83d\ude00"];
  for (let i = 0; i < 20_000; i++) {
    let text = "";
    for (let n = Math.floor(rng.next() * 10); n > 0; n--) text += chars[Math.floor(rng.next() * chars.length)];
    expect(whitespaceWords(text)).toEqual(text.split(/\s+/).filter(Boolean));
  }
});
