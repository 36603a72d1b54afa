/**
 * The snapshotters, by name, in order of preference: without `-s` or `[snapshot] default`, a
 * command uses the first that the kernel and the filesystem under the root support (overlay,
 * then btrfs on a btrfs root, then native, which runs anywhere). A new snapshotter is its file
 * and its line here.
 */
import { InvalidArgumentError } from "../errors.ts";
import { btrfs } from "./btrfs.ts";
import { native } from "./native.ts";
import { overlay } from "./overlay.ts";
import type { Snapshotter } from "./snapshotter.ts";

/** Every snapshotter, by name, most preferred first. */
export const SNAPSHOTTERS = { overlay, btrfs, native } as const satisfies Record<string, Snapshotter>;

export type SnapshotterName = keyof typeof SNAPSHOTTERS;

export const SNAPSHOTTER_NAMES = Object.keys(SNAPSHOTTERS) as [SnapshotterName, ...SnapshotterName[]];

/** Resolves a snapshotter name as the user may type it (`overlayfs` is ctr's name for overlay). */
export function snapshotterName(name: string): SnapshotterName {
  const n = name === "overlayfs" ? "overlay" : name;
  if (!Object.hasOwn(SNAPSHOTTERS, n)) {
    throw new InvalidArgumentError(`snapshotter "${name}"`, `unknown; expected ${SNAPSHOTTER_NAMES.join(", ")}`);
  }
  return n as SnapshotterName;
}
