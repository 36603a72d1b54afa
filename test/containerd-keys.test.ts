/** The shape of the snapshot keys containerd's metadata layer makes, which stor's proxy and CLI tell apart. */
import { expect, test } from "bun:test";
import { isContainerdKey } from "../src/snapshot/containerdKeys.ts";

test("keys containerd makes: namespace, a sequence number from 1, the client's key (even empty)", () => {
  const made = ["default/1/a", "default/7/", "k8s.io/42/sha256:abc", "moby/7/a/b/c", "a-b_c.d/3/line\nbreak", `${"n".repeat(76)}/1/k`, "ns/18446744073709551615/k"];
  expect(made.filter((k) => !isContainerdKey(k))).toEqual([]);
});

test("keys containerd never makes", () => {
  const other = ["mine", "default/0/a", "default/01/a", "default/1", "default//a", "/1/a", "-ns/1/a", "ns-/1/a", "n..s/1/a", "ns/a/b", `${"n".repeat(77)}/1/k`, "ns/123456789012345678901/k"];
  expect(other.filter(isContainerdKey)).toEqual([]);
});
