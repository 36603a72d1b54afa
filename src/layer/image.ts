/**
 * Finding an image's layers in a source: through an OCI image layout's `index.json` (nested
 * indexes included, the manifest for this platform chosen as containerd's default matcher would)
 * or a `docker save` archive's `manifest.json`. Every blob named by digest is verified on reading:
 * its length against its descriptor before a byte is read, its content as it is read.
 */
import { createHash } from "node:crypto";
import { InvalidArgumentError, NotFoundError, describe } from "../errors.ts";
import { parseDigest } from "./digest.ts";
import { MAX_JSON_BYTES, readSmallFile, type ImageSource, type SourceFile } from "./imageSource.ts";
import { hostPlatform, hostRank } from "./platform.ts";

/** One blob: where it is in the source and, for OCI, the digest and length its descriptor gives it. */
export interface LayerBlob {
  path: string;
  digest?: string;
  size?: number;
}

/** An opened blob: its chunks, checked as they are read, the last throwing unless they are the blob its descriptor names. */
export interface OpenBlob extends SourceFile {
  chunks: AsyncGenerator<Buffer>;
}

/** What unpacking needs of an image. */
export interface Image {
  layers: LayerBlob[];
  /** From the config's rootfs.diff_ids: the digests of the uncompressed layers, bottom first. */
  diffIDs: string[];
}

interface Descriptor {
  digest?: unknown;
  size?: unknown;
  platform?: unknown;
  annotations?: unknown;
}

/**
 * The image in `source` for this platform; where the source holds several, the one named `name`
 * (as `docker save` tags it, or as the layout's index.json names it: see {@link sameImageName}).
 */
export async function findImage(source: ImageSource, name?: string): Promise<Image> {
  if (source.has("index.json")) return ociImage(source, name);
  if (source.has("manifest.json")) return dockerImage(source, name);
  throw new InvalidArgumentError(`image source ${source.name}`, "neither an OCI image layout (index.json) nor a docker save archive (manifest.json)");
}

/**
 * Whether image names `a` and `b` name the same image, as Docker reads a name: `alpine` is
 * `docker.io/library/alpine:latest`, `user/app:1` is `docker.io/user/app:1`. A layout's index may
 * name an image by its tag alone (`org.opencontainers.image.ref.name: "3.19"`), which is matched
 * as given.
 */
export function sameImageName(a: string, b: string): boolean {
  return a === b || fullImageName(a) === fullImageName(b);
}

function fullImageName(ref: string): string {
  const at = ref.indexOf("@");
  let name = at < 0 ? ref : ref.slice(0, at);
  let suffix = at < 0 ? "" : ref.slice(at);
  const colon = name.lastIndexOf(":");
  if (colon > name.lastIndexOf("/")) {
    suffix = name.slice(colon) + suffix;
    name = name.slice(0, colon);
  } else if (at < 0) {
    suffix = ":latest";
  }
  const first = name.split("/")[0]!;
  if (!name.includes("/")) name = `docker.io/library/${name}`;
  else if (!first.includes(".") && !first.includes(":") && first !== "localhost") name = `docker.io/${name}`;
  return name + suffix;
}

/** The names an index.json descriptor gives its image: OCI's annotation, and containerd's. */
function descriptorNames(d: Descriptor): string[] {
  const annotations = d.annotations;
  if (typeof annotations !== "object" || annotations === null) return [];
  const names: string[] = [];
  for (const key of ["io.containerd.image.name", "org.opencontainers.image.ref.name"]) {
    const value = (annotations as Record<string, unknown>)[key];
    if (typeof value === "string" && value !== "") names.push(value);
  }
  return names;
}

const blobPath = (digest: string) => `blobs/${digest.replace(":", "/")}`;

/** Parses the JSON document at `path`. */
async function readJson(source: ImageSource, path: string, data?: Buffer): Promise<unknown> {
  try {
    return JSON.parse((data ?? (await readSmallFile(source, path))).toString("utf8"));
  } catch (err) {
    if (err instanceof SyntaxError) throw new InvalidArgumentError(`${path} in ${source.name}`, `invalid JSON: ${describe(err)}`);
    throw err;
  }
}

/** The blob an OCI descriptor names. */
function ociBlob(d: Descriptor, what: string): Required<LayerBlob> {
  const { digest } = parseDigest(d.digest, what);
  if (!Number.isSafeInteger(d.size) || (d.size as number) < 0) throw new InvalidArgumentError(`${what} ${digest}`, `invalid size ${JSON.stringify(d.size)}`);
  return { path: blobPath(digest), digest, size: d.size as number };
}

/**
 * Opens `blob`. A file whose length is not the descriptor's is refused before a byte is read, as
 * containerd refuses it, so a huge or sparse file claiming to be small costs nothing.
 */
