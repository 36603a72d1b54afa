/**
 * The floor under `stor snapshot apply` (compiled by floors.ts's applyFloor): `applyFloor LAYER DIR`
 * extracts an uncompressed layer into the empty directory DIR and prints its diffID, as little as
 * that can be done on this runtime. It keeps stor's shape, the part any apply in Bun must have: a
 * worker thread reads the file into a ring of shared buffers and hashes each, while the main thread
 * parses the headers and makes each entry through libc (bun:ffi) with its owner, mode, xattrs and
 * times. Nothing else: no confinement (names are trusted), no journal, no whiteouts, no checks of
 * the headers, no progress. For the layers the benchmark makes (GNU tar's pax and stor's own).
 */
import { dlopen, FFIType } from "bun:ffi";

const { ptr, i32, u32, i64, u64 } = FFIType;
const { symbols: libc } = dlopen("libc.so.6", {
  open: { args: [ptr, i32, u32], returns: i32 },
  pwrite: { args: [i32, ptr, u64, i64], returns: i64 },
  close: { args: [i32], returns: i32 },
  mkdir: { args: [ptr, u32], returns: i32 },
  symlink: { args: [ptr, ptr], returns: i32 },
  link: { args: [ptr, ptr], returns: i32 },
  mknod: { args: [ptr, u32, u64], returns: i32 },
  fchown: { args: [i32, u32, u32], returns: i32 },
  fchmod: { args: [i32, u32], returns: i32 },
  lchown: { args: [ptr, u32, u32], returns: i32 },
  chmod: { args: [ptr, u32], returns: i32 },
  futimens: { args: [i32, ptr], returns: i32 },
  utimensat: { args: [i32, ptr, ptr, i32], returns: i32 },
  fsetxattr: { args: [i32, ptr, ptr, u64, i32], returns: i32 },
  lsetxattr: { args: [ptr, ptr, ptr, u64, i32], returns: i32 },
  _exit: { args: [i32], returns: FFIType.void },
});
const encoder = new TextEncoder();
const decoder = new TextDecoder();
const c = (s: string) => encoder.encode(`${s}\0`);
const ok = (r: number | bigint, what: string) => {
  if (Number(r) < 0) throw new Error(`${what} failed`);
};
const [layer, root] = [process.argv[2]!, process.argv[3]!];

const SLOTS = 4;
const SLOT_BYTES = 1 << 19;
const ring = new SharedArrayBuffer(SLOTS * SLOT_BYTES);
/** Per slot: 0 free (the worker's to fill), 1 filled (the main thread's); and the length read. */
const states = new Int32Array(new SharedArrayBuffer(SLOTS * 4));
const lengths = new Int32Array(new SharedArrayBuffer(SLOTS * 4));
const worker = new Worker(
  URL.createObjectURL(
    new Blob([
      `const { openSync, readSync } = require("node:fs");
onmessage = ({ data: { layer, ring, states, lengths } }) => {
  const hasher = new Bun.CryptoHasher("sha256");
  const fd = openSync(layer, "r");
  for (let slot = 0; ; slot = (slot + 1) % ${SLOTS}) {
    Atomics.wait(states, slot, 1);
    const buf = new Uint8Array(ring, slot * ${SLOT_BYTES}, ${SLOT_BYTES});
    const n = readSync(fd, buf, 0, buf.length, null);
    hasher.update(buf.subarray(0, n));
    lengths[slot] = n;
    Atomics.store(states, slot, 1);
    Atomics.notify(states, slot);
    if (n === 0) return postMessage(hasher.digest("hex"));
  }
};`,
    ]),
  ),
);
const digest = new Promise<string>((resolve) => (worker.onmessage = (e) => resolve(e.data)));
worker.postMessage({ layer, ring, states, lengths });

let slot = 0;
let chunk: Uint8Array<ArrayBufferLike> = new Uint8Array(0);
let at = 0;
/** Up to `n` of the next bytes of the layer, within one buffer; undefined at its end. */
async function take(n: number): Promise<Uint8Array | undefined> {
  if (at === chunk.length) {
    if (chunk.length > 0) {
      const done = (slot + SLOTS - 1) % SLOTS;
      Atomics.store(states, done, 0);
      Atomics.notify(states, done);
    }
    const wait = Atomics.waitAsync(states, slot, 0);
    if (wait.async) await wait.value;
    chunk = new Uint8Array(ring, slot * SLOT_BYTES, lengths[slot]!);
    at = 0;
    slot = (slot + 1) % SLOTS;
    if (chunk.length === 0) return undefined;
  }
  const bytes = chunk.subarray(at, Math.min(chunk.length, at + n));
  at += bytes.length;
  return bytes;
}

/** The next 512-byte header, copied if it spans two buffers. */
async function header(): Promise<Uint8Array | undefined> {
  const first = await take(512);
  if (!first || first.length === 512) return first;
  const h = new Uint8Array(512);
  h.set(first);
  h.set((await take(512 - first.length))!, first.length);
  return h;
}

/** An entry's content, in the pieces the buffers hold, then its padding. */
async function body(size: number, each: (bytes: Uint8Array, position: number) => void): Promise<void> {
  for (let position = 0; position < size; ) {
    const bytes = (await take(size - position))!;
    each(bytes, position);
    position += bytes.length;
  }
  for (let pad = (512 - (size % 512)) % 512; pad > 0; ) pad -= (await take(pad))!.length;
}

