/** Image names as `stor unpack --image` matches them against docker save's tags and index.json's names. */
import { describe, expect, test } from "bun:test";
import { sameImageName } from "../../src/layer/image.ts";

describe("sameImageName", () => {
  test("a short name is Docker Hub's, its tag latest unless given", () => {
    expect(sameImageName("alpine", "docker.io/library/alpine:latest")).toBe(true);
    expect(sameImageName("alpine:3.19", "docker.io/library/alpine:3.19")).toBe(true);
    expect(sameImageName("user/app:1", "docker.io/user/app:1")).toBe(true);
    expect(sameImageName("alpine", "alpine:3.19")).toBe(false);
    expect(sameImageName("user/app", "docker.io/library/app")).toBe(false);
  });

  test("a first part with a dot or a port, or localhost, is a registry", () => {
    expect(sameImageName("quay.io/x/y", "docker.io/x/y")).toBe(false);
    expect(sameImageName("quay.io/x/y", "quay.io/x/y:latest")).toBe(true);
    expect(sameImageName("localhost:5000/app", "localhost:5000/app:latest")).toBe(true);
    expect(sameImageName("localhost/app:2", "docker.io/localhost/app:2")).toBe(false);
  });

  test("a digest is part of the name; a tag alone (as a layout may name an image) matches itself", () => {
    expect(sameImageName("alpine@sha256:abc", "docker.io/library/alpine@sha256:abc")).toBe(true);
    expect(sameImageName("alpine@sha256:abc", "alpine")).toBe(false);
    expect(sameImageName("3.19", "3.19")).toBe(true);
    expect(sameImageName("3.19", "3.20")).toBe(false);
  });
});
