/**
 * A snapshot's changes as an OCI image layer: one tar entry per added or changed path (hardlinked
 * files after the first as tar hardlinks), `.wh.NAME` for each deletion and `.wh..wh..opq` after
 * an opaque directory. Sockets have no tar form and are left out, as containerd leaves them.
 */
import { chmodSync, closeSync, createWriteStream, openSync, readSync, realpathSync, renameSync, rmSync, statSync } from "../nodeFs.ts";
import { basename, dirname, join } from "../path.ts";
import { openOwnTree } from "../sys/mount.ts";
import { createHash } from "node:crypto";
import { Readable, type Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { InvalidArgumentError, NotFoundError, StorError, errnoReason } from "../errors.ts";
import { Errno, errnoCode, strerror } from "../sys/libc.ts";
import { splitdev } from "../sys/devno.ts";
import { decodeName } from "../fileName.ts";
import { layerChanges, type LayerChange, type LayerView } from "./changes.ts";
import { S, openFileBeneath } from "../sys/pathCalls.ts";
import { compressor, type Compression } from "./compression.ts";
import type { EntryType, TarHeader } from "./tarFormat.ts";
import { END_OF_ARCHIVE, encodeHeader, padding } from "./tarWriter.ts";
import { OPAQUE_MARKER, WHITEOUT_PREFIX } from "./whiteout.ts";
import { failpoint } from "../failpoint.ts";

const READ_CHUNK = 1 << 20;
/** The least a write of the layer carries, but for its last. */
const WRITE_CHUNK = 1 << 20;

const TYPES = new Map<number, EntryType>([
  [S.IFREG, "file"],
  [S.IFDIR, "dir"],
  [S.IFLNK, "symlink"],
  [S.IFCHR, "char"],
  [S.IFBLK, "block"],
  [S.IFIFO, "fifo"],
]);

/**
 * Writes the layer of `view` to `out`, compressed as asked, and returns its diffID: the sha256 of
 * the uncompressed tar.
 */
export async function writeLayer(view: LayerView, out: Writable, compression: Compression): Promise<string> {
  return await writeChanges(view, layerChanges(view), out, compression);
}

/** {@link writeLayer} of the changes `list`, found in `view`. */
async function writeChanges(view: LayerView, list: readonly LayerChange[], out: Writable, compression: Compression): Promise<string> {
  const hash = createHash("sha256");
  const tree = openOwnTree(view.upper);
  const tar = async function* () {
    for (const chunk of coalesced(layerChunks(list, tree))) {
      hash.update(chunk);
      yield chunk;
    }
  };
  try {
    const z = compressor(compression);
    if (z) await pipeline(Readable.from(tar(), { objectMode: false }), z, out);
    else await pipeline(Readable.from(tar(), { objectMode: false }), out);
  } finally {
    closeSync(tree);
  }
  return `sha256:${hash.digest("hex")}`;
}

/**
 * {@link writeLayer} to the file at `path`; returns the layer's diffID. A regular file there (or
 * none) is replaced whole when the layer is written: it is written beside it under a temporary
 * name and renamed over it, so a failure leaves what was there. Anything else (a device, a FIFO,
 * /dev/stdout) is written to as it is, and never removed.
 */
export async function writeLayerToFile(view: LayerView, path: string, compression: Compression): Promise<string> {
  let existing;
  try {
    existing = statSync(path, { throwIfNoEntry: false });
  } catch (err) {
    throw outputError(path, err);
  }
  if (existing?.isDirectory()) throw new InvalidArgumentError(`output ${path}`, "is a directory");
  if (existing && !existing.isFile()) return await writingTo(path, () => writeLayer(view, createWriteStream(path), compression));
  // Found first, in one pass a signal's handler cannot interrupt: with no file made yet, a signal
  // then ends the command at once (a list of 200,000 changes had Ctrl-C wait 4 s).
  const list = layerChanges(view);
  const target = existing ? realpathSync(path) : path; // a symlink to a file: the file is replaced
  const temp = join(dirname(target), `.${basename(target)}.stor-${process.pid}-${Date.now()}`);
  // Outside the root, no cleanup finds it: a command stopped by a signal (Ctrl-C, timeout's
  // TERM) removes it, then dies of that signal as it would have. Listened for before the file is
  // made: a signal in between killed the command and left the file.
  let made = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (made) rmSync(temp, { force: true });
    for (const s of STOP_SIGNALS) process.off(s, onSignal);
    process.kill(process.pid, signal);
  };
  for (const s of STOP_SIGNALS) process.on(s, onSignal);
  try {
    let fd: number;
    try {
      fd = openSync(temp, "wx", existing ? existing.mode & 0o7777 : 0o666);
      made = true;
    } catch (err) {
      throw outputError(path, err); // the temporary file is stor's business: the user named `path`
    }
    const diffId = await writingTo(path, () => writeChanges(view, list, createWriteStream("", { fd }), compression));
    if (existing) chmodSync(temp, existing.mode & 0o7777); // the mode it had, whatever the umask
    renameSync(temp, target);
    return diffId;
  } catch (err) {
    if (made) rmSync(temp, { force: true });
    throw err;
  } finally {
    for (const s of STOP_SIGNALS) process.off(s, onSignal);
  }
}