const text = (h: Uint8Array, offset: number, length: number) => {
  const end = h.indexOf(0, offset);
  return decoder.decode(h.subarray(offset, end < 0 || end > offset + length ? offset + length : end));
};
const octal = (h: Uint8Array, offset: number, length: number) => parseInt(text(h, offset, length).trim() || "0", 8);
/** A pax time, `SECONDS[.FRACTION]`, in nanoseconds, exactly (a double would round them). */
const paxTime = (value: string) => {
  const [seconds, fraction = ""] = value.split(".");
  return BigInt(seconds!) * 1_000_000_000n + BigInt(fraction.slice(0, 9).padEnd(9, "0"));
};
const times = (ns: bigint) => new BigInt64Array([ns / 1_000_000_000n, ns % 1_000_000_000n, ns / 1_000_000_000n, ns % 1_000_000_000n]);

const dirTimes: [string, bigint][] = [];
/** What the pax header before an entry says (path, linkpath, mtime, xattrs). */
let pax = new Map<string, string>();
let longName: string | undefined;
let longLink: string | undefined;
for (let h = await header(); h && h[0] !== 0; h = await header()) {
  const type = h[156] === 0 ? "0" : String.fromCharCode(h[156]!);
  const size = octal(h, 124, 12);
  if (type === "x" || type === "L" || type === "K") {
    const pieces: Uint8Array[] = [];
    await body(size, (bytes) => pieces.push(bytes.slice()));
    const data = Buffer.concat(pieces);
    if (type === "L") longName = data.toString("utf8").replace(/\0+$/, "");
    else if (type === "K") longLink = data.toString("utf8").replace(/\0+$/, "");
    else {
      for (let i = 0; i < data.length; ) {
        const space = data.indexOf(32, i);
        const length = parseInt(data.toString("latin1", i, space));
        const record = data.toString("utf8", space + 1, i + length - 1);
        pax.set(record.slice(0, record.indexOf("=")), record.slice(record.indexOf("=") + 1));
        i += length;
      }
    }
    continue;
  }
  const prefix = text(h, 345, 155);
  const name = (pax.get("path") ?? longName ?? (prefix ? `${prefix}/` : "") + text(h, 0, 100)).replace(/^\.\//, "").replace(/\/$/, "");
  const linkpath = pax.get("linkpath") ?? longLink ?? text(h, 157, 100);
  const path = name === "." || name === "" ? root : `${root}/${name}`;
  const mode = octal(h, 100, 8) & 0o7777;
  const [uid, gid] = [octal(h, 108, 8), octal(h, 116, 8)];
  const mtime = pax.has("mtime") ? paxTime(pax.get("mtime")!) : BigInt(octal(h, 136, 12)) * 1_000_000_000n;
  const xattrs = [...pax].filter(([key]) => key.startsWith("SCHILY.xattr.")).map(([key, value]) => [c(key.slice(13)), Buffer.from(value, "latin1")] as const);
  pax = new Map();
  longName = longLink = undefined;
  if (type === "0" || type === "7") {
    const fd = libc.open(c(path), 0o1 | 0o100 | 0o1000 | 0o2000000, mode); // O_WRONLY|O_CREAT|O_TRUNC|O_CLOEXEC
    ok(fd, `open ${path}`);
    await body(size, (bytes, position) => ok(libc.pwrite(fd, bytes, bytes.length, position), `write ${path}`));
    ok(libc.fchown(fd, uid, gid), `fchown ${path}`);
    ok(libc.fchmod(fd, mode), `fchmod ${path}`);
    for (const [key, value] of xattrs) ok(libc.fsetxattr(fd, key, value, value.length, 0), `setxattr ${path}`);
    ok(libc.futimens(fd, times(mtime)), `futimens ${path}`);
    libc.close(fd);
    continue;
  }
  await body(size, () => {});
  const p = c(path);
  if (type === "1") {
    ok(libc.link(c(`${root}/${linkpath.replace(/^\.\//, "")}`), p), `link ${path}`);
    continue;
  }
  if (type === "5") {
    if (path !== root) ok(libc.mkdir(p, 0o700), `mkdir ${path}`);
    dirTimes.push([path, mtime]);
  } else if (type === "2") ok(libc.symlink(c(linkpath), p), `symlink ${path}`);
  else ok(libc.mknod(p, (type === "3" ? 0o20000 : type === "4" ? 0o60000 : 0o10000) | mode, BigInt(octal(h, 329, 8) * 256 + octal(h, 337, 8))), `mknod ${path}`);
  ok(libc.lchown(p, uid, gid), `lchown ${path}`);
  if (type !== "2") ok(libc.chmod(p, mode), `chmod ${path}`);
  for (const [key, value] of xattrs) ok(libc.lsetxattr(p, key, value, value.length, 0), `setxattr ${path}`);
  if (type !== "5") ok(libc.utimensat(-100, p, times(mtime), 0x100), `utimensat ${path}`); // AT_FDCWD, AT_SYMLINK_NOFOLLOW
}
// Directory times last, deepest first: making their entries changed them.
for (const [path, mtime] of dirTimes.reverse()) ok(libc.utimensat(-100, c(path), times(mtime), 0x100), `utimensat ${path}`);
console.log(`sha256:${await digest}`);
libc._exit(0);
