/**
 * Deletions in the two forms stor meets: OCI layer whiteouts (`.wh.NAME` files and the opaque
 * marker `.wh..wh..opq`) and overlayfs upper directories (a 0/0 character device for a deleted
 * name, the `trusted.overlay.opaque` xattr on a directory that hides everything below it).
 */
import type { BigIntStats } from "../nodeFs.ts";
import { S } from "../sys/pathCalls.ts";

export const WHITEOUT_PREFIX = ".wh.";
/** Names with this prefix are whiteout metadata (AUFS's `.wh..wh.plnk` …), never files. */
export const WHITEOUT_META_PREFIX = ".wh..wh.";
export const OPAQUE_MARKER = ".wh..wh..opq";

export const OVERLAY_OPAQUE_XATTR = "trusted.overlay.opaque";

/**
 * True for overlayfs's own bookkeeping (opaque, redirect, origin …): `trusted.overlay.*`, and
 * `user.overlay.*`, which a `userxattr` mount reads instead. A layer carrying them could forge
 * the merged view, so they are neither applied nor written into layers.
 */
export function isOverlayXattr(key: string): boolean {
  return key.startsWith("trusted.overlay.") || key.startsWith("user.overlay.");
}

/** True for overlayfs's whiteout: a character device numbered 0/0. */
export function isOverlayWhiteout(st: BigIntStats): boolean {
  return (Number(st.mode) & S.IFMT) === S.IFCHR && st.rdev === 0n;
}
