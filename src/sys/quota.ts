/**
 * Project quotas, as XFS has them (ext4 with the `project` feature answers the same calls):
 * a directory's project id through the FS_IOC_FSGETXATTR/FS_IOC_FSSETXATTR ioctls, and the
 * project's block limit through quotactl_fd(2), which needs no device node.
 */
import { ptr } from "bun:ffi";
import { libc, check, Errno, failed } from "./libc.ts";
import { withDir } from "./dirent.ts";


// struct fsxattr: fsx_xflags u32, fsx_extsize u32, fsx_nextents u32, fsx_projid u32, pad[12].
const FSXATTR_SIZE = 28;
const FS_IOC_FSGETXATTR = 0x801c581f; // _IOR('X', 31, struct fsxattr)
const FS_IOC_FSSETXATTR = 0x401c5820; // _IOW('X', 32, struct fsxattr)
const FS_XFLAG_PROJINHERIT = 0x200;

const SYS_quotactl_fd = 443;
const PRJQUOTA = 2;
const Q_XGETQSTAT = (0x5805 << 8) | PRJQUOTA; // QCMD(Q_XGETQSTAT, PRJQUOTA)
const Q_XSETQLIM = (0x5804 << 8) | PRJQUOTA; // QCMD(Q_XSETQLIM, PRJQUOTA)
const Q_XGETQUOTA = (0x5803 << 8) | PRJQUOTA; // QCMD(Q_XGETQUOTA, PRJQUOTA)
const FS_QUOTA_PDQ_ACCT = 1 << 4;
const FS_QUOTA_PDQ_ENFD = 1 << 5;

// struct fs_disk_quota (112 bytes): d_version s8, d_flags s8, d_fieldmask u16, d_id u32,
// d_blk_hardlimit u64, d_blk_softlimit u64, … in 512-byte basic blocks.
const FS_DISK_QUOTA_SIZE = 112;
const FS_DQUOT_VERSION = 1;
const FS_PROJ_QUOTA = 2;
const FS_DQ_BSOFT = 1 << 2;
const FS_DQ_BHARD = 1 << 3;


function quotactl(fd: number, cmd: number, id: number, buf: Buffer): number {
  return Number(libc.syscall(SYS_quotactl_fd, fd, cmd, id, ptr(buf), 0, 0));
}

/**
 * True when the filesystem holding `dir` accounts and enforces project quotas (XFS mounted with
 * `prjquota`, ext4 with the project feature and `prjquota`). Any refusal means no support.
 */
export function projectQuotaEnforced(dir: string): boolean {
  return withDir(dir, (fd) => {
    const stat = Buffer.alloc(128); // struct fs_quota_stat; qs_flags is the u16 at offset 2
    if (quotactl(fd, Q_XGETQSTAT, 0, stat) < 0) return false;
    const flags = stat.readUInt16LE(2);
    return (flags & FS_QUOTA_PDQ_ACCT) !== 0 && (flags & FS_QUOTA_PDQ_ENFD) !== 0;
  });
}

function getFsxattr(fd: number, path: string): Buffer {
  const attr = fsxattrIfAny(fd);
  if (!attr) throw failed(() => `get project id of ${path}`);
  return attr;
}

/** The fsxattr of open file `fd`, or undefined when its filesystem has none (errno says why). */
function fsxattrIfAny(fd: number): Buffer | undefined {
  const attr = Buffer.alloc(FSXATTR_SIZE);
  return libc.ioctl(fd, FS_IOC_FSGETXATTR, ptr(attr)) < 0 ? undefined : attr;
}

/** The project id of directory `dir`. */
export function projectId(dir: string): number {
  return withDir(dir, (fd) => getFsxattr(fd, dir).readUInt32LE(12));
}

/** The project id of directory `dir`, or undefined where its filesystem has none (tmpfs, overlayfs…). */
export function projectIdIfAny(dir: string): number | undefined {
  return withDir(dir, (fd) => fsxattrIfAny(fd)?.readUInt32LE(12));
}

/** Puts directory `dir` in project `id`; with `inherit`, what is created below it is in it too. */
export function setProjectId(dir: string, id: number, inherit = true): void {
  withDir(dir, (fd) => {
    const attr = getFsxattr(fd, dir);
    const flags = attr.readUInt32LE(0);
    attr.writeUInt32LE((inherit ? flags | FS_XFLAG_PROJINHERIT : flags & ~FS_XFLAG_PROJINHERIT) >>> 0, 0);
    attr.writeUInt32LE(id, 12);
    check(libc.ioctl(fd, FS_IOC_FSSETXATTR, ptr(attr)), () => `set project id ${id} on ${dir}`);
  });
}

/**
 * Whether anything on the filesystem holding `dir` is in project `id`: blocks or inodes counted
 * against it. A project nothing is in (never used, or whose files are all gone) answers no.
 */
export function projectInUse(dir: string, id: number): boolean {
  return withDir(dir, (fd) => {
    const q = Buffer.alloc(FS_DISK_QUOTA_SIZE);
    if (quotactl(fd, Q_XGETQUOTA, id, q) < 0) {
      const e = failed(() => `get quota of project ${id} on ${dir}`);
      if (e.errno === Errno.ENOENT) return false; // XFS has no record of the project
      throw e;
    }
    // d_bcount and d_icount, after the four limits.
    return q.readBigUInt64LE(40) > 0n || q.readBigUInt64LE(48) > 0n;
  });
}

/** Limits project `id` on the filesystem holding `dir` to `bytes` (hard and soft; 0 lifts the limit). */
export function setProjectLimit(dir: string, id: number, bytes: number): void {
  withDir(dir, (fd) => {
    const q = Buffer.alloc(FS_DISK_QUOTA_SIZE);
    const blocks = BigInt(Math.ceil(bytes / 512));
    q.writeInt8(FS_DQUOT_VERSION, 0);
    q.writeInt8(FS_PROJ_QUOTA, 1);
    q.writeUInt16LE(FS_DQ_BHARD | FS_DQ_BSOFT, 2);
    q.writeUInt32LE(id, 4);
    q.writeBigUInt64LE(blocks, 8);
    q.writeBigUInt64LE(blocks, 16);
    if (quotactl(fd, Q_XSETQLIM, id, q) < 0) throw failed(() => `set quota limit of project ${id} on ${dir}`);
  });
}
