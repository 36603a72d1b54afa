/**
 * `stor unpack`: a three-layer image made here with GNU tar, as an OCI image layout (a nested
 * index with a manifest for another platform besides this one) and as a `docker save` tarball,
 * becomes a chain of committed snapshots named by chain ID whose mounted tree matches the image
 * file by file. Bad images (wrong diffID, corrupt or altered blobs) are refused and leave no trace.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { gzipSync, zstdCompressSync } from "node:zlib";
import { TestRoot, isRoot, must, need, sh, type Result } from "./helpers.ts";
import { SNAPSHOTTERS, listing, oneLineError, sha256, viewListing } from "./layer-helpers.ts";

const ARCH: Record<string, string> = { x64: "amd64", arm64: "arm64", arm: "arm", ia32: "386", ppc64: "ppc64le", s390x: "s390x" };
const HOST = { os: "linux", architecture: ARCH[process.arch] ?? process.arch };
const OTHER = { os: "linux", architecture: HOST.architecture === "s390x" ? "amd64" : "s390x" };
const MT = {
  index: "application/vnd.oci.image.index.v1+json",
  manifest: "application/vnd.oci.image.manifest.v1+json",
  config: "application/vnd.oci.image.config.v1+json",
  gzip: "application/vnd.oci.image.layer.v1.tar+gzip",
  zstd: "application/vnd.oci.image.layer.v1.tar+zstd",
  none: "application/vnd.oci.image.layer.v1.tar",
};

/** A layer as the image holds it: its blob and the diffID of the tar inside. */
interface Layer {
  blob: Buffer;
  diffID: string;
  compression: "gzip" | "zstd" | "none";
}

function chainIDs(diffIDs: string[]): string[] {
  const out: string[] = [];
  for (const d of diffIDs) out.push(out.length ? sha256(`${out.at(-1)} ${d}`) : d);
  return out;
}

/** Writes blob `data` into the OCI image layout `dir`; returns its descriptor's digest and size. */
function putBlob(dir: string, data: Buffer | string): { digest: string; size: number } {
  mkdirSync(join(dir, "blobs/sha256"), { recursive: true });
  const digest = sha256(data);
  writeFileSync(join(dir, "blobs/sha256", digest.slice(7)), data);
  return { digest, size: Buffer.byteLength(data) };
}

/** Descriptor of an index of `manifests`, written into `dir`. */
const putIndex = (dir: string, manifests: object[]) => ({ mediaType: MT.index, ...putBlob(dir, JSON.stringify({ schemaVersion: 2, mediaType: MT.index, manifests })) });

/** Writes an OCI image layout of `layers` to `dir`; `platforms` picks the manifests of its nested index. */
function writeOci(dir: string, layers: Layer[], opts: { diffIDs?: string[]; platforms?: (typeof HOST)[] } = {}): { manifest: { digest: string; size: number } } {
  const put = (data: Buffer | string) => putBlob(dir, data);
  const config = put(JSON.stringify({ ...HOST, rootfs: { type: "layers", diff_ids: opts.diffIDs ?? layers.map((l) => l.diffID) }, config: {} }));
  const manifest = put(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MT.manifest,
      config: { mediaType: MT.config, ...config },
      layers: layers.map((l) => ({ mediaType: MT[l.compression], ...put(l.blob) })),
    }),
  );
  // The other platform's manifest is never written: choosing it would fail.
  const descriptors = (opts.platforms ?? [OTHER, HOST]).map((p) =>
    p === HOST ? { mediaType: MT.manifest, ...manifest, platform: p } : { mediaType: MT.manifest, digest: sha256("absent"), size: 6, platform: p },
  );
  writeFileSync(join(dir, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));
  writeIndexJson(dir, [{ ...putIndex(dir, descriptors), annotations: { "org.opencontainers.image.ref.name": "test:1" } }]);
  return { manifest };
}

function writeIndexJson(dir: string, manifests: object[]): void {
  writeFileSync(join(dir, "index.json"), JSON.stringify({ schemaVersion: 2, manifests }));
}

/**
 * `data` as one zstd frame of raw (stored) blocks whose header declares a window of 2^`windowLog`
 * bytes: valid (`zstd -d --long=31` reads it), however small the data.
 */
