/**
 * Where an image's files come from: a directory (an OCI image layout, or an unpacked `docker
 * save`) or an uncompressed tarball of one (`docker save` output). A tarball is indexed once;
 * its files are then read in place, by offset, never copied out or held in memory.
 */
import { closeSync, createReadStream, fstatSync, openSync, readSync, statSync } from "../nodeFs.ts";
import type { Stats } from "node:fs";
import { Readable } from "node:stream";
import { InvalidArgumentError, NotFoundError, StorError, describe, exitCodeOf } from "../errors.ts";
import { O, RESOLVE, openat2 } from "../sys/openat2.ts";
import { Errno, SysError } from "../sys/libc.ts";
import { ConfinedDir } from "./confined.ts";
import { READ_CHUNK, detectCompression } from "./compression.ts";
import { entryParts } from "./paths.ts";
import { TarReader } from "./tarReader.ts";

/** JSON documents (index, manifest, config) larger than this are refused. */
export const MAX_JSON_BYTES = 16 << 20;
const MAX_LINK_HOPS = 16;

/** One file of an image source, open for reading. */
export interface SourceFile {
  /** Its length when it was opened. */
  size: number;
  /** Its bytes: never more than `size` + 1, so that a file that grows while it is read is told, not read on. */
  stream: Readable;
}

/** The files of an image, by `/`-separated path relative to the source's top. */
export interface ImageSource {
  readonly name: string;
  /**
   * Opens the file at `path`, or returns undefined when the source has none; a path leading outside
   * the image, or anything but a regular file, is refused as `what` (default: the path) in the source.
   */
  open(path: string, what?: string): SourceFile | undefined;
  /** True when the source has something at `path`. */
  has(path: string): boolean;
  close(): void;
}

/** Opens `path` as an image source: a directory or a tarball. */
export async function openImageSource(path: string): Promise<ImageSource> {
  let isDir: boolean;
  try {
    isDir = statSync(path).isDirectory();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") throw new NotFoundError(`image source ${path}`);
    throw new StorError(`image source ${path}`, describe(err));
  }
  return isDir ? new DirSource(path) : await TarSource.index(path);
}

