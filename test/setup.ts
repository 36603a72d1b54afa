/** Preloaded by `bun test` (bunfig.toml): the run's config cache directory, removed after the last test file. */
import { afterAll } from "bun:test";
import { rmSync } from "node:fs";
import { ownConfigCache } from "./ownConfigCache.ts";

const cache = ownConfigCache();
if (cache !== undefined) afterAll(() => rmSync(cache, { recursive: true, force: true }));