function zstdWithWindow(data: Buffer, windowLog: number): Buffer {
  const parts: Buffer[] = [Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0x00, (windowLog - 10) << 3])];
  for (let at = 0; at < data.length; at += 65536) {
    const block = data.subarray(at, at + 65536);
    const header = Buffer.alloc(4);
    header.writeUInt32LE((block.length << 3) | (at + block.length >= data.length ? 1 : 0));
    parts.push(header.subarray(0, 3), block);
  }
  return Buffer.concat(parts);
}

/** Writes a `docker save` tarball of `tars` (uncompressed layers) to `file`; one layer is reached through a symlink. */
function writeDockerSave(work: string, file: string, tars: Buffer[], diffIDs: string[]): void {
  const dir = join(work, "docker-save");
  const layers = tars.map((_, i) => `l${i + 1}/layer.tar`);
  for (const [i, t] of tars.entries()) {
    const real = i === tars.length - 1 ? `real${i + 1}` : `l${i + 1}`;
    mkdirSync(join(dir, real), { recursive: true });
    writeFileSync(join(dir, real, "layer.tar"), t);
    if (real !== `l${i + 1}`) must(`mkdir -p ${dir}/l${i + 1} && ln -s ../${real}/layer.tar ${dir}/l${i + 1}/layer.tar`);
  }
  writeFileSync(join(dir, "cfg.json"), JSON.stringify({ ...HOST, rootfs: { type: "layers", diff_ids: diffIDs } }));
  writeFileSync(join(dir, "manifest.json"), JSON.stringify([{ Config: "cfg.json", RepoTags: ["test:1"], Layers: layers }]));
  must(`tar -C ${dir} -cf ${file} .`);
}

/** The listing without directory times: deletions change those in the hand-made expected tree. */
const settled = (lines: string[]) => lines.map((l) => l.split(" ")).map((f) => (f[1]!.startsWith("40") ? [...f.slice(0, 4), ...f.slice(5)] : f).join(" "));

