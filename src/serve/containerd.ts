/**
 * containerd's snapshots gRPC service (`containerd.services.snapshots.v1.Snapshots`) over one
 * {@link SnapshotService}: what containerd calls on a `[proxy_plugins]` snapshotter. Each call
 * runs the service method the CLI runs, in the same SQLite transactions, so socket calls and
 * stor commands serialise on the same locks and see the same snapshots. Calls that read only
 * metadata run here; those that work the disk run on {@link Threads}.
 *
 * containerd's metadata layer names the snapshots it makes `NAMESPACE/ID/KEY`, and its garbage
 * collector removes every snapshot List shows that it does not record. So that it never sees,
 * let alone deletes, what a stor command made, List (containerd's Walk) shows only keys of that
 * form, and Remove refuses any other (FailedPrecondition); those are removed with `stor snapshot
 * rm`. The other calls answer for every key, as the CLI does.
 */
import * as grpc from "@grpc/grpc-js";
import { fromJSON } from "@grpc/proto-loader";
import { Root, common, parse } from "protobufjs";
import { ExitCode, InvalidArgumentError, PreconditionError, describe, exitCodeOf } from "../errors.ts";
import { log, logCall, logEnabled } from "../log.ts";
import { isContainerdKey } from "../snapshot/containerdKeys.ts";
import { stringMap } from "../stringMap.ts";
import type { Info, SnapshotService } from "../snapshot/service.ts";
import type { Mount } from "../sys/mount.ts";
import { snapshotFilter } from "./filters.ts";
import type { Threads } from "./threads.ts";
import mountProto from "./mount.proto" with { type: "text" };
import snapshotsProto from "./snapshots.proto" with { type: "text" };

const SERVICE = "containerd.services.snapshots.v1.Snapshots";
const WELL_KNOWN = ["google/protobuf/empty.proto", "google/protobuf/field_mask.proto", "google/protobuf/timestamp.proto"];
/** Infos per List message: containerd's own server sends them in batches too. */
const LIST_BATCH = 100;

/**
 * The Snapshots service definition from the embedded schema, messages with snake_case fields. A
 * request whose strings are not UTF-8 is refused, as Go's protobuf refuses it (proto3 strings are
 * UTF-8): decoded, each bad byte would be U+FFFD, and two keys that differ only there one key.
 */
export function snapshotsDefinition(): grpc.ServiceDefinition {
  const root = new Root();
  for (const file of WELL_KNOWN) root.addJSON(common.get(file)!.nested!);
  for (const text of [mountProto, snapshotsProto]) parse(text, root, { keepCase: true });
  const pkg = fromJSON(root.toJSON(), { keepCase: true, longs: Number, enums: String, defaults: true });
  const service = pkg[SERVICE] as grpc.ServiceDefinition;
  for (const method of Object.values(service)) {
    const decode = method.requestDeserialize;
    method.requestDeserialize = (bytes: Buffer) => refuseReplacedBytes(decode(bytes), bytes);
  }
  return service;
}

/** The UTF-8 bytes of U+FFFD, which a decoder puts for each byte that is not UTF-8. */
const REPLACEMENT = Buffer.from("\ufffd");

/**
 * `message`, decoded from `bytes`, unless its strings hold more U+FFFD than `bytes` spell out:
 * then some stand for bytes that were not UTF-8, and the request is refused (grpc-js answers
 * Internal, as grpc-go answers a request it cannot unmarshal).
 */
function refuseReplacedBytes<T>(message: T, bytes: Buffer): T {
  const decoded = replacementsIn(message);
  if (decoded === 0) return message;
  let spelled = 0;
  for (let at = bytes.indexOf(REPLACEMENT); at >= 0; at = bytes.indexOf(REPLACEMENT, at + REPLACEMENT.length)) spelled++;
  if (decoded > spelled) throw new Error("string field contains invalid UTF-8");
  return message;
}

/** How many U+FFFD the strings of `value` hold, map keys included. */
function replacementsIn(value: unknown): number {
  if (typeof value === "string") {
    let n = 0;
    for (let at = value.indexOf("\ufffd"); at >= 0; at = value.indexOf("\ufffd", at + 1)) n++;
    return n;
  }
  if (typeof value !== "object" || value === null) return 0;
  let n = 0;
  for (const [k, v] of Object.entries(value)) n += (Array.isArray(value) ? 0 : replacementsIn(k)) + replacementsIn(v);
  return n;
}

interface Timestamp {
  seconds: number;
  nanos: number;
}

/** Info as the schema has it. */
interface ProtoInfo {
  name: string;
  parent: string;
  kind: "UNKNOWN" | "VIEW" | "ACTIVE" | "COMMITTED";
  created_at: Timestamp | null;
  updated_at: Timestamp | null;
  labels: Record<string, string>;
}

