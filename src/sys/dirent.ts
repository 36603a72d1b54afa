/** Directory entries as the kernel returns them, for what Node hides: the d_type field. */
import { read, type Pointer } from "bun:ffi";
import { libc, cstr, errno, SysError } from "./libc.ts";

const DT_UNKNOWN = 0;
const D_TYPE_OFFSET = 18; // struct dirent64: d_ino u64, d_off i64, d_reclen u16, d_type u8

/**
 * True when the filesystem of `dir` fills in d_type: overlayfs needs it of its upper and lower
 * directories. `dir` must contain at least one entry besides `.` and `..`.
 */
export function supportsDType(dir: string): boolean {
  const d = libc.opendir(cstr(dir));
  if (!d) throw new SysError(`opendir ${dir}`, errno());
  try {
    for (let e = libc.readdir64(d); e; e = libc.readdir64(d)) {
      const nameFirst = read.u8(e as Pointer, D_TYPE_OFFSET + 1);
      const nameSecond = read.u8(e as Pointer, D_TYPE_OFFSET + 2);
      const isDots = nameFirst === 0x2e && (nameSecond === 0 || (nameSecond === 0x2e && read.u8(e as Pointer, D_TYPE_OFFSET + 3) === 0));
      if (isDots) continue;
      return read.u8(e as Pointer, D_TYPE_OFFSET) !== DT_UNKNOWN;
    }
    return true;
  } finally {
    libc.closedir(d);
  }
}
