/** docker volume's filters (src/volume/filters.ts), without a store. */
import { describe, expect, test } from "bun:test";
import { LIST_FILTERS, PRUNE_FILTERS, matcher, parseFilters } from "../../src/volume/filters.ts";
import type { VolumeRecord } from "../../src/volume/volumeStore.ts";
import { keyValues } from "../../src/cli/command.ts";

const volume = (name: string, labels: Record<string, string> = {}, refs: string[] = []): VolumeRecord => ({
  name,
  id: 1,
  driver: "local",
  created: "2026-01-01T00:00:00Z",
  labels,
  options: {},
  refs,
  active: 0,
});
const VOLUMES = [volume("web-data", { team: "web" }), volume("db", { team: "db", keep: "" }, ["c1"]), volume("cache")];
const pick = (words: string[], accepted: readonly string[] = LIST_FILTERS) => VOLUMES.filter(matcher(parseFilters(words, accepted))).map((v) => v.name);

describe("volume filters", () => {
  test("name matches a substring pattern, driver exactly, several values of one key any of them", () => {
    expect(pick(["name=web"])).toEqual(["web-data"]);
    expect(pick(["name=^d"])).toEqual(["db"]);
    expect(pick(["driver=local"])).toHaveLength(3);
    expect(pick(["name=web", "name=cache"])).toEqual(["web-data", "cache"]);
  });

  test("label=K and label=K=V; label! excludes; dangling is about references", () => {
    expect(pick(["label=team"])).toEqual(["web-data", "db"]);
    expect(pick(["label=team=db"])).toEqual(["db"]);
    expect(pick(["label!=team"], PRUNE_FILTERS)).toEqual(["cache"]);
    expect(pick(["dangling=true"])).toEqual(["web-data", "cache"]);
    expect(pick(["dangling=false"])).toEqual(["db"]);
  });

  test.each([
    [["bogus=1"], 'filter "bogus": unknown (expected name, driver, label, dangling)'],
    [["noequals"], 'filter "noequals": bad format (expected name=value)'],
    [["dangling=maybe"], 'filter "dangling=maybe": expected true or false'],
  ])("%p is refused", (words, message) => {
    expect(() => pick(words)).toThrow(message);
  });
});

describe("label names are the volume's own: none inherited from Object, and __proto__ a name like any other", () => {
  // Labels as the command line reads them (keyValues) and as the store returns them.
  const labelled = volume("labelled", keyValues(["__proto__=p", "team=web"], "label", ""));
  const plain = volume("plain", {});
  const all = [labelled, plain];
  const names = (words: string[], accepted: readonly string[] = LIST_FILTERS) => all.filter(matcher(parseFilters(words, accepted))).map((v) => v.name);

  test.each(["toString", "constructor", "hasOwnProperty", "valueOf", "isPrototypeOf"])("label=%s matches no volume, and label! of it excludes none", (name) => {
    expect(names([`label=${name}`])).toEqual([]);
    expect(names([`label!=${name}`], PRUNE_FILTERS)).toEqual(["labelled", "plain"]);
  });

  test("a label named __proto__ is kept and matched", () => {
    expect(Object.keys(labelled.labels)).toEqual(["__proto__", "team"]);
    expect(names(["label=__proto__"])).toEqual(["labelled"]);
    expect(names(["label=__proto__=p"])).toEqual(["labelled"]);
    expect(names(["label!=__proto__"], PRUNE_FILTERS)).toEqual(["plain"]);
  });
});
