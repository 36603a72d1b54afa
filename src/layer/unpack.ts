/**
 * Unpacking an image into a chain of committed snapshots named by chain ID, as containerd's
 * unpacker names them, so that the two agree on names and stor skips what is already there.
 * Each missing layer is applied to a fresh active snapshot, checked against the config's diffID
 * and only then committed; a failure removes that active snapshot and leaves the rest alone.
 */
import { AlreadyExistsError, InvalidArgumentError, NotFoundError, PreconditionError, describe } from "../errors.ts";
import { failpoint } from "../failpoint.ts";
import { log } from "../log.ts";
import type { SnapshotService } from "../snapshot/service.ts";
import { applyToSnapshot } from "./apply.ts";
import { claimExtract, extractKey } from "./extractKey.ts";
import { chainIDs } from "./digest.ts";
import { findImage, openBlob, type LayerBlob } from "./image.ts";
import { openImageSource, type ImageSource } from "./imageSource.ts";

/** What unpacking is doing, for a progress display. */
export interface UnpackProgress {
  /** 1-based number of the layer, and how many there are. */
  layer: number;
  layers: number;
  chainID: string;
  state: "exists" | "applying" | "done";
  /** Bytes of the layer blob read so far, and its size when known. */
  bytes: number;
  size?: number;
}

/**
 * Unpacks the image at `sourcePath` with `svc`'s snapshotter; returns the top chain ID. `image`
 * names the image to unpack where the source holds several (see findImage).
 */
export async function unpack(svc: SnapshotService, sourcePath: string, onProgress: (p: UnpackProgress) => void = () => {}, image?: string): Promise<string> {
  const source = await openImageSource(sourcePath);
  try {
    const found = await findImage(source, image);
    const chain = chainIDs(found.diffIDs);
    let parent: string | undefined;
    for (const [i, chainID] of chain.entries()) {
      const progress = (state: UnpackProgress["state"], bytes = 0) =>
        onProgress({ layer: i + 1, layers: chain.length, chainID, state, bytes, size: found.layers[i]!.size });
      if (isCommitted(svc, chainID)) progress("exists");
      else await unpackLayer(svc, source, found.layers[i]!, found.diffIDs[i]!, chainID, parent, i + 1, progress);
      parent = chainID;
    }
    return chain.at(-1)!;
  } finally {
    source.close();
  }
}

function isCommitted(svc: SnapshotService, name: string): boolean {
  try {
    const info = svc.stat(name);
    if (info.kind !== "committed") throw new PreconditionError(`snapshot "${name}"`, `is ${info.kind}, where unpack needs a committed layer`);
    return true;
  } catch (err) {
    if (err instanceof NotFoundError) return false;
    throw err;
  }
}

async function unpackLayer(
  svc: SnapshotService,
  source: ImageSource,
  blob: LayerBlob,
  diffID: string,
  chainID: string,
  parent: string | undefined,
  number: number,
  progress: (state: UnpackProgress["state"], bytes?: number) => void,
): Promise<void> {
  const what = `layer ${number} (${blob.digest ?? blob.path})`;
  const file = openBlob(source, blob, what);
  const key = extractKey(chainID);
  const claim = claimExtract(svc.home, key);
  try {
    failpoint("unpack:claimed");
    svc.prepare(key, parent);
    try {
      let bytes = 0;
      const counted = async function* () {
        for await (const chunk of file.chunks) {
          bytes += chunk.length;
          progress("applying", bytes);
          yield chunk;
        }
      };
      const applied = await applyToSnapshot(svc, key, counted(), what);
      failpoint("unpack:applied");
      if (applied !== diffID) throw new InvalidArgumentError(what, `diffID ${applied} does not match ${diffID} in the image config`);
      try {
        svc.commit(chainID, key);
      } catch (err) {
        // Another unpack committed the same layer meanwhile: use theirs.
        if (!(err instanceof AlreadyExistsError)) throw err;
        svc.remove(key);
      }
      progress("done", bytes);
    } catch (err) {
      file.stream.destroy();
      try {
        svc.remove(key);
      } catch (cleanup) {
        // The first failure is the one to report; this one only leaves an active snapshot behind.
        if (!(cleanup instanceof NotFoundError)) log.warn(`remove snapshot "${key}": ${describe(cleanup)}`);
      }
      throw err;
    }
  } finally {
    claim.release();
  }
}
