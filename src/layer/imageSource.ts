/**
 * Where an image's files come from: a directory (an OCI image layout, or an unpacked `docker
 * save`) or an uncompressed tarball of one (`docker save` output). A tarball is indexed once;
 * its files are then read in place, by offset, never copied out or held in memory.
 */
import { closeSync, createReadStream, fstatSync, openSync, readSync, statSync } from "../nodeFs.ts";
import { Readable } from "node:stream";
import { InvalidArgumentError, NotFoundError, StorError, describe, exitCodeOf } from "../errors.ts";
import { O, RESOLVE, openat2 } from "../sys/openat2.ts";
import { ConfinedDir } from "./confined.ts";
import { detectCompression } from "./compression.ts";
import { entryParts } from "./paths.ts";
import { TarReader } from "./tarReader.ts";

/** JSON documents (index, manifest, config) larger than this are refused. */
const MAX_JSON_BYTES = 16 << 20;
const MAX_LINK_HOPS = 16;
const READ_CHUNK = 1 << 20;

/** One file of an image source, open for reading. */
export interface SourceFile {
  size: number;
  stream: Readable;
}

/** The files of an image, by `/`-separated path relative to the source's top. */
export interface ImageSource {
  readonly name: string;
  /** Opens the file at `path`, or returns undefined when the source has none. */
  open(path: string): SourceFile | undefined;
  /** True when the source has a file at `path`. */
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

/** A directory; names are resolved inside it, so a crafted path or symlink cannot leave it. */
class DirSource implements ImageSource {
  readonly name: string;
  readonly #dir: ConfinedDir;

  constructor(path: string) {
    this.name = path;
    this.#dir = new ConfinedDir(path);
  }

  open(path: string): SourceFile | undefined {
    const fd = this.#openFile(path, O.RDONLY);
    return fd === undefined ? undefined : { size: fstatSync(fd).size, stream: createReadStream("", { fd, highWaterMark: READ_CHUNK }) };
  }

  has(path: string): boolean {
    const fd = this.#openFile(path, O.PATH);
    if (fd !== undefined) closeSync(fd);
    return fd !== undefined;
  }

  /** A descriptor of regular file `path`, or undefined. */
  #openFile(path: string, flags: number): number | undefined {
    const fd = openat2(this.#dir.fd, path, flags, RESOLVE.IN_ROOT | RESOLVE.NO_MAGICLINKS);
    if (fd < 0) return undefined;
    if (fstatSync(fd).isFile()) return fd;
    closeSync(fd);
    return undefined;
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

/** An uncompressed tarball, read in place. */
class TarSource implements ImageSource {
  readonly name: string;
  readonly #members: Map<string, Member>;

  private constructor(path: string, members: Map<string, Member>) {
    this.name = path;
    this.#members = members;
  }

  /** Reads the tarball's headers once and remembers where every file is. */
  static async index(path: string): Promise<TarSource> {
    const head = Buffer.alloc(4);
    const fd = openSync(path, "r");
    try {
      readSync(fd, head, 0, 4, 0);
    } finally {
      closeSync(fd);
    }
    if (detectCompression(head) !== "none") {
      throw new InvalidArgumentError(`image source ${path}`, "a compressed tarball cannot be read in place; decompress it first");
    }
    const members = new Map<string, Member>();
    const reader = new TarReader(createReadStream(path, { highWaterMark: READ_CHUNK }));
    try {
      for (let h = await reader.next(); h; h = await reader.next()) {
        const name = entryParts(h.path).join("/");
        if (h.type === "file") members.set(name, { offset: reader.dataOffset, size: h.size });
        else if (h.type === "link") members.set(name, { offset: 0, size: 0, link: entryParts(h.linkpath).join("/") });
        else if (h.type === "symlink") {
          const target = h.linkpath.startsWith("/") ? h.linkpath : `${name.slice(0, name.lastIndexOf("/") + 1)}${h.linkpath}`;
          members.set(name, { offset: 0, size: 0, link: entryParts(target).join("/") });
        }
      }
    } catch (err) {
      throw new StorError(`image source ${path}`, describe(err), exitCodeOf(err));
    }
    return new TarSource(path, members);
  }

  open(path: string): SourceFile | undefined {
    const m = this.#member(path);
    if (!m) return undefined;
    const stream = m.size === 0 ? Readable.from([]) : createReadStream(this.name, { start: m.offset, end: m.offset + m.size - 1, highWaterMark: READ_CHUNK });
    return { size: m.size, stream };
  }

  has(path: string): boolean {
    return this.#member(path) !== undefined;
  }

  /** The member holding the data of `path`, links followed. */
  #member(path: string): Member | undefined {
    let m = this.#members.get(entryParts(path).join("/"));
    for (let hops = 0; m?.link !== undefined && hops < MAX_LINK_HOPS; hops++) m = this.#members.get(m.link);
    return m?.link === undefined ? m : undefined;
  }

  close(): void {}
}
