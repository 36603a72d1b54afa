/**
 * Copies a directory tree with everything a root filesystem needs: file types (regular,
 * directory, symlink, device, fifo, socket), hardlinks as hardlinks, owner, mode with
 * setuid/setgid/sticky, nanosecond timestamps and extended attributes. File data goes through a
 * reflink where the filesystem can share extents, else copy_file_range. Paths go as bytes, so
 * names and link targets that are not UTF-8 are copied as they are.
 */
import { closeSync, constants, fchmodSync, fchownSync, linkSync, lstatSync, mkdirSync, openSync, readdirSync, readlinkSync, symlinkSync, chmodSync, type BigIntStats } from "node:fs";
import { childPath } from "../fileName.ts";
import { copyData, copyXattrs, lchown, mknod, setTimes, type CopyState } from "../sys/file.ts";
import type { SysError } from "../sys/libc.ts";
import { treeCounter } from "./treeProgress.ts";

const { O_RDONLY, O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW, S_IFMT, S_IFREG, S_IFDIR, S_IFLNK } = constants;

/** Copies the contents and metadata of directory `src` onto the existing empty directory `dst`. */
export function copyTree(src: string, dst: string): void {
  const job: Job = { state: { reflink: true }, links: new Map(), count: treeCounter() };
  const [s, d] = [Buffer.from(src), Buffer.from(dst)];
  const st = lstatSync(s, { bigint: true });
  copyChildren(s, d, job);
  finish(s, d, st);
}

interface Job {
  state: CopyState;
  /** First copy of each multiply-linked inode, by `dev:ino`. */
  links: Map<string, Buffer>;
  /** Told of each entry copied, with its bytes of data. */
  count: (bytes: number) => void;
}

function copyChildren(srcDir: Buffer, dstDir: Buffer, job: Job): void {
  for (const name of readdirSync(srcDir, { encoding: "buffer" })) {
    const s = childPath(srcDir, name);
    const d = childPath(dstDir, name);
    const st = lstatSync(s, { bigint: true });
    const type = Number(st.mode) & S_IFMT;
    job.count(type === S_IFREG ? Number(st.size) : 0);
    if (type !== S_IFDIR && st.nlink > 1n) {
      const id = `${st.dev}:${st.ino}`;
      const first = job.links.get(id);
      if (first !== undefined) {
        linkSync(first, d);
        continue;
      }
      job.links.set(id, d);
    }
    switch (type) {
      case S_IFDIR:
        mkdirSync(d, 0o700);
        copyChildren(s, d, job);
        break;
      case S_IFREG:
        copyFile(s, d, st, job.state);
        continue; // owner and mode were set through the open descriptor
      case S_IFLNK:
        symlinkSync(readlinkSync(s, { encoding: "buffer" }), d);
        break;
      default: // character and block devices, fifos, sockets
        mknod(d, Number(st.mode), st.rdev);
    }
    finish(s, d, st);
  }
}

function copyFile(s: Buffer, d: Buffer, st: BigIntStats, state: CopyState): void {
  // Everything through the two descriptors: no path is looked up again.
  const src = openSync(s, O_RDONLY | O_NOFOLLOW);
  try {
    const dst = openSync(d, O_WRONLY | O_CREAT | O_EXCL, 0o600);
    try {
      copyData(src, dst, Number(st.size), Number(st.blocks) * 512, state, () => `copy ${s}`);
      fchownSync(dst, Number(st.uid), Number(st.gid));
      fchmodSync(dst, Number(st.mode) & 0o7777);
      copyXattrs(src, dst, xattrError); // after chown, which clears security.capability
      setTimes(dst, st.atimeNs, st.mtimeNs);
    } finally {
      closeSync(dst);
    }
  } finally {
    closeSync(src);
  }
}

/** Owner, mode, xattrs and times, in the order that keeps each (times last, after the contents). */
function finish(s: Buffer, d: Buffer, st: BigIntStats): void {
  lchown(d, Number(st.uid), Number(st.gid));
  if ((Number(st.mode) & S_IFMT) !== S_IFLNK) chmodSync(d, Number(st.mode) & 0o7777);
  copyXattrs(s, d, xattrError);
  setTimes(d, st.atimeNs, st.mtimeNs);
}

function xattrError(_name: string, err: SysError): void {
  // A target filesystem without that namespace (EOPNOTSUPP) cannot hold it; anything else is a failure.
  if (err.errno !== 95) throw err;
}

