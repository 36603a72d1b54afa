/** The snapshotters by name, and the choice of one for an invocation. */
import { mkdirSync } from "node:fs";
import { SNAPSHOTTER_NAMES, type Config, type SnapshotterName } from "../config.ts";
import { InvalidArgumentError, PreconditionError } from "../errors.ts";
import { rootError, snapshotsDir } from "../layout.ts";
import { log } from "../log.ts";
import { native } from "./native.ts";
import { overlay } from "./overlay.ts";
import { SnapshotService } from "./service.ts";
import type { Snapshotter } from "./snapshotter.ts";

/** Every snapshotter, by name. */
export const SNAPSHOTTERS: Record<SnapshotterName, Snapshotter> = { overlay, native };

/** Resolves a snapshotter name as the user may type it (`overlayfs` is ctr's name for overlay). */
export function snapshotterName(name: string): SnapshotterName {
  const n = name === "overlayfs" ? "overlay" : name;
  if (!(SNAPSHOTTER_NAMES as readonly string[]).includes(n)) {
    throw new InvalidArgumentError(`snapshotter "${name}"`, `unknown; expected ${SNAPSHOTTER_NAMES.join(" or ")}`);
  }
  return n as SnapshotterName;
}

/**
 * Opens the snapshot service of `requested`, else of the configured default, else of overlay
 * where the kernel and filesystem support it and native otherwise.
 */
export function openSnapshots(config: Config, requested?: string): SnapshotService {
  const chosen = requested ?? config.defaultSnapshotter;
  const base = snapshotsDir(config.root);
  try {
    mkdirSync(base, { recursive: true, mode: 0o711 });
  } catch (err) {
    throw rootError(config.root, err);
  }
  if (chosen === undefined) {
    const why = overlay.unsupported(base);
    if (why) log.info(`snapshotter overlay unusable, using native: ${why}`);
    return new SnapshotService(config.root, why ? native : overlay);
  }
  const s = SNAPSHOTTERS[snapshotterName(chosen)];
  const why = s.unsupported(base);
  if (why) throw new PreconditionError(`snapshotter ${s.name}`, why);
  return new SnapshotService(config.root, s);
}
