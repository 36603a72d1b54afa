/**
 * Progress of long file-tree work (a native snapshot's copy, the removal of a large tree),
 * reported to the one observer the command line sets while such a command runs. Nothing observes
 * in `stor serve`, and then a report costs one comparison. Through this module, not through the
 * snapshotter and service signatures, so the layers between the tree walk and the terminal need
 * not know of progress at all.
 */

/** Entries (files, directories, links…) and bytes of file data done so far in one operation. */
export interface TreeCounts {
  entries: number;
  bytes: number;
}

let observer: ((p: TreeCounts) => void) | undefined;

/** Sets (or, with undefined, clears) the function told of every tree operation's progress. */
export function observeTreeProgress(fn: ((p: TreeCounts) => void) | undefined): void {
  observer = fn;
}

/**
 * A counter for one operation: call it per entry done (with its bytes), or with what another
 * thread did (`entries` at once); it tells the observer.
 */
export function treeCounter(): (bytes: number, entries?: number) => void {
  const counts: TreeCounts = { entries: 0, bytes: 0 };
  return (bytes, entries = 1) => {
    if (!observer) return;
    counts.entries += entries;
    counts.bytes += bytes;
    observer(counts);
  };
}
