/**
 * Tests and the bench never write the host's config cache (src/configCache.ts, /run/stor): each
 * run gets a directory of its own, made here. Who made it removes it: test/setup.ts after the last
 * test file (bun test fires no process "exit"), test/helpers.ts at exit for the bench's scripts.
 */
import { mkdtempSync } from "node:fs";

/** Points STOR_CONFIG_CACHE_DIR at a new directory and returns it; undefined when it is set already. */
export function ownConfigCache(): string | undefined {
  if (process.env.STOR_CONFIG_CACHE_DIR !== undefined) return undefined;
  const dir = mkdtempSync("/tmp/stor-test-config-cache-");
  process.env.STOR_CONFIG_CACHE_DIR = dir;
  return dir;
}
