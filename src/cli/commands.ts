/**
 * stor's top-level words and the module that defines each. A module is loaded only when its
 * word is used: start-up time is most of a short command's cost. Help, the man page, the
 * reference page and completion load them all.
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
  return TOP_LEVEL.find((t) => t.words.includes(word));
}