/** Runs `write`, whose failures to open or write the output (a full disk) name `path`, the output the user named. */
async function writingTo<T>(path: string, write: () => Promise<T>): Promise<T> {
  try {
    return await write();
  } catch (err) {
    const syscall = (err as NodeJS.ErrnoException | null)?.syscall;
    throw syscall === "write" || syscall === "open" ? outputError(path, err) : err;
  }
}

/** The signals that end a command a person or a supervisor stops, Ctrl-\ among them. */
const STOP_SIGNALS = ["SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT"] as const;

/** Why the output file `path` cannot be made, in the contract's terms: its directory missing is not found. */
function outputError(path: string, err: unknown): StorError {
  const what = `output ${path}`;
  const code = errnoCode(err);
  // ENOENT from a directory that is there: procfs and the like refuse to make files.
  if (code === "ENOENT" && !statSync(dirname(path), { throwIfNoEntry: false })) return new NotFoundError(what, `directory ${dirname(path)} not found`);
  if (code === "ENOTDIR") return new InvalidArgumentError(what, "a parent is not a directory");
  return new StorError(what, errnoReason(err));
}

/**
 * `chunks` joined into buffers of at least {@link WRITE_CHUNK} bytes, a large chunk passed on as
 * it is: each chunk is a write, and the headers, small files and paddings of a layer are
 * hundreds of thousands of them (the bench's 26k-entry layer: 140,669 writes, 6.5 s).
 */
function* coalesced(chunks: Iterable<Uint8Array>): Generator<Uint8Array> {
  // Not zeroed: only what was filled is yielded.
  let buf = Buffer.allocUnsafe(WRITE_CHUNK);
  let filled = 0;
  for (const chunk of chunks) {
    if (filled > 0 && filled + chunk.length > buf.length) {
      yield buf.subarray(0, filled);
      buf = Buffer.allocUnsafe(WRITE_CHUNK); // a fresh one: the consumer may still hold the one just yielded
      filled = 0;
    }
    if (filled === 0 && chunk.length >= WRITE_CHUNK / 4) yield chunk;
    else {
      buf.set(chunk, filled);
      filled += chunk.length;
    }
  }
  if (filled > 0) yield buf.subarray(0, filled);
}

