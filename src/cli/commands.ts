/**
 * stor's top-level words and the module that defines each. The everyday groups (snapshot,
 * volume, mount) are bundled with the entry point: a compiled module costs far more to load than
 * its size (one chunk more cost `ls` about 0.1 ms, fewer chunks took 0.9 ms off every command),
 * so they share one. The rest, heavy or rare (serve's gRPC, unpack, df, restore, the docs), load
 * only when their word is used. Help, the man page, the reference page and completion load all.
 */
import type { GroupFactory } from "./command.ts";
import { snapshotGroup } from "./snapshot.ts";
import { volumeGroup } from "./volume.ts";
import { mountGroup } from "./mount.ts";

/** A top-level word: a group (`snapshot …`) or commands of their own (`mount`, `unmount`). */
export interface TopLevel {
  /** The words that select it, the first being its name. */
  words: readonly string[];
  /** A group takes a command after its word; otherwise the word is the command. */
  group: boolean;
  load(): Promise<GroupFactory>;
}

export const TOP_LEVEL: readonly TopLevel[] = [
  { words: ["snapshot", "snapshots"], group: true, load: async () => snapshotGroup },
  { words: ["mount", "unmount", "umount"], group: false, load: async () => mountGroup },
  { words: ["unpack"], group: false, load: async () => (await import("./unpack.ts")).unpackGroup },
  { words: ["volume", "volumes"], group: true, load: async () => volumeGroup },
  { words: ["df"], group: false, load: async () => (await import("./df.ts")).dfGroup },
  { words: ["restore"], group: false, load: async () => (await import("./restore.ts")).restoreGroup },
  { words: ["serve"], group: false, load: async () => (await import("./serve.ts")).serveGroup },
  { words: ["completion", "man"], group: false, load: async () => (await import("./docs.ts")).docsGroup },
];

/** The entry `word` selects, if any. */
export function topLevel(word: string): TopLevel | undefined {
  return TOP_LEVEL.find((t) => t.words.includes(word));
}
