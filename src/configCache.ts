/**
 * The last config file zod validated, with what zod made of it, kept in /run/stor (a tmpfs,
 * emptied at boot). A command whose config file has the same text takes zod's result from
 * there instead of loading zod: loading zod cost a command 0.85 ms of the 1.3 ms that a config
 * file with any key added to every command.
 *
 * The entry is zod's output for exactly that text, from exactly this executable: its stamp is
 * the running executable's (/proc/self/exe) inode, size, mtime and ctime, so a new stor (a new
 * schema) never reads an old entry, even one installed with its mtime kept (`install -p`).
 * Run from sources, the schema can change under the same executable (bun), so there is no
 * cache. The directory and the entry must be root's and writable by root only; anything else,
 * and any failure to read or write, means validating as without a cache.
 */
import type { FileConfig } from "./configSchema.ts";
import { makeDir, readText, removeFile, renamePath, rootOnly, statPath, writeNewFile } from "./sys/pathCalls.ts";
import { RUN_DIR } from "./layout.ts";
import { utf8Bytes } from "./fileName.ts";

/** Where the entry is kept (`STOR_CONFIG_CACHE_DIR` moves it, for tests). */
const dir = () => process.env.STOR_CONFIG_CACHE_DIR ?? RUN_DIR;

interface Entry {
  stamp: string;
  text: string;
  config: FileConfig;
}

/** What identifies this executable's schema, or undefined when stor runs from its sources. */
function executableStamp(): string | undefined {
  if (!import.meta.path.startsWith("/$bunfs/")) return undefined;
  // The file that runs, not whatever is at its path now: an upgrade may have renamed a new one there.
  const st = statPath("/proc/self/exe");
  return st && `${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`;
}

/** zod's result for config text `text`, when the cache has it. */
export function cachedConfig(text: string): FileConfig | undefined {
  try {
    const stamp = executableStamp();
    const path = `${dir()}/config.json`;
    if (stamp === undefined || !rootOnly(dir()) || !rootOnly(path)) return undefined;
    const entry = JSON.parse(readText(path) ?? "null") as Entry | null;
    return entry?.stamp === stamp && entry.text === text ? entry.config : undefined;
  } catch {
    return undefined;
  }
}

/** Keeps `config`, zod's result for `text`, for the next command (replacing the entry there). */
export function cacheConfig(text: string, config: FileConfig): void {
  const stamp = executableStamp();
  if (stamp === undefined || process.getuid?.() !== 0) return;
  const path = `${dir()}/config.json`;
  const temp = `${path}.${process.pid}`;
  try {
    makeDir(dir(), 0o700);
    if (!rootOnly(dir())) return;
    // Written whole under a name of its own, then renamed over the entry: a reader sees the old or the new.
    writeNewFile(temp, utf8Bytes(JSON.stringify({ stamp, text, config } satisfies Entry)), 0o600);
    renamePath(temp, path);
  } catch {
    // A cache: when /run cannot be written, the next command validates again.
    try {
      removeFile(temp);
    } catch {
      // not made
    }
  }
}