export function openBlob(source: ImageSource, blob: LayerBlob, what: string): OpenBlob {
  const f = source.open(blob.path, what);
  if (!f) throw new NotFoundError(`${what} in ${source.name}`);
  if (blob.size !== undefined && f.size !== blob.size) {
    f.stream.destroy();
    throw new InvalidArgumentError(`${what} in ${source.name}`, `is ${f.size} bytes, where its descriptor says ${blob.size}`);
  }
  return { ...f, chunks: verified(f, blob, `${what} in ${source.name}`) };
}

async function* verified(f: SourceFile, blob: LayerBlob, what: string): AsyncGenerator<Buffer> {
  const hash = blob.digest ? createHash(parseDigest(blob.digest, what).algorithm) : undefined;
  let length = 0;
  try {
    for await (const chunk of f.stream) {
      length += (chunk as Buffer).length;
      hash?.update(chunk as Buffer);
      yield chunk as Buffer;
    }
  } finally {
    f.stream.destroy();
  }
  if (length !== f.size) throw new InvalidArgumentError(what, `changed while it was read (${f.size} bytes, then ${length})`);
  if (hash && `${blob.digest!.split(":")[0]}:${hash.digest("hex")}` !== blob.digest) throw new InvalidArgumentError(what, "content does not match its digest");
}

/** Reads and verifies the JSON blob that descriptor `d` names. */
async function readBlobJson(source: ImageSource, d: Descriptor, what: string): Promise<Record<string, unknown>> {
  const blob = ociBlob(d, what);
  const named = `${what} ${blob.digest}`;
  if (blob.size > MAX_JSON_BYTES) throw new InvalidArgumentError(`${named} in ${source.name}`, `${blob.size} bytes is too large for a JSON document`);
  const chunks: Buffer[] = [];
  for await (const c of openBlob(source, blob, named).chunks) chunks.push(c);
  return object(await readJson(source, blob.path, Buffer.concat(chunks)), named);
}

function object(value: unknown, what: string): Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw new InvalidArgumentError(what, "not a JSON object");
  return value as Record<string, unknown>;
}

function array(value: unknown, what: string): unknown[] {
  if (!Array.isArray(value)) throw new InvalidArgumentError(what, "not a JSON array");
  return value;
}

/**
 * The descriptors of an index to follow. Those that name a platform are one image for several
 * platforms, of which the best this host runs is taken, as containerd's matcher ranks them (the
 * first of equals). A nested index is one image: as containerd, one descriptor of it is taken, one
 * naming no platform only when none matches. In index.json each descriptor naming no platform is an
 * image of its own (a tag).
 */
function chosen(descriptors: Descriptor[], nested: boolean): Descriptor[] {
  let best: { d: Descriptor; rank: number } | undefined;
  for (const d of descriptors) {
    const rank = d.platform == null ? -1 : hostRank(object(d.platform, "descriptor platform"));
    if (rank >= 0 && (!best || rank < best.rank)) best = { d, rank };
  }
  const all = [...(best ? [best.d] : []), ...descriptors.filter((d) => d.platform == null)];
  return nested ? all.slice(0, 1) : all;
}

/** Indexes nested deeper than this are refused; with {@link MAX_DOCUMENTS}, it bounds the walk. */
const MAX_DEPTH = 4;
/** Manifests and indexes read for one image at most. */
const MAX_DOCUMENTS = 1000;

