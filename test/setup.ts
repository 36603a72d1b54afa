/**
 * Preloaded by `bun test` (bunfig.toml): the run's config cache directory, made once and removed
 * after the last test file. bun test fires no process "exit", so test/helpers.ts cannot remove it.
 */
import { afterAll } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";

if (process.env.STOR_CONFIG_CACHE_DIR === undefined) {
  const cache = mkdtempSync("/tmp/stor-test-config-cache-");
  process.env.STOR_CONFIG_CACHE_DIR = cache;
  afterAll(() => rmSync(cache, { recursive: true, force: true }));
}