describe("unpack", () => {
  const run = isRoot();
  let work: string;
  let scratch: TestRoot;
  let layers: Layer[];
  let chain: string[];
  let expected: string[];
  beforeAll(() => {
    if (!run) return;
    scratch = new TestRoot("stor-layer-img-");
    work = scratch.dir("work");
    must(`cd ${work} && mkdir -p s1/etc s1/bin s1/lib s1/usr/lib s1/var/empty s2/etc s2/bin s2/lib s2/opt/data s3/etc s3/bin s3/opt/data &&
      echo ID=test > s1/etc/os-release && echo box > s1/etc/hostname && printf '#!/bin/sh\\n' > s1/bin/sh && chmod 755 s1/bin/sh &&
      head -c 200000 /dev/urandom > s1/lib/libc.so && ln -s lib s1/lib64 &&
      echo conf > s2/etc/app.conf && echo app > s2/bin/app && chown 1000:1000 s2/bin/app && chmod 4755 s2/bin/app &&
      head -c 100000 /dev/urandom > s2/lib/libc.so && for i in $(seq 1 30); do echo $i > s2/opt/data/$i; done &&
      touch s3/etc/.wh.os-release s3/bin/.wh.sh s3/opt/data/.wh..wh..opq && echo only > s3/opt/data/only &&
      for i in 1 2 3; do tar --format=posix --pax-option=delete=atime,delete=ctime --sort=name --numeric-owner -C s$i -cf l$i.tar .; done &&
      mkdir expected && cp -a s1/. expected/ && cp -a s2/. expected/ && rm expected/etc/os-release expected/bin/sh expected/opt/data/* &&
      cp -a s3/. expected/ && rm expected/etc/.wh.os-release expected/bin/.wh.sh expected/opt/data/.wh..wh..opq`);
    const tars = [1, 2, 3].map((i) => readFileSync(join(work, `l${i}.tar`)));
    layers = [
      { blob: gzipSync(tars[0]!), diffID: sha256(tars[0]!), compression: "gzip" },
      { blob: zstdCompressSync(tars[1]!), diffID: sha256(tars[1]!), compression: "zstd" },
      { blob: tars[2]!, diffID: sha256(tars[2]!), compression: "none" },
    ];
    chain = chainIDs(layers.map((l) => l.diffID));
    expected = settled(listing(join(work, "expected")));
    writeOci(join(work, "oci"), layers);
    writeDockerSave(work, join(work, "image.tar"), tars, layers.map((l) => l.diffID));
  });
  afterAll(() => scratch?.close());

  test.skipIf(!need(run, "needs root"))("a killed unpack's snapshot is removed by cleanup and restore once its process is gone, never while it runs", async () => {
    const root = TestRoot.for("overlay", "stor-layer-unpack-");
    const holders: Bun.Subprocess[] = [];
    try {
      const killed = root.stor(["-s", "overlay", "unpack", join(work, "oci")], { env: { STOR_FAILPOINT: "unpack:applied@2" } });
      expect(killed.code).toBe(-1); // SIGKILL, after the first layer was committed and the second applied
      const keys = () => root.ok(["-s", "overlay", "snapshot", "ls"]).split("\n").slice(1).map((l) => l.split(" ")[0]!).filter(Boolean);
      const left = keys().find((k) => k.startsWith("extract-"))!;
      expect(left).toEndWith(chain[1]!);
      // Keys of the same shape, claimed as an unpack claims its key (a lock on unpacks/KEY): by a
      // process of this pid namespace; by one in a pid namespace of its own, as in a container
      // sharing the root, whose pid means nothing here; and by one killed since (a zombie until
      // reaped: the kernel let go of its lock). One was never claimed: a user's own snapshot of
      // that shape (`snapshot prepare extract-2024-01-work`), which no cleanup may take.
      const claims = join(root.path, "snapshots/overlay/unpacks");
      const hold = async (key: string, argv: string[]) => {
        const p = Bun.spawn([...argv, "flock", "-o", join(claims, key), "sleep", "60"]); // -o: the lock is flock's own, not sleep's
        holders.push(p);
        while (sh(["flock", "-n", join(claims, key), "true"]).code === 0) await Bun.sleep(10);
        return p;
      };
      const live = `extract-${process.pid}-${Date.now()}-live`;
      const container = `extract-2147483645-${Date.now()}-container`;
      const killedNow = `extract-2147483646-${Date.now()}-killed`;
      const unclaimed = `extract-${process.pid}-1000-unclaimed`;
      for (const k of [live, container, killedNow, unclaimed]) root.ok(["-s", "overlay", "snapshot", "prepare", k]);
      await hold(live, []);
      await hold(container, ["unshare", "-p", "-f", "--mount-proc", "--kill-child"]); // its child goes with it
      (await hold(killedNow, [])).kill("SIGKILL");
      expect(root.ok(["-s", "overlay", "snapshot", "cleanup"]).split("\n").filter(Boolean).sort()).toEqual([killedNow, left].sort());
      expect(keys().filter((k) => k.startsWith("extract-")).sort()).toEqual([container, live, unclaimed].sort());
      expect(root.ok(["restore"])).toBe(""); // restore, as cleanup, leaves the user's
      expect(keys()).toContain(unclaimed);
      expect(readdirSync(claims).sort()).toEqual([container, live].sort()); // the dead ones' files went with them
      // The retry finds the first layer committed and makes the rest.
      expect(root.ok(["-s", "overlay", "unpack", join(work, "oci")]).trim()).toBe(chain[2]!);
      root.ok(["-s", "overlay", "snapshot", "rm", live, container, unclaimed]);
      // restore says what it removed.
      root.ok(["-s", "overlay", "snapshot", "rm", chain[2]!, chain[1]!, chain[0]!]);
      expect(root.stor(["-s", "overlay", "unpack", join(work, "oci")], { env: { STOR_FAILPOINT: "unpack:applied" } }).code).toBe(-1);
      const extract = keys().find((k) => k.startsWith("extract-"))!;
      expect(root.ok(["restore"])).toBe(`removed snapshot "${extract}" of overlay: left by an interrupted unpack\n`);
      expect(keys()).toEqual([]);
    } finally {
      for (const p of holders) p.kill();
      root.close();
    }
  });

  test.skipIf(!need(run, "needs root"))("an unpack killed after it claimed its key, before it made the snapshot: cleanup removes the claim, and leaves a live one", async () => {
    const root = TestRoot.for("native", "stor-layer-claim-");
    let holder: Bun.Subprocess | undefined;
    try {
      expect(root.stor(["-s", "native", "unpack", join(work, "oci")], { env: { STOR_FAILPOINT: "unpack:claimed" } }).code).toBe(-1);
      const claims = join(root.path, "snapshots/native/unpacks");
      const dead = readdirSync(claims);
      expect(dead).toHaveLength(1);
      // One an unpack holds while it makes its snapshot.
      const live = `extract-${process.pid}-${Date.now()}-live`;
      holder = Bun.spawn(["flock", "-o", join(claims, live), "sleep", "60"]);
      while (sh(["flock", "-n", join(claims, live), "true"]).code === 0) await Bun.sleep(10);
      expect(root.ok(["-s", "native", "snapshot", "cleanup"])).toBe("");
      expect(readdirSync(claims)).toEqual([live]);
      holder.kill();
      await holder.exited;
      expect(root.ok(["restore"])).toBe("");
      expect(readdirSync(claims)).toEqual([]);
    } finally {
      holder?.kill();
      root.close();
    }
  });

  test.skipIf(!need(run, "needs root"))("a key of an unpack's shape that holds a path is no unpack's: cleanup and restore keep it, and unlink nothing it names", () => {
    const root = TestRoot.for("native", "stor-layer-unpack-");
    try {
      const victim = join(root.dir("victim"), "file");
      writeFileSync(victim, "host file");
      const keys = ["extract-1-2-x/../../metadata.db", `extract-1-2-a/${"../".repeat(12)}${victim.slice(1)}`, "keep"];
      for (const k of keys) root.ok(["-s", "native", "snapshot", "prepare", k]);
      expect(root.ok(["-s", "native", "snapshot", "cleanup"])).toBe("");
      expect(root.ok(["restore"])).toBe("");
      expect(readFileSync(victim, "utf8")).toBe("host file");
      const listed = root.ok(["-s", "native", "snapshot", "ls"]).split("\n").slice(1).filter(Boolean).map((l) => l.split(/\s+/)[0]);
      expect(listed.sort()).toEqual([...keys].sort());
    } finally {
      root.close();
    }
  });

  for (const sn of SNAPSHOTTERS) {
    test.skipIf(!need(run, "needs root"))(`on ${sn}: OCI layout, then docker save, give one chain named by chain ID`, () => {
      const root = TestRoot.for(sn, "stor-layer-unpack-");
      try {
        expect(root.ok(["-s", sn, "unpack", join(work, "oci")]).trim()).toBe(chain[2]!);
        for (const [i, id] of chain.entries()) {
          const info = JSON.parse(root.ok(["-s", sn, "snapshot", "info", id]));
          expect(info.Kind).toBe("Committed");
          expect(info.Parent).toBe(i ? chain[i - 1] : undefined);
        }
        expect(settled(viewListing(root, sn, chain[2]!))).toEqual(expected);
        // The same layers from a docker save tarball: all there already, nothing new.
        const before = root.ok(["-s", sn, "snapshot", "ls"]);
        expect(root.ok(["-s", sn, "unpack", join(work, "image.tar")]).trim()).toBe(chain[2]!);
        expect(root.ok(["-s", sn, "snapshot", "ls"])).toBe(before);
      } finally {
        root.close();
      }
      const fresh = TestRoot.for(sn, "stor-layer-unpack-");
      try {
        expect(fresh.ok(["-s", sn, "unpack", join(work, "image.tar")]).trim()).toBe(chain[2]!);
        expect(settled(viewListing(fresh, sn, chain[2]!))).toEqual(expected);
      } finally {
        fresh.close();
      }
    });
  }

  /** Unpacks a broken variant of the image: one line, exit 2, only the good bottom layer committed. */
  function refused(name: string, variant: (dir: string) => void, message: RegExp): void {
    test.skipIf(!need(run, "needs root"))(name, () => {
      const dir = join(work, name.replace(/\W+/g, "-"));
      variant(dir);
      const root = new TestRoot("stor-layer-bad-");
      try {
        const r = root.stor(["-s", "overlay", "unpack", dir], { timeout: 60_000 });
        expect(r.code).toBe(2);
        expect(oneLineError(r.stderr)).toBe(true);
        expect(r.stderr).toMatch(message);
        const keys = JSON.parse(root.ok(["-s", "overlay", "snapshot", "ls", "--format", "json"])).map((i: { Name: string }) => i.Name);
        expect(keys).toEqual([chain[0]]);
      } finally {
        root.close();
      }
    });
  }

  refused("a wrong diffID is refused", (d) => writeOci(d, layers, { diffIDs: [layers[0]!.diffID, sha256("not this layer"), layers[2]!.diffID] }), /diffID sha256:\w+ does not match/);
  refused("a truncated layer is refused", (d) => writeOci(d, [layers[0]!, { ...layers[1]!, blob: layers[1]!.blob.subarray(0, 2000) }, layers[2]!]), /zstd stream: truncated/);
  refused(
    "a blob that does not match its digest is refused",
    (d) => {
      writeOci(d, layers);
      const path = join(d, "blobs/sha256", sha256(layers[1]!.blob).slice(7));
      // Another layer, padded by a zstd skippable frame to the length the descriptor gives.
      const other = zstdCompressSync(readFileSync(join(work, "l3.tar")));
      const pad = Buffer.alloc(layers[1]!.blob.length - other.length);
      pad.writeUInt32LE(0x184d2a50, 0);
      pad.writeUInt32LE(pad.length - 8, 4);
      writeFileSync(path, Buffer.concat([other, pad]));
    },
    /does not match its digest|diffID/,
  );
  // The decompressor stops at the end of the compressed stream; the blob is read to its own end
  // all the same, so its digest is checked and what follows the stream is seen.
  // zstd's frame check refuses the bytes after the last frame before the digest is known.
  for (const [compression, afterEnd] of [["gzip", /gzip stream: corrupt: 4096 bytes after its end/], ["zstd", /zstd stream: unknown frame magic number/]] as const) {
    const compressed = (tar: Buffer) => (compression === "gzip" ? gzipSync(tar) : zstdCompressSync(tar));
    refused(
      `a ${compression} blob with bytes after its stream that do not match its digest is refused`,
      (d) => {
        const tar = readFileSync(join(work, "l2.tar"));
        const [ok, forged] = [0, 0x41].map((b) => Buffer.concat([compressed(tar), Buffer.alloc(4096, b)]));
        writeOci(d, [layers[0]!, { ...layers[1]!, blob: forged!, compression }, layers[2]!]);
        writeFileSync(join(d, "blobs/sha256", sha256(forged!).slice(7)), ok!); // the same length, other bytes
      },
      compression === "gzip" ? /does not match its digest/ : afterEnd,
    );
    refused(
      `a ${compression} blob with NULs after its stream is refused, as containerd's Go reader refuses it`,
      (d) => {
        const tar = readFileSync(join(work, "l2.tar"));
        writeOci(d, [layers[0]!, { ...layers[1]!, blob: Buffer.concat([compressed(tar), Buffer.alloc(4096)]), compression }, layers[2]!]);
      },
      afterEnd,
    );
  }

  /** Unpacks `source` in a fresh root, killed if it waits: a regression must fail, not hang. */
  function unpackFresh(source: string): Result {
    const root = new TestRoot("stor-layer-bad-");
    try {
      return root.stor(["-s", "overlay", "unpack", source], { timeout: 60_000 });
    } finally {
      root.close();
    }
  }

  test.skipIf(!need(run, "needs root"))("a FIFO where a blob or the tarball should be is refused (exit 2), never read", () => {
    const dir = join(work, "fifo");
    const { manifest } = writeOci(dir, layers);
    for (const [what, digest] of [["layer 2 (%s)", sha256(layers[1]!.blob)], ["manifest %s", manifest.digest]] as const) {
      const blob = join(dir, "blobs/sha256", digest.slice(7));
      must(`rm ${blob} && mkfifo ${blob}`);
      const r = unpackFresh(dir);
      expect(r.code).toBe(2);
      expect(oneLineError(r.stderr)).toBe(true);
      expect(r.stderr).toContain(`${what.replace("%s", digest)} in ${dir}: is a FIFO, not a regular file`);
    }
    const tarball = join(work, "fifo.tar");
    must(`mkfifo ${tarball}`);
    const r = unpackFresh(tarball);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(`stor: image source ${tarball}: is a FIFO, not a regular file\n`);
  });

  test.skipIf(!need(run, "needs root"))("a docker save manifest naming a path outside the image is refused (exit 2), naming the path, what it is and the source", () => {
    const l1 = readFileSync(join(work, "l1.tar"));
    const cases = [
      { layer: "../x/layer.tar", config: "cfg.json", message: "layer 1 (../x/layer.tar)" },
      { layer: "l1/../../x/layer.tar", config: "cfg.json", message: "layer 1 (l1/../../x/layer.tar)" },
      { layer: "x/layer.tar", config: "../cfg.json", message: "../cfg.json" },
    ];
    for (const [i, c] of cases.entries()) {
      // The files the paths would reach, were `..` followed (outside) or dropped (inside).
      const dir = join(work, `outside-${i}`, "image");
      for (const d of [dir, join(dir, "..")]) {
        mkdirSync(join(d, "x"), { recursive: true });
        writeFileSync(join(d, "x/layer.tar"), l1);
        writeFileSync(join(d, "cfg.json"), JSON.stringify({ ...HOST, rootfs: { type: "layers", diff_ids: [layers[0]!.diffID] } }));
      }
      writeFileSync(join(dir, "manifest.json"), JSON.stringify([{ Config: c.config, RepoTags: [], Layers: [c.layer] }]));
      const tarball = `${dir}.tar`;
      must(`tar -C ${dir} -cf ${tarball} .`);
      for (const source of [tarball, dir]) expect(unpackFresh(source)).toEqual({ code: 2, stdout: "", stderr: `stor: ${c.message} in ${source}: leads outside the image\n` });
    }
  });

  /** A variant of the image whose second layer's blob is resized to `size` after it was written. */
  const resized = (size: string) => (d: string) => {
    writeOci(d, layers);
    must(`truncate -s ${size} ${join(d, "blobs/sha256", sha256(layers[1]!.blob).slice(7))}`);
  };
  refused("a sparse 1 TiB blob whose descriptor says it is small is refused unread", resized("1T"), /layer 2 \(sha256:\w+\) in .*: is 1099511627776 bytes, where its descriptor says \d+$/m);
  refused("a blob shorter than its descriptor is refused", resized("-1"), /layer 2 \(sha256:\w+\) in .*: is \d+ bytes, where its descriptor says \d+$/m);

  test.skipIf(!need(run, "needs root"))("an index naming the same index many times over is read once per document", () => {
    // Four levels of 60 names each: 13 million paths to the one manifest, 5 documents.
    const dir = join(work, "fan-out");
    writeOci(dir, layers);
    let top = JSON.parse(readFileSync(join(dir, "index.json"), "utf8")).manifests[0];
    for (let level = 0; level < 3; level++) top = putIndex(dir, Array(60).fill(top));
    writeIndexJson(dir, Array(60).fill(top));
    const root = new TestRoot("stor-layer-fan-");
    try {
      const r = root.stor(["-s", "overlay", "unpack", dir], { timeout: 60_000 });
      expect(r.stderr).toBe("");
      expect(r.stdout.trim()).toBe(chain[2]!);
    } finally {
      root.close();
    }
  });

  test.skipIf(!need(run, "needs root"))("indexes nested too deeply, or too many documents, are refused (exit 2)", () => {
    const deep = join(work, "deep");
    writeOci(deep, layers);
    let top = JSON.parse(readFileSync(join(deep, "index.json"), "utf8")).manifests[0];
    for (let level = 0; level < 4; level++) top = putIndex(deep, [top]);
    writeIndexJson(deep, [top]);
    let r = unpackFresh(deep);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^stor: index sha256:\w+: indexes nested too deeply\n$/);
    const wide = join(work, "wide");
    writeOci(wide, layers);
    writeIndexJson(wide, Array.from({ length: 1001 }, (_, i) => putIndex(wide, [{ mediaType: MT.manifest, digest: sha256(`absent ${i}`), size: 1, platform: OTHER }])));
    r = unpackFresh(wide);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(`stor: image source ${wide}: names more than 1000 manifests and indexes\n`);
  });

  test.skipIf(!need(run, "needs root"))("platforms are named as containerd normalizes them, and the best this host runs is taken", () => {
    const alias = ({ amd64: "x86_64", arm64: "aarch64" } as Record<string, string>)[HOST.architecture] ?? HOST.architecture.toUpperCase();
    const absent = { mediaType: MT.manifest, digest: sha256("absent"), size: 6 };
    const cases: Record<string, [object, boolean][]> = {
      // x86_64 is amd64, aarch64 arm64, and Linux linux.
      names: [[OTHER, false], [{ os: "Linux", architecture: alias }, true]],
      // A variant this host does not run comes first, and the plain one is still taken.
      variants: [[{ ...HOST, variant: HOST.architecture === "amd64" ? "v3" : "v99" }, false], [HOST, true]],
    };
    for (const [name, platforms] of Object.entries(cases)) {
      const dir = join(work, `platform-${name}`);
      const { manifest } = writeOci(dir, layers);
      writeIndexJson(dir, [putIndex(dir, platforms.map(([platform, real]) => ({ ...(real ? { mediaType: MT.manifest, ...manifest } : absent), platform })))]);
      unpacksWhole(dir);
    }
  });

  test.skipIf(!need(run, "needs root"))("a manifest no index gives a platform is for its config's, and one whose config is no image's (an SBOM) is no image, as containerd reads them", () => {
    const dir = join(work, "by-config");
    const { manifest } = writeOci(dir, layers);
    const put = (data: string | Buffer) => putBlob(dir, data);
    const forOther = put(JSON.stringify({ ...OTHER, rootfs: { type: "layers", diff_ids: [layers[0]!.diffID] } }));
    const other = put(JSON.stringify({ schemaVersion: 2, mediaType: MT.manifest, config: { mediaType: MT.config, ...forOther }, layers: [{ mediaType: MT.gzip, ...put(layers[0]!.blob) }] }));
    const sbom = put(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MT.manifest,
        artifactType: "application/spdx+json",
        config: { mediaType: "application/vnd.oci.empty.v1+json", ...put("{}") },
        layers: [{ mediaType: "application/spdx+json", ...put('{"spdxVersion":"SPDX-2.3"}') }],
        subject: { mediaType: MT.manifest, ...manifest },
      }),
    );
    writeIndexJson(dir, [{ mediaType: MT.manifest, ...other }, { mediaType: MT.manifest, ...manifest }, { mediaType: MT.manifest, ...sbom }]);
    unpacksWhole(dir);
    writeIndexJson(dir, [{ mediaType: MT.manifest, ...other }]);
    expect(unpackFresh(dir)).toEqual({ code: 3, stdout: "", stderr: `stor: image for ${HOST.os}/${HOST.architecture} in ${dir}: not found\n` });
  });

  test.skipIf(!need(run, "needs root"))("a source holding several images for this platform unpacks the one --image names, as Docker reads names; none named is ambiguous (exit 2)", () => {
    // A second image: the first layer alone.
    const dir = join(work, "two-images");
    writeOci(dir, layers);
    const put = (data: string | Buffer) => putBlob(dir, data);
    const config = put(JSON.stringify({ ...HOST, rootfs: { type: "layers", diff_ids: [layers[0]!.diffID] } }));
    const other = put(JSON.stringify({ schemaVersion: 2, mediaType: MT.manifest, config: { mediaType: MT.config, ...config }, layers: [{ mediaType: MT.gzip, ...put(layers[0]!.blob) }] }));
    const index = JSON.parse(readFileSync(join(dir, "index.json"), "utf8")).manifests;
    writeIndexJson(dir, [...index, { mediaType: MT.manifest, ...other, annotations: { "io.containerd.image.name": "docker.io/library/other:2" } }]);
    const save = join(work, "two-images.tar");
    const saved = join(work, "two-images-save");
    must(`mkdir -p ${saved} && tar -C ${saved} -xf ${join(work, "image.tar")}`);
    writeFileSync(join(saved, "cfg2.json"), JSON.stringify({ ...HOST, rootfs: { type: "layers", diff_ids: [layers[0]!.diffID] } }));
    const manifest = JSON.parse(readFileSync(join(saved, "manifest.json"), "utf8"));
    writeFileSync(join(saved, "manifest.json"), JSON.stringify([...manifest, { Config: "cfg2.json", RepoTags: ["other:2"], Layers: ["l1/layer.tar"] }]));
    must(`tar -C ${saved} -cf ${save} .`);
    for (const source of [dir, save]) {
      const root = new TestRoot("stor-layer-images-");
      try {
        expect(root.stor(["-s", "overlay", "unpack", source])).toEqual({
          code: 2,
          stdout: "",
          stderr: expect.stringMatching(new RegExp(`^stor: image source ${source}: holds 2 different images for ${HOST.os}/${HOST.architecture}: .*test:1.*, .*other:2; choose one with --image\n$`)),
        });
        expect(root.ok(["snapshot", "-s", "overlay", "ls"])).toBe("KEY PARENT KIND \n");
        expect(root.stor(["-s", "overlay", "unpack", "--image", "docker.io/library/other:2", source])).toMatchObject({ code: 0, stdout: `${chain[0]}\n` });
        expect(root.stor(["-s", "overlay", "unpack", "--image", "test:1", source])).toMatchObject({ code: 0, stdout: `${chain[2]}\n` });
        expect(root.stor(["-s", "overlay", "unpack", "--image", "other", source])).toEqual({ code: 3, stdout: "", stderr: `stor: image "other" in ${source}: not found\n` });
      } finally {
        root.close();
      }
    }
  });

  test.skipIf(!need(run, "needs root"))("a zstd layer that begins with a skippable frame (as pzstd writes) is zstd, as containerd detects it", () => {
    const dir = join(work, "zstd-skippable");
    const skippable = Buffer.alloc(24);
    skippable.writeUInt32LE(0x184d2a50, 0);
    skippable.writeUInt32LE(16, 4);
    writeOci(dir, [layers[0]!, { ...layers[1]!, blob: Buffer.concat([skippable, layers[1]!.blob]) }, layers[2]!]);
    unpacksWhole(dir);
  });

  test.skipIf(!need(run, "needs root"))("docker save: a member no name in the image can mean is passed over; a field that is no string, or an image for another architecture, is refused", () => {
    const dir = join(work, "docker-save");
    const manifest = JSON.parse(readFileSync(join(dir, "manifest.json"), "utf8"));
    const variant = (name: string, edit: (d: string) => void) => {
      const copy = join(work, `save-${name}`);
      must(`rm -rf ${copy} && cp -a ${dir} ${copy}`);
      edit(copy);
      must(`tar -C ${copy} -cf ${copy}.tar .`);
      return `${copy}.tar`;
    };
    // Outside the archive, as the member's name would have it: never read.
    const unused = variant("unused", () => {});
    must(`echo read-me > ${work}/README.txt && cd ${work}/save-unused && tar -P -rf ${unused} ../README.txt`);
    expect(must(`tar -tf ${unused}`)).toContain("../README.txt");
    expect(unpackFresh(unused)).toEqual({ code: 0, stdout: `${chain[2]}\n`, stderr: "" });
    const cases: [string, object, string][] = [
      ["no-config", [{ ...manifest[0], Config: undefined }], "manifest.json Config: missing"],
      ["layer-object", [{ ...manifest[0], Layers: [{ path: manifest[0].Layers[0] }, ...manifest[0].Layers.slice(1)] }], `manifest.json Layers[0]: {"path":"${manifest[0].Layers[0]}"} is not a string`],
    ];
    for (const [name, edited, message] of cases) {
      const tarball = variant(name, (d) => writeFileSync(join(d, "manifest.json"), JSON.stringify(edited)));
      expect(unpackFresh(tarball)).toEqual({ code: 2, stdout: "", stderr: `stor: ${message}\n` });
    }
    const foreign = variant("foreign", (d) => writeFileSync(join(d, "cfg.json"), JSON.stringify({ ...OTHER, rootfs: { type: "layers", diff_ids: layers.map((l) => l.diffID) } })));
    expect(unpackFresh(foreign)).toEqual({ code: 3, stdout: "", stderr: `stor: image for ${HOST.os}/${HOST.architecture} in ${foreign}: not found\n` });
  });

  /** Unpacking `dir` in a fresh root says nothing on stderr and prints the image's top chain ID. */
  function unpacksWhole(dir: string): void {
    const root = new TestRoot("stor-layer-unpacked-");
    try {
      const r = root.stor(["-s", "overlay", "unpack", dir]);
      expect(r.stderr).toBe("");
      expect(r.stdout.trim()).toBe(chain[2]!);
    } finally {
      root.close();
    }
  }

  /** The image with its second layer compressed by zstd with a window of 2^`windowLog` bytes. */
  const withWindow = (windowLog: number) => (d: string) =>
    writeOci(d, [layers[0]!, { ...layers[1]!, blob: zstdWithWindow(readFileSync(join(work, "l2.tar")), windowLog) }, layers[2]!]);

  test.skipIf(!need(run, "needs root"))("a zstd layer with a 256 MiB or 512 MiB window (zstd --long=28, 29) is unpacked, as containerd does", () => {
    for (const windowLog of [28, 29]) {
      const dir = join(work, `window-${windowLog}`);
      withWindow(windowLog)(dir);
      unpacksWhole(dir);
    }
  });
  refused("a zstd layer with a window over 512 MiB is refused as such, not as corrupt", withWindow(30), /zstd stream: its window is larger than 512 MiB, the most stor \(as containerd\) decodes$/m);

  test.skipIf(!need(run, "needs root"))("no manifest for this platform is not found (exit 3)", () => {
    const dir = join(work, "other-platform");
    writeOci(dir, layers, { platforms: [OTHER] });
    const root = new TestRoot("stor-layer-bad-");
    try {
      const r = root.stor(["unpack", dir]);
      expect(r.code).toBe(3);
      expect(r.stderr).toContain(`image for ${HOST.os}/${HOST.architecture}`);
    } finally {
      root.close();
    }
  });
});
