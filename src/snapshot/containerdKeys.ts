/**
 * Which snapshot keys containerd made. containerd's metadata layer never hands a proxy
 * snapshotter the client's key: it sends `NAMESPACE/ID/KEY`, where NAMESPACE is a containerd
 * identifier (letters and digits, single `.`, `_` or `-` between them, at most 76 characters),
 * ID the decimal sequence number of its bucket (from 1, so no leading zero) and KEY the client's
 * key, which containerd passes on even when empty. containerd's garbage collector removes every snapshot it does not record, so the proxy
 * shows it only keys of this shape, and the CLI asks before removing one.
 */

const CONTAINERD_KEY = /^(?=[^/]{1,76}\/)[A-Za-z0-9]+(?:[._-][A-Za-z0-9]+)*\/[1-9][0-9]{0,19}\//;

/** Whether `key` has the shape of a key containerd's metadata layer makes (`ns/id/key`). */
export function isContainerdKey(key: string): boolean {
  // Most keys have no slash where a namespace would end: they are answered without the RegExp.
  const slash = key.indexOf("/");
  return slash > 0 && slash <= 76 && CONTAINERD_KEY.test(key);
}
