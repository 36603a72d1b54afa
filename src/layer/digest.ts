/** Content digests as OCI writes them (`ALGORITHM:HEX`), and the chain IDs of layer stacks. */
import { createHash } from "node:crypto";
import { InvalidArgumentError } from "../errors.ts";

const DIGEST = /^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$/;

/** Checks that `value` is a digest stor can verify; `what` names where it came from. */
export function parseDigest(value: unknown, what: string): { algorithm: "sha256" | "sha512"; hex: string; digest: string } {
  if (typeof value !== "string" || !DIGEST.test(value)) throw new InvalidArgumentError(what, `invalid digest ${JSON.stringify(value)}`);
  const [algorithm, hex] = value.split(":") as ["sha256" | "sha512", string];
  return { algorithm, hex, digest: value };
}

/** The sha256 digest of `data`. */
export function sha256(data: Uint8Array | string): string {
  return `sha256:${createHash("sha256").update(data).digest("hex")}`;
}

/**
 * The chain IDs of a stack of layers from their diffIDs, bottom first, as containerd's
 * identity.ChainIDs: the first is its diffID, each next is sha256 of "PARENT_CHAIN DIFFID".
 */
export function chainIDs(diffIDs: readonly string[]): string[] {
  const out: string[] = [];
  for (const d of diffIDs) out.push(out.length === 0 ? d : sha256(`${out.at(-1)} ${d}`));
  return out;
}
