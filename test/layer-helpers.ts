/**
 * What the layer tests share: a listing of a tree that two trees must agree on, a small tar
 * writer of its own (crafted archives must not depend on the code under test), and snapshots
 * filled through their mounts.
 */
import { lstatSync, readFileSync, readdirSync, readlinkSync, writeFileSync } from "node:fs";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { getXattr, listXattrs } from "../src/sys/file.ts";
import { must, type TestRoot } from "./helpers.ts";

export const SNAPSHOTTERS = ["overlay", "native", "btrfs"] as const;
export type SnapshotterName = (typeof SNAPSHOTTERS)[number];

/** How each snapshotter's changes are found, as it declares (src/snapshot/snapshotter.ts DiffStyle). */
export const DIFF_STYLE: Record<SnapshotterName, "upper" | "tree"> = { overlay: "upper", native: "tree", btrfs: "tree" };

/**
 * One line per entry below `dir` (not `dir` itself): path, type and mode, owner, size, mtime in
 * seconds, content digest or link target or device number, and xattrs other than overlayfs's own.
 */
export function listing(dir: string): string[] {
  const out: string[] = [];
  const walk = (rel: string) => {
    for (const name of readdirSync(join(dir, rel)).sort()) {
      const path = rel ? `${rel}/${name}` : name;
      const abs = join(dir, path);
      const st = lstatSync(abs, { bigint: true });
      const what = st.isFile()
        ? createHash("sha256").update(readFileSync(abs)).digest("hex").slice(0, 16)
        : st.isSymbolicLink()
          ? `-> ${readlinkSync(abs)}`
          : st.isDirectory()
            ? ""
            : `dev ${st.rdev}`;
      const xattrs = listXattrs(abs)
        .filter((k) => !k.startsWith("trusted.overlay."))
        .sort()
        .map((k) => `${k}=${getXattr(abs, k)!.toString("hex")}`);
      out.push([path, Number(st.mode).toString(8), `${st.uid}:${st.gid}`, st.isDirectory() ? "-" : String(st.size), String(st.mtimeMs / 1000n), what, ...xattrs].join(" "));
      if (st.isDirectory()) walk(path);
    }
  };
  walk("");
  return out;
}

/** An entry of {@link tar}. */
export interface TarEntry {
  name: string;
  /** ustar type flag: "0" file, "1" hardlink, "2" symlink, "5" directory, … */
  type?: string;
  linkname?: string;
  data?: string | Uint8Array;
  mode?: number;
  uid?: number;
  gid?: number;
  mtime?: number;
}

/** A ustar archive of `entries`, names written as given (`..` and `/` included), long ones as GNU tar does. */
export function tar(entries: TarEntry[]): Buffer {
  const blocks: Buffer[] = [];
  const add = (e: TarEntry) => {
    const data = Buffer.from(e.data ?? "");
    const h = Buffer.alloc(512);
    const octal = (off: number, len: number, v: number) => h.write(`${v.toString(8).padStart(len - 1, "0")}\0`, off, "latin1");
    h.write(e.name, 0, 100, "utf8");
    octal(100, 8, e.mode ?? 0o644);
    octal(108, 8, e.uid ?? 0);
    octal(116, 8, e.gid ?? 0);
    octal(124, 12, data.length);
    octal(136, 12, e.mtime ?? 1_600_000_000);
    h.write(e.type ?? "0", 156, "latin1");
    h.write(e.linkname ?? "", 157, 100, "utf8");
    h.write("ustar\x0000", 257, "latin1");
    h.fill(" ", 148, 156);
    let sum = 0;
    for (const b of h) sum += b;
    h.write(`${sum.toString(8).padStart(6, "0")}\0 `, 148, "latin1");
    blocks.push(h, data, Buffer.alloc((512 - (data.length % 512)) % 512));
  };
  for (const e of entries) {
    if (Buffer.byteLength(e.linkname ?? "") > 100) add({ name: "././@LongLink", type: "K", data: `${e.linkname}\0` });
    if (Buffer.byteLength(e.name) > 100) add({ name: "././@LongLink", type: "L", data: `${e.name}\0` });
    add(e);
  }
  blocks.push(Buffer.alloc(1024));
  return Buffer.concat(blocks);
}

/** Prepares active `key` (on `parent`), runs `fill` in it through its mount, unmounts. */
export function prepareFilled(root: TestRoot, snapshotter: string, key: string, parent: string | undefined, fill: (dir: string) => void): void {
  root.ok(["-s", snapshotter, "snapshot", "prepare", key, ...(parent ? [parent] : [])]);
  const mnt = root.dir(`mnt-${key}`);
  root.ok(["-s", snapshotter, "mount", key, mnt]);
  try {
    fill(mnt);
  } finally {
    must(`umount ${mnt}`);
  }
}

/** The directory active `key` is written in (overlay: its upper directory), as its mounts give it. */
export function writableTree(root: TestRoot, snapshotter: string, key: string): string {
  const m = JSON.parse(root.ok(["-s", snapshotter, "snapshot", "mounts", "--format", "json", "/mnt", key]))[0] as { Type: string; Source: string; Options: string[] };
  return m.Type === "bind" ? m.Source : m.Options.find((o) => o.startsWith("upperdir="))!.slice("upperdir=".length);
}

/** Writes `layer` to `file` and makes committed snapshot `name` of it, through active `<name>-a`. */
export function committedLayer(root: TestRoot, snapshotter: string, name: string, file: string, layer: Uint8Array): void {
  writeFileSync(file, layer);
  root.ok(["-s", snapshotter, "snapshot", "prepare", `${name}-a`]);
  root.ok(["-s", snapshotter, "snapshot", "apply", `${name}-a`, file]);
  root.ok(["-s", snapshotter, "snapshot", "commit", name, `${name}-a`]);
}

/** The listing of committed (or active) `key` as mounted through a fresh view. */
export function viewListing(root: TestRoot, snapshotter: string, key: string): string[] {
  const view = `view-${key}-${Math.random().toString(36).slice(2)}`;
  root.ok(["-s", snapshotter, "snapshot", "view", view, key]);
  const mnt = root.dir(`mnt-${view}`);
  root.ok(["-s", snapshotter, "mount", view, mnt]);
  try {
    return listing(mnt);
  } finally {
    must(`umount ${mnt}`);
    root.ok(["-s", snapshotter, "snapshot", "rm", view]);
  }
}

/** The sha256 digest of `data` as OCI writes it. */
export const sha256 = (data: Uint8Array | string) => `sha256:${createHash("sha256").update(data).digest("hex")}`;

/** True when stderr is one `stor: …` line and no stack trace. */
export function oneLineError(stderr: string): boolean {
  const lines = stderr.trim().split("\n");
  return lines.length === 1 && lines[0]!.startsWith("stor: ") && !/\bat .*:\d+/.test(stderr);
}
