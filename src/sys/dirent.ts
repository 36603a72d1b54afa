/**
 * Directory entries as the kernel returns them: their names and d_type, read with getdents64 in
 * one call per buffer, without node:fs (see src/nodeFs.ts).
 */
import { decodeName } from "../fileName.ts";
import { O } from "./openat2.ts";
import { libc, check, cstr, retry } from "./libc.ts";
import { statPath } from "./pathCalls.ts";

const DT_UNKNOWN = 0;
const DT_DIR = 4;
const D_TYPE_OFFSET = 18; // struct dirent64: d_ino u64, d_off i64, d_reclen u16, d_type u8, d_name
const D_RECLEN_OFFSET = 16;
const D_NAME_OFFSET = 19;

/** An entry of a directory: its name, and whether it is a directory (DT_UNKNOWN asks lstat). */
export interface DirEntry {
  name: string;
  isDirectory: boolean;
}

/** getdents64's buffer, one for the thread: every entry is copied out before listDir returns. */
let direntBuffer: Uint8Array | undefined;

/**
 * The entries of directory `path`, without `.` and `..`, in the kernel's order. A filesystem that
 * leaves d_type unknown is asked by lstat. Unless `follow`, a symlink at `path` is refused (ELOOP):
 * a tree walk that found a directory there lists that directory or nothing, never where a link
 * put in its place meanwhile leads. Failures throw (ENOENT for a missing `path`).
 */
export function listDir(path: string | Uint8Array, follow = true): DirEntry[] {
  const dir = typeof path === "string" ? path : decodeName(path);
  const fd = check(libc.open(cstr(path), O.RDONLY | O.DIRECTORY | O.CLOEXEC | (follow ? 0 : O.NOFOLLOW), 0), () => `open ${dir}`);
  const entries: DirEntry[] = [];
  try {
    const buf = (direntBuffer ??= new Uint8Array(64 * 1024));
    const view = new DataView(buf.buffer);
    for (;;) {
      const n = check(retry(() => Number(libc.getdents64(fd, buf, buf.length))), () => `read directory ${dir}`);
      if (n === 0) return entries;
      for (let at = 0; at < n; at += view.getUint16(at + D_RECLEN_OFFSET, true)) {
        const nameBytes = buf.subarray(at + D_NAME_OFFSET, buf.indexOf(0, at + D_NAME_OFFSET));
        const name = decodeName(nameBytes);
        if (name === "." || name === "..") continue;
        const type = buf[at + D_TYPE_OFFSET];
        entries.push({ name, isDirectory: type === DT_UNKNOWN ? (statPath(`${dir}/${name}`, false)?.isDirectory ?? false) : type === DT_DIR });
      }
    }
  } finally {
    libc.close(fd);
  }
}

/**
 * True when the filesystem of `dir` fills in d_type, as overlayfs needs of its layers. The first
 * entry (`.` where the filesystem lists it) answers: a filesystem that records types records them
 * for every entry.
 */
export function supportsDType(dir: string): boolean {
  const fd = check(libc.open(cstr(dir), O.RDONLY | O.DIRECTORY | O.CLOEXEC, 0), () => `open ${dir}`);
  try {
    // Room for one entry of the longest name, not a listing: a directory of 10,000 would fill 64 KiB.
    const buf = new Uint8Array(512);
    const n = check(retry(() => Number(libc.getdents64(fd, buf, buf.length))), () => `read directory ${dir}`);
    return n === 0 || buf[D_TYPE_OFFSET] !== DT_UNKNOWN;
  } finally {
    libc.close(fd);
  }
}
