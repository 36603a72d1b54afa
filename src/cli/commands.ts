/**
 * stor's top-level words and the module that defines each. Every group loads only when its word is
 * used: in a compiled stor, what a command costs to start is mostly the code it loads (each
 * function linked, each builtin module and JS-implemented builtin compiled on first use), while
 * a chunk more costs little (about 0.02 ms). Loading the snapshot group alone took `snapshot info`
 * 0.15 ms and `volume inspect` 0.4 ms less than bundling the everyday groups with the entry point.
 * Help, the man page, the reference page and completion load all.
 */
import type { GroupFactory } from "./command.ts";

/** A top-level word: a group (`snapshot …`) or commands of their own (`mount`, `unmount`). */
export interface TopLevel {
  /** The words that select it, the first being its name. */
  words: readonly string[];
  /** A group takes a command after its word; otherwise the word is the command. */
  group: boolean;
  load(): Promise<GroupFactory>;
}

export const TOP_LEVEL: readonly TopLevel[] = [
  { words: ["snapshot", "snapshots"], group: true, load: async () => (await import("./snapshot.ts")).snapshotGroup },
  { words: ["mount", "unmount", "umount"], group: false, load: async () => (await import("./mount.ts")).mountGroup },
  { words: ["unpack"], group: false, load: async () => (await import("./unpack.ts")).unpackGroup },
  { words: ["volume", "volumes"], group: true, load: async () => (await import("./volume.ts")).volumeGroup },
  { words: ["df"], group: false, load: async () => (await import("./df.ts")).dfGroup },
  { words: ["restore"], group: false, load: async () => (await import("./restore.ts")).restoreGroup },
  { words: ["serve"], group: false, load: async () => (await import("./serve.ts")).serveGroup },
  { words: ["completion", "man"], group: false, load: async () => (await import("./docs.ts")).docsGroup },
];

/** The entry `word` selects, if any. */
export function topLevel(word: string): TopLevel | undefined {
  for (const t of TOP_LEVEL) if (t.words.includes(word)) return t;
  return undefined;
}