/** The whole of a small file of `source` (a JSON document), refusing large ones. */
export async function readSmallFile(source: ImageSource, path: string): Promise<Buffer> {
  const f = source.open(path);
  if (!f) throw new NotFoundError(`${path} in ${source.name}`);
  if (f.size > MAX_JSON_BYTES) {
    f.stream.destroy();
    throw new InvalidArgumentError(`${path} in ${source.name}`, `${f.size} bytes is too large for a JSON document`);
  }
  const chunks: Buffer[] = [];
  for await (const c of f.stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/**
 * The parts of `path` below the image's top, for a file the image's own documents name (a docker
 * save manifest names its config and layers by path), so they may lie: a path whose `..` climbs
 * above the top names nothing in the image and is refused, as is a NUL, which the kernel would
 * take as the path's end. `what` names the path in the refusal.
 */
function imageParts(path: string, what: () => string): string[] {
  if (path.includes("\0")) throw new InvalidArgumentError(what(), "contains NUL");
  const parts: string[] = [];
  for (const p of path.split("/")) {
    if (p === "" || p === ".") continue;
    if (p !== "..") parts.push(p);
    else if (parts.pop() === undefined) throw new InvalidArgumentError(what(), "leads outside the image");
  }
  return parts;
}

/**
 * `fd` and its size when it is a regular file; anything else (a FIFO, a device, a directory) is
 * closed and refused. Opened with O_NONBLOCK, a FIFO cannot stall the open, and this refuses it
 * before anything waits on a read.
 */
function regularFile(fd: number, what: () => string): { fd: number; size: number } {
  const st = fstatSync(fd);
  if (st.isFile()) return { fd, size: st.size };
  closeSync(fd);
  throw new InvalidArgumentError(what(), `is a ${fileKind(st)}, not a regular file`);
}

function fileKind(st: Stats): string {
  if (st.isFIFO()) return "FIFO";
  if (st.isDirectory()) return "directory";
  if (st.isCharacterDevice()) return "character device";
  if (st.isBlockDevice()) return "block device";
  if (st.isSocket()) return "socket";
  return "special file";
}

/** A directory; names are resolved inside it, so a crafted path or symlink cannot leave it. */
class DirSource implements ImageSource {
  readonly name: string;
  readonly #dir: ConfinedDir;

  constructor(path: string) {
    this.name = path;
    this.#dir = new ConfinedDir(path);
  }

  open(path: string, what = path): SourceFile | undefined {
    const opened = this.#open(path, O.RDONLY | O.NONBLOCK, what);
    if (opened === undefined) return undefined;
    const { fd, size } = regularFile(opened, () => `${what} in ${this.name}`);
    return { size, stream: createReadStream("", { fd, start: 0, end: size, highWaterMark: READ_CHUNK }) };
  }

  has(path: string): boolean {
    const fd = this.#open(path, O.PATH);
    if (fd !== undefined) closeSync(fd);
    return fd !== undefined;
  }

  #open(path: string, flags: number, what = path): number | undefined {
    const parts = imageParts(path, () => `${what} in ${this.name}`);
    const fd = openat2(this.#dir.fd, parts.join("/"), flags, RESOLVE.IN_ROOT | RESOLVE.NO_MAGICLINKS);
    if (fd === -Errno.ENOENT || fd === -Errno.ENOTDIR) return undefined;
    if (fd < 0) throw new SysError(`open ${what} in ${this.name}`, -fd); // there, but not to be read: not "not found"
    return fd;
  }

  close(): void {
    this.#dir.close();
  }
}

/** Where a tarball holds a member: its data's offset and size, or the member it links to. */
interface Member {
  offset: number;
  size: number;
  link?: string;
}

/** Member name `path` as the archive's own path, or undefined where it leads outside the archive. */
function inArchive(path: string): string | undefined {
  try {
    return entryParts(path).join("/");
  } catch (err) {
    if (err instanceof InvalidArgumentError) return undefined;
    throw err;
  }
}

/** An uncompressed tarball, read in place. */
class TarSource implements ImageSource {
  readonly name: string;
  readonly #members = new Map<string, Member>();

  private constructor(path: string) {
    this.name = path;
  }

  /** Reads the tarball's headers once and remembers where every file is. */
  static async index(path: string): Promise<TarSource> {
    const source = new TarSource(path);
    const fd = source.#open();
    const head = Buffer.alloc(4);
    try {
      readSync(fd, head, 0, 4, 0);
      if (detectCompression(head) !== "none") {
        throw new InvalidArgumentError(`image source ${path}`, "a compressed tarball cannot be read in place; decompress it first");
      }
    } catch (err) {
      closeSync(fd);
      throw err;
    }
    const reader = new TarReader(createReadStream("", { fd, highWaterMark: READ_CHUNK }));
    try {
      for (let h = await reader.next(); h; h = await reader.next()) {
        // A member whose name or link leads outside the archive (`../x`) is one no name in the
        // image can mean: passed over, as ctr passes over every member manifest.json does not name.
        const name = inArchive(h.path);
        if (name === undefined) continue;
        if (h.type === "file") source.#members.set(name, { offset: reader.dataOffset, size: h.size });
        else if (h.type === "link" || h.type === "symlink") {
          const target = h.type === "link" || h.linkpath.startsWith("/") ? h.linkpath : `${name.slice(0, name.lastIndexOf("/") + 1)}${h.linkpath}`;
          const link = inArchive(target);
          if (link !== undefined) source.#members.set(name, { offset: 0, size: 0, link });
        }
      }
    } catch (err) {
      throw new StorError(`image source ${path}`, describe(err), exitCodeOf(err));
    }
    return source;
  }

  /** A descriptor of the tarball, opened afresh for each stream: destroying a stream closes it. */
  #open(): number {
    return regularFile(openSync(this.name, O.RDONLY | O.NONBLOCK), () => `image source ${this.name}`).fd;
  }

  open(path: string, what = path): SourceFile | undefined {
    const m = this.#member(path, what);
    if (!m) return undefined;
    const stream = m.size === 0 ? Readable.from([]) : createReadStream("", { fd: this.#open(), start: m.offset, end: m.offset + m.size - 1, highWaterMark: READ_CHUNK });
    return { size: m.size, stream };
  }

  has(path: string): boolean {
    return this.#member(path) !== undefined;
  }

  /** The member holding the data of `path`, links followed. */
  #member(path: string, what = path): Member | undefined {
    let m = this.#members.get(imageParts(path, () => `${what} in ${this.name}`).join("/"));
    for (let hops = 0; m?.link !== undefined && hops < MAX_LINK_HOPS; hops++) m = this.#members.get(m.link);
    return m?.link === undefined ? m : undefined;
  }

  close(): void {}
}
