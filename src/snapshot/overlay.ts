/**
 * The overlay snapshotter: each snapshot is an upper directory `<id>/fs` (with `<id>/work` for
 * overlayfs when active). A snapshot with no parent is a bind of its `fs`; a view of one layer a
 * read-only bind of that layer; anything deeper an overlay mount, nearest parent first.
 */
import { chmodPath, chownPath, makeDir, pathExists, readText, statPath } from "../sys/pathCalls.ts";
import { join } from "../path.ts";
import { FS_MAGIC, filesystemType } from "../sys/file.ts";
import { supportsDType } from "../sys/dirent.ts";
import { Errno, SysError } from "../sys/libc.ts";
import type { Mount } from "../sys/mount.ts";
import type { Snapshotter, SnapshotDirs } from "./snapshotter.ts";

const fsDir = (dir: string) => join(dir, "fs");
const workDir = (dir: string) => join(dir, "work");

/** containerd turns the inode index off where the kernel has it, so layers can move between hosts. */
const baseOptions = (): string[] => (pathExists("/sys/module/overlay/parameters/index") ? ["index=off"] : []);

export const overlay: Snapshotter = {
  name: "overlay",
  diffStyle: "upper",

  unsupported(home, probe) {
    // A line `nodev\toverlay`; a string search, not a RegExp compiled in every prepare.
    if (!`${readText("/proc/filesystems") ?? ""}\n`.includes("\toverlay\n")) {
      return "the kernel has no overlay filesystem (try: modprobe overlay)";
    }
    // The directories go to overlayfs in one option string, where "," ends an option, ":" a layer
    // and "\\" escapes: a root holding one would mount something else, or nothing.
    if (home.includes(",") || home.includes(":") || home.includes("\\")) return `${home} holds "," ":" or "\\", which overlayfs options cannot carry`;
    if (filesystemType(probe) === FS_MAGIC.overlay) return `${home} is on overlayfs, which cannot hold upper directories`;
    if (!supportsDType(probe)) {
      return `the filesystem of ${home} does not record file types in directories (d_type); XFS needs ftype=1, ext4 the filetype feature`;
    }
    return undefined;
  },

  populate(s: SnapshotDirs) {
    const fs = fsDir(s.dir);
    makeDir(fs, 0o755); // in a directory just made: nothing is there
    chmodPath(fs, 0o755); // not left to the umask
    if (s.parents[0]) {
      const lower = fsDir(s.parents[0]);
      const owner = statPath(lower, false);
      if (!owner) throw new SysError(`stat ${lower}`, Errno.ENOENT); // the parent's layer is gone: said so, not a TypeError
      chownPath(fs, owner.uid, owner.gid);
    }
    if (s.kind === "active") makeDir(workDir(s.dir), 0o711);
  },

  mounts(s: SnapshotDirs): Mount[] {
    const ro = s.kind === "view" ? "ro" : "rw";
    if (s.parents.length === 0) return [{ Type: "bind", Source: fsDir(s.dir), Options: [ro, "rbind"] }];
    if (s.kind !== "active" && s.parents.length === 1) {
      return [{ Type: "bind", Source: fsDir(s.parents[0]!), Options: ["ro", "rbind"] }];
    }
    const options = baseOptions();
    if (s.kind === "active") options.push(`workdir=${workDir(s.dir)}`, `upperdir=${fsDir(s.dir)}`);
    let lowerdir = "";
    for (const p of s.parents) lowerdir += `${lowerdir === "" ? "" : ":"}${fsDir(p)}`; // no Array.prototype.map on the way
    options.push(`lowerdir=${lowerdir}`);
    return [{ Type: "overlay", Source: "overlay", Options: options }];
  },

  upperDir: fsDir,
};
