/** Directory entries as the kernel returns them, for what Node hides: the d_type field. */
import { read, type Pointer } from "bun:ffi";
import { libc, cstr, errno, SysError } from "./libc.ts";

const DT_UNKNOWN = 0;
const D_TYPE_OFFSET = 18; // struct dirent64: d_ino u64, d_off i64, d_reclen u16, d_type u8

/**
 * True when the filesystem of `dir` fills in d_type, as overlayfs needs of its layers. The first
 * entry (`.` where the filesystem lists it) answers: a filesystem that records types records them
 * for every entry.
 */
export function supportsDType(dir: string): boolean {
  const d = libc.opendir(cstr(dir));
  if (!d) throw new SysError(`opendir ${dir}`, errno());
  try {
    const e = libc.readdir64(d);
    return e === null || read.u8(e as Pointer, D_TYPE_OFFSET) !== DT_UNKNOWN;
  } finally {
    libc.closedir(d);
  }
}