/** The tar stream of a list of changes in the tree open as `tree` (an O_PATH descriptor), chunk by chunk. */
export function* layerChunks(list: readonly LayerChange[], tree: number): Generator<Uint8Array> {
  /** First path written for each multiply-linked inode. */
  const links = new Map<string, string>();
  /** Unchanged names (`U`) of inodes no change has written yet: links to the first that does. */
  const waiting = new Map<string, string[]>();
  for (const c of list) {
    if (c.kind === "D") {
      yield encodeHeader(marker(sibling(c.path, WHITEOUT_PREFIX + basename(c.path))));
      continue;
    }
    const st = c.stat!;
    const type = TYPES.get(Number(st.mode) & S.IFMT);
    if (!type) continue; // a socket
    const inode = type !== "dir" && st.nlink > 1n ? `${st.dev}:${st.ino}` : undefined;
    const first = inode === undefined ? undefined : links.get(inode);
    if (first !== undefined) {
      // A later name of an inode is a link to the first: the first carries its xattrs.
      yield encodeHeader({ ...header(c, type, false), type: "link", linkpath: first, size: 0 });
      continue;
    }
    if (inode !== undefined && c.kind === "U") {
      waiting.set(inode, [...(waiting.get(inode) ?? []), c.path]);
      continue;
    }
    const h = header(c, type, true);
    yield encodeHeader(h);
    if (type === "file") {
      failpoint("diff:file");
      yield* fileChunks(tree, h.size, c.path, c.stat!.ino);
    }
    if (inode !== undefined) {
      links.set(inode, c.path);
      for (const path of waiting.get(inode) ?? []) yield encodeHeader({ ...h, path, type: "link", linkpath: c.path, size: 0, xattrs: new Map() });
      waiting.delete(inode);
    }
    if (c.opaque) yield encodeHeader(marker(`${c.path}/${OPAQUE_MARKER}`));
  }
  yield END_OF_ARCHIVE;
}

/** The tar header of added or changed `c`, of `type`; its xattrs read only when `withXattrs`. */
function header(c: LayerChange, type: TarHeader["type"], withXattrs: boolean): TarHeader {
  const st = c.stat!;
  const dev = splitdev(st.rdev);
  return {
    path: c.path,
    type,
    mode: Number(st.mode) & 0o7777,
    uid: Number(st.uid),
    gid: Number(st.gid),
    size: type === "file" ? Number(st.size) : 0,
    mtimeNs: st.mtimeNs,
    linkpath: type === "symlink" ? decodeName(c.link!) : "",
    devMajor: type === "char" || type === "block" ? dev.major : 0,
    devMinor: type === "char" || type === "block" ? dev.minor : 0,
    xattrs: withXattrs ? c.xattrs! : new Map(),
  };
}

/**
 * `size` bytes of file `path` (inode `ino` when the tree was walked) of the tree open as `tree`,
 * and the padding after them. The file is opened beneath the tree through no symlink, and only if
 * it is still the file the walk saw: a container that swaps a directory on its way for a link to
 * `/etc`, or the file for a FIFO or a device node, while the layer is written fails the diff, and
 * no host file goes into the layer.
 */
function* fileChunks(tree: number, size: number, path: string, ino: bigint): Generator<Uint8Array> {
  const fd = openFileBeneath(tree, path, ino);
  if (fd < 0) {
    const why = -fd === Errno.ESTALE ? "another file is there now" : -fd === Errno.ELOOP || -fd === Errno.EXDEV ? "a symlink is on its way" : undefined;
    throw new StorError(`read /${path}`, why ? `${why}: the tree changed while the layer was written` : strerror(-fd));
  }
  try {
    for (let done = 0; done < size; ) {
      // A fresh buffer each time: the consumer may still hold the previous one.
      const buf = Buffer.allocUnsafe(Math.min(READ_CHUNK, size - done));
      const n = readSync(fd, buf, 0, buf.length, done);
      if (n === 0) throw new StorError(`read /${path}`, "file shrank while the layer was written");
      yield buf.subarray(0, n);
      done += n;
    }
  } finally {
    closeSync(fd);
  }
  yield padding(size);
}

/** An empty regular file with fixed metadata: how whiteouts and opaque markers are stored. */
function marker(path: string): TarHeader {
  return { path, type: "file", mode: 0, uid: 0, gid: 0, size: 0, mtimeNs: 0n, linkpath: "", devMajor: 0, devMinor: 0, xattrs: new Map() };
}

const sibling = (path: string, name: string) => `${path.slice(0, path.lastIndexOf("/") + 1)}${name}`;