interface KeyRequest {
  key: string;
}
interface CreateRequest extends KeyRequest {
  parent: string;
  labels: Record<string, string>;
}
interface CommitRequest extends CreateRequest {
  name: string;
}
interface UpdateRequest {
  info: ProtoInfo | null;
  update_mask: { paths: string[] } | null;
}
interface ListRequest {
  filters: string[];
}

/** An RFC 3339 time with up to nanoseconds, as the service records them, as a protobuf Timestamp. */
function timestamp(rfc3339: string): Timestamp {
  const m = /^(.*?)(?:\.(\d{1,9}))?Z$/.exec(rfc3339);
  const ms = Date.parse(`${m?.[1] ?? rfc3339}Z`);
  return { seconds: Math.floor(ms / 1000), nanos: Number((m?.[2] ?? "").padEnd(9, "0")) };
}

function protoInfo(i: Info): ProtoInfo {
  return {
    name: i.name,
    parent: i.parent ?? "",
    kind: i.kind === "active" ? "ACTIVE" : i.kind === "view" ? "VIEW" : "COMMITTED",
    created_at: timestamp(i.created),
    updated_at: timestamp(i.updated),
    labels: i.labels,
  };
}

const protoMounts = (mounts: readonly Mount[]) => ({
  mounts: mounts.map((m) => ({ type: m.Type, source: m.Source, target: "", options: m.Options })),
});

/** containerd's errdefs codes for stor's typed errors; anything else is UNKNOWN, as errdefs has it. */
const GRPC_CODES: Partial<Record<ExitCode, grpc.status>> = {
  [ExitCode.invalid]: grpc.status.INVALID_ARGUMENT,
  [ExitCode.notFound]: grpc.status.NOT_FOUND,
  [ExitCode.exists]: grpc.status.ALREADY_EXISTS,
  [ExitCode.precondition]: grpc.status.FAILED_PRECONDITION,
};

/** The call's status for what it threw. */
function failed(err: unknown): Partial<grpc.StatusObject> {
  return { code: GRPC_CODES[exitCodeOf(err)] ?? grpc.status.UNKNOWN, details: describe(err) };
}

/** What a request names, for its log line: the snapshot key, a commit's or update's name. */
const subjectOf = (req: { key?: string; name?: string; info?: { name?: string } } | null) => ({ key: req?.key, name: req?.name ?? req?.info?.name });

/**
 * A unary handler running `fn` on the request, with a signal aborted when the client cancels the
 * call; whatever it throws or rejects with becomes the call's status.
 */
function unary<Req>(method: string, fn: (req: Req, signal: AbortSignal) => object | Promise<object>): grpc.handleUnaryCall<Req, object> {
  return (call, callback) => {
    const cancel = new AbortController();
    call.on("cancelled", () => cancel.abort());
    if (logEnabled("debug")) log.debug(`${method} ${JSON.stringify(call.request)}`);
    const start = performance.now();
    const ok = (r: object) => {
      logCall(method, subjectOf(call.request as never), start);
      callback(null, r);
    };
    const fail = (err: unknown) => {
      logCall(method, subjectOf(call.request as never), start, err);
      callback(failed(err));
    };
    let reply: object | Promise<object>;
    try {
      reply = fn(call.request, cancel.signal);
    } catch (err) {
      return fail(err);
    }
    if (!(reply instanceof Promise)) return ok(reply);
    reply.then(ok, fail);
  };
}

/**
 * Streams List's answer a batch at a time, each read from the store once the one before has been
 * sent (its write's callback), so a stream whose client reads nothing holds one batch, as
 * containerd's own server, whose Send blocks, holds one. Built whole and written at once, the
 * answer stayed in memory for as long as its client did not read: 100 streams over 500 snapshots
 * with 16 KB of labels each held 800 MB. The walk is a page at a time ({@link SnapshotService.listAfter}).
 */
async function streamList(call: grpc.ServerWritableStream<ListRequest, object>, snapshots: SnapshotService): Promise<void> {
  const start = performance.now();
  let gone = false;
  const ended = new Promise<void>((done) => call.once("cancelled", done).once("close", done).once("error", done));
  void ended.then(() => (gone = true));
  try {
    const pass = snapshotFilter(call.request.filters);
    for (let after = ""; !gone; ) {
      const page = snapshots.listAfter(after, LIST_BATCH);
      if (page.length === 0) break;
      after = page[page.length - 1]!.name;
      const infos = page.filter((i) => isContainerdKey(i.name) && pass(i));
      if (infos.length > 0) await Promise.race([new Promise((done) => call.write({ info: infos.map(protoInfo) }, done)), ended]);
      if (page.length < LIST_BATCH) break;
    }
  } catch (err) {
    logCall("List", {}, start, err);
    call.emit("error", failed(err));
    return;
  }
  logCall("List", {}, start);
  if (!gone) call.end();
}

