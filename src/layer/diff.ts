/**
 * A snapshot's changes as an OCI image layer: one tar entry per added or changed path (hardlinked
 * files after the first as tar hardlinks), `.wh.NAME` for each deletion and `.wh..wh..opq` after
 * an opaque directory. Sockets have no tar form and are left out, as containerd leaves them.
 */
import { chmodSync, closeSync, createWriteStream, openSync, readSync, realpathSync, renameSync, rmSync, statSync } from "../nodeFs.ts";
import { basename, dirname, join } from "../path.ts";
import { openOwnTree } from "../sys/mount.ts";
import { createHash, type Hash } from "node:crypto";
import type { Writable } from "node:stream";
import { finished, pipeline } from "node:stream/promises";
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

/** The most of a file read at once. */
const READ_CHUNK = 1 << 20;
/** The least a write of the layer carries, but for its last. */
const WRITE_CHUNK = 1 << 20;
/**
 * The write buffers, each used again once its write is done. A fresh buffer for each read and
 * write cost a diff of 353 MiB 77,000 page faults (memory new to the process each time).
 */
const WRITE_BUFFERS = 3;

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
  try {
    const z = compressor(compression);
    if (!z) await writeGathered(layerChunks(list, tree), out, hash);
    else {
      const compressed = pipeline(z, out);
      try {
        await writeGathered(layerChunks(list, tree), z, hash);
      } catch (err) {
        compressed.catch(() => {}); // failed with it: the first error is the one to tell
        throw err;
      }
      await compressed;
    }
  } finally {
    closeSync(tree);
  }
  return `sha256:${hash.digest("hex")}`;
}

/**
 * Writes `chunks` to `sink` gathered into buffers of {@link WRITE_CHUNK} bytes (but the last),
 * hashing them on the way; ends `sink` and waits for it to finish. Each chunk is copied before
 * the next is asked for. Gathered, because a layer's headers, small files and paddings are
 * hundreds of thousands of chunks (the bench's 26k-entry layer: 140,669 writes, 6.5 s, one each).
 * A buffer is filled again only once the sink has called back for its write: done with it.
 */
async function writeGathered(chunks: Iterable<Uint8Array>, sink: Writable, hash: Hash): Promise<void> {
  const free: Buffer[] = [];
  let made = 0;
  let failure: { err: unknown } | undefined;
  let wake: (() => void) | undefined;
  const awake = () => {
    const w = wake;
    wake = undefined;
    w?.();
  };
  const fail = (err: unknown) => {
    failure ??= { err };
    awake();
  };
  sink.on("error", fail);
  const nextBuffer = async (): Promise<Buffer> => {
    while (free.length === 0 && made === WRITE_BUFFERS && !failure) await new Promise<void>((resolve) => (wake = resolve));
    if (failure) throw failure.err;
    if (free.length > 0) return free.pop()!;
    made++;
    return Buffer.allocUnsafe(WRITE_CHUNK); // not zeroed: only what was filled is written
  };
  const send = (buf: Buffer, length: number) => {
    const bytes = length === buf.length ? buf : buf.subarray(0, length);
    hash.update(bytes);
    sink.write(bytes, (err) => {
      if (err) return fail(err);
      free.push(buf);
      awake();
    });
  };
  try {
    let buf = await nextBuffer();
    let filled = 0;
    for (const chunk of chunks) {
      for (let done = 0; done < chunk.length; ) {
        const n = Math.min(chunk.length - done, buf.length - filled);
        buf.set(n === chunk.length ? chunk : chunk.subarray(done, done + n), filled);
        filled += n;
        done += n;
        if (filled === buf.length) {
          send(buf, filled);
          buf = await nextBuffer();
          filled = 0;
        }
      }
    }
    if (filled > 0) send(buf, filled);
    sink.end();
    await finished(sink);
  } catch (err) {
    sink.destroy();
    throw err;
  } finally {
    sink.off("error", fail);
  }
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
 * The tar stream of a list of changes in the tree open as `tree` (an O_PATH descriptor), chunk by
 * chunk. A chunk of a file's content is valid until the next is asked for: its buffer is read into again.
 */
export function* layerChunks(list: readonly LayerChange[], tree: number): Generator<Uint8Array> {
  const readBuffer = { bytes: undefined as Buffer | undefined };
  /** First path written for each multiply-linked inode. */
  const links = new Map<string, string>();
  /** Unchanged names (`U`) of inodes no change has written yet: links to the first that does. */
  const waiting = new Map<string, LayerChange[]>();
  /** The directories written for links' sake (see LayerChange.parents), each once. */
  const parentsWritten = new Set<string>();
  /** `c` as a link to `first` (its header `h` but for that), after the directories it needs that are not written yet. */
  const linkTo = function* (c: LayerChange, first: string, h: TarHeader): Generator<Uint8Array> {
    for (const p of c.parents ?? []) {
      if (parentsWritten.has(p.path)) continue;
      parentsWritten.add(p.path);
      yield encodeHeader(header(p, "dir", true));
    }
    yield encodeHeader({ ...h, path: c.path, type: "link", linkpath: first, size: 0, xattrs: new Map() });
  };
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
      yield* linkTo(c, first, header(c, type, false));
      continue;
    }
    if (inode !== undefined && c.kind === "U") {
      waiting.set(inode, [...(waiting.get(inode) ?? []), c]);
      continue;
    }
    const h = header(c, type, true);
    yield encodeHeader(h);
    if (type === "file") {
      failpoint("diff:file");
      yield* fileChunks(tree, h.size, c.path, c.stat!.ino, readBuffer);
    }
    if (inode !== undefined) {
      links.set(inode, c.path);
      for (const u of waiting.get(inode) ?? []) yield* linkTo(u, c.path, h);
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
 * no host file goes into the layer. The chunks are read into `buffer.bytes` (made on first use).
 */
function* fileChunks(tree: number, size: number, path: string, ino: bigint, buffer: { bytes?: Buffer }): Generator<Uint8Array> {
  const fd = openFileBeneath(tree, path, ino);
  if (fd < 0) {
    const why = -fd === Errno.ESTALE ? "another file is there now" : -fd === Errno.ELOOP || -fd === Errno.EXDEV ? "a symlink is on its way" : undefined;
    throw new StorError(`read /${path}`, why ? `${why}: the tree changed while the layer was written` : strerror(-fd));
  }
  try {
    for (let done = 0; done < size; ) {
      const buf = (buffer.bytes ??= Buffer.allocUnsafe(READ_CHUNK));
      const n = readSync(fd, buf, 0, Math.min(buf.length, size - done), done);
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
