/**
 * What renameat2(2) answers here with and without RENAME_NOREPLACE, asked of a path that does not
 * exist: ENOENT (2) when the call is let through, EINVAL (22) when the flag is refused (see
 * ./withoutNoReplace.ts). Run as a script, it prints both: `FLAG NO_FLAG`.
 */
import { dlopen, FFIType, ptr, read } from "bun:ffi";

const { symbols: libc } = dlopen("libc.so.6", {
  renameat2: { args: [FFIType.i32, FFIType.ptr, FFIType.i32, FFIType.ptr, FFIType.u32], returns: FFIType.i32 },
  __errno_location: { args: [], returns: FFIType.ptr },
});

export const RENAME_NOREPLACE = 1;
const AT_FDCWD = -100;
const NOTHING = Buffer.from("/nonexistent/stor-rename-probe\0");

/** The errno of a rename of nothing with `flags` (0 should it succeed). */
export function renameErrno(flags: number): number {
  return libc.renameat2(AT_FDCWD, ptr(NOTHING), AT_FDCWD, ptr(NOTHING), flags) === 0 ? 0 : read.i32(libc.__errno_location()!, 0);
}

if (import.meta.main) process.stdout.write(`${renameErrno(RENAME_NOREPLACE)} ${renameErrno(0)}`);