/**
 * What an update mask asks of the labels: `labels` (or no mask) replaces them all with `wanted`;
 * `labels.K` sets or (absent from `wanted`) removes K alone.
 */
function labelUpdate(wanted: Record<string, string>, paths: readonly string[]): { labels: Record<string, string>; replace: boolean } {
  const bad = paths.find((p) => p !== "labels" && !p.startsWith("labels."));
  if (bad !== undefined) throw new InvalidArgumentError(`update path "${bad}"`, "only labels and labels.KEY can be updated");
  if (paths.length === 0 || paths.includes("labels")) return { labels: wanted, replace: true };
  const labels = stringMap();
  for (const path of paths) {
    const k = path.slice("labels.".length);
    labels[k] = Object.hasOwn(wanted, k) ? wanted[k]! : "";
  }
  return { labels, replace: false };
}

/**
 * The Snapshots service over `snapshots`, for {@link grpc.Server.addService}; `threads` run the
 * same snapshotter's calls that work the disk.
 */
export function snapshotsService(snapshots: SnapshotService, threads: Threads<"snapshots">): [grpc.ServiceDefinition, grpc.UntypedServiceImplementation] {
  /**
   * The request's parent, refused as invalid when it is not committed: containerd's own
   * snapshotters answer so (InvalidArgument) where stor's CLI says failed precondition (exit 5).
   * The service checks again, in its transaction.
   */
  const committedParent = (req: CreateRequest) => {
    if (!req.parent) return undefined;
    const { kind } = snapshots.stat(req.parent);
    if (kind !== "committed") throw new InvalidArgumentError(`parent snapshot "${req.parent}"`, `is ${kind}, not committed`);
    return req.parent;
  };
  const empty = {};
  const implementation: grpc.UntypedServiceImplementation = {
    Prepare: unary<CreateRequest>("Prepare", async (r, signal) => protoMounts(await threads.runFor(signal, "prepare", r.key, committedParent(r), r.labels))),
    View: unary<CreateRequest>("View", async (r, signal) => protoMounts(await threads.runFor(signal, "view", r.key, committedParent(r), r.labels))),
    // Quick, but for undoing an apply that was killed in the snapshot: that goes to a thread.
    Mounts: unary<KeyRequest>("Mounts", async (r, signal) =>
      protoMounts(snapshots.hasInterruptedApply(r.key) ? await threads.runFor(signal, "mounts", r.key) : snapshots.mounts(r.key)),
    ),
    Commit: unary<CommitRequest>("Commit", async (r, signal) => {
      // Rebasing on commit is a capability stor does not declare; containerd never asks for it.
      if (r.parent && r.parent !== snapshots.stat(r.key).parent) {
        throw new InvalidArgumentError(`snapshot "${r.key}"`, `cannot be committed onto another parent ("${r.parent}")`);
      }
      await threads.runFor(signal, "commit", r.name, r.key, r.labels);
      return empty;
    }),
    Remove: unary<KeyRequest>("Remove", async (r, signal) => {
      if (!isContainerdKey(r.key)) {
        snapshots.stat(r.key); // a missing one is not found, as for any other key
        throw new PreconditionError(`snapshot "${r.key}"`, "not made through containerd; remove it with stor snapshot rm");
      }
      await threads.runFor(signal, "remove", r.key, true);
      return empty;
    }),
    Stat: unary<KeyRequest>("Stat", (r) => ({ info: protoInfo(snapshots.stat(r.key)) })),
    // A write: on a thread, as it may wait for the database's write lock (another stor command's
    // transaction), which on this thread would hold up every call of both sockets.
    Update: unary<UpdateRequest>("Update", async (r, signal) => {
      if (!r.info) throw new InvalidArgumentError("update", "no snapshot info");
      const key = r.info.name;
      const { labels, replace } = labelUpdate(r.info.labels, r.update_mask?.paths ?? []);
      await threads.runFor(signal, "updateLabels", key, labels, replace);
      return { info: protoInfo(snapshots.stat(key)) };
    }),
    List: (call: grpc.ServerWritableStream<ListRequest, object>) => void streamList(call, snapshots),
    Usage: unary<KeyRequest>("Usage", (r, signal) => threads.runFor(signal, "usage", r.key)),
    Cleanup: unary<unknown>("Cleanup", async (_, signal) => {
      const removed = await threads.runFor(signal, "cleanup");
      if (removed.length > 0) log.info(`cleanup removed ${removed.join(", ")}`);
      return empty;
    }),
  };
  return [snapshotsDefinition(), implementation];
}