async function ociImage(source: ImageSource, name: string | undefined): Promise<Image> {
  /** Manifests found for this platform, by digest, with the names index.json gives them. */
  const found = new Map<string, { manifest: Record<string, unknown>; names: Set<string> }>();
  /** Each document is read once, however many indexes name it: a walk of every path was exponential. */
  const read = new Map<string, Set<string>>();
  const visit = async (index: Record<string, unknown>, what: string, depth: number, names: readonly string[]) => {
    if (depth > MAX_DEPTH) throw new InvalidArgumentError(what, "indexes nested too deeply");
    let descriptors = array(index.manifests, `${what}: manifests`).map((entry) => object(entry, `${what}: descriptor`) as Descriptor);
    if (depth === 0 && name !== undefined) {
      descriptors = descriptors.filter((d) => descriptorNames(d).some((n) => sameImageName(n, name)));
      if (descriptors.length === 0) throw new NotFoundError(`image "${name}" in ${source.name}`);
    }
    for (const d of chosen(descriptors, depth > 0)) {
      const { digest } = parseDigest(d.digest, "manifest");
      const named = depth === 0 ? descriptorNames(d) : names;
      const seen = read.get(digest);
      if (seen) {
        for (const n of named) seen.add(n); // another name of a document already read
        continue;
      }
      const docNames = new Set(named);
      read.set(digest, docNames);
      if (read.size > MAX_DOCUMENTS) throw new InvalidArgumentError(`image source ${source.name}`, `names more than ${MAX_DOCUMENTS} manifests and indexes`);
      const doc = await readBlobJson(source, d, "manifest");
      if (Array.isArray(doc.manifests)) await visit(doc, `index ${digest}`, depth + 1, named);
      else found.set(digest, { manifest: doc, names: docNames });
    }
  };
  await visit(object(await readJson(source, "index.json"), "index.json"), "index.json", 0, []);
  // What a manifest is for is its config's to say, as containerd reads it: an artifact (an SBOM, a
  // signature) is no image, and a manifest no index gave a platform is for its config's.
  const images = new Map<string, { manifest: Record<string, unknown>; config: Record<string, unknown>; names: Iterable<string> }>();
  for (const [digest, { manifest, names }] of found) {
    const descriptor = object(manifest.config, "manifest config");
    if (typeof descriptor.mediaType === "string" && !IMAGE_CONFIGS.has(descriptor.mediaType)) continue;
    const config = await readBlobJson(source, descriptor, "config");
    if (hostRank(config) >= 0) images.set(digest, { manifest, config, names });
  }
  const { manifest, config } = single(images, source);
  const layers = array(manifest.layers, "manifest layers").map((l, i) => ociBlob(object(l, `layer ${i + 1}`), `layer ${i + 1}`));
  return { layers, diffIDs: diffIDsOf(config, layers.length) };
}

/** The media types of an image's config, OCI's and Docker's; a manifest with another config is an artifact's. */
const IMAGE_CONFIGS = new Set(["application/vnd.oci.image.config.v1+json", "application/vnd.docker.container.image.v1+json"]);

async function dockerImage(source: ImageSource, name: string | undefined): Promise<Image> {
  let entries = array(await readJson(source, "manifest.json"), "manifest.json").map((e) => object(e, "manifest.json entry"));
  const tags = (e: Record<string, unknown>) => (e.RepoTags == null ? [] : array(e.RepoTags, "manifest.json RepoTags").map((t, i) => text(t, `manifest.json RepoTags[${i}]`)));
  if (name !== undefined) {
    entries = entries.filter((e) => tags(e).some((t) => sameImageName(t, name)));
    if (entries.length === 0) throw new NotFoundError(`image "${name}" in ${source.name}`);
  }
  const byConfig = new Map<string, Record<string, unknown> & { names: string[] }>();
  for (const e of entries) {
    const config = text(e.Config, "manifest.json Config");
    byConfig.set(config, { ...e, names: [...(byConfig.get(config)?.names ?? []), ...tags(e)] });
  }
  const entry = single(byConfig, source);
  const path = entry.Config as string; // a string, checked above
  const config = object(await readJson(source, path), `config ${path}`);
  const { os, architecture } = hostPlatform();
  if (hostRank(config) < 0) throw new NotFoundError(`image for ${os}/${architecture} in ${source.name}`);
  const layers = array(entry.Layers, "manifest.json Layers").map((p, i) => ({ path: text(p, `manifest.json Layers[${i}]`) }));
  return { layers, diffIDs: diffIDsOf(config, layers.length) };
}

function text(value: unknown, what: string): string {
  if (value === undefined) throw new InvalidArgumentError(what, "missing");
  if (typeof value !== "string") throw new InvalidArgumentError(what, `${JSON.stringify(value)} is not a string`);
  return value;
}

/** The one image of a source; several distinct ones for this platform are ambiguous, their names listed. */
function single<T extends { names: Iterable<string> }>(images: Map<string, T>, source: ImageSource): T {
  const { os, architecture } = hostPlatform();
  if (images.size === 0) throw new NotFoundError(`image for ${os}/${architecture} in ${source.name}`);
  if (images.size > 1) {
    const names = [...images.values()].map((i) => [...i.names].join(" or ") || "(no name)");
    throw new InvalidArgumentError(`image source ${source.name}`, `holds ${images.size} different images for ${os}/${architecture}: ${names.join(", ")}; choose one with --image`);
  }
  return [...images.values()][0]!;
}

function diffIDsOf(config: Record<string, unknown>, layerCount: number): string[] {
  const rootfs = object(config.rootfs, "config rootfs");
  const ids = array(rootfs.diff_ids, "config rootfs.diff_ids").map((d, i) => parseDigest(d, `diff_id ${i + 1}`).digest);
  if (ids.length !== layerCount) throw new InvalidArgumentError("image config", `${ids.length} diff_ids for ${layerCount} layers`);
  if (ids.length === 0) throw new InvalidArgumentError("image config", "no layers");
  return ids;
}
