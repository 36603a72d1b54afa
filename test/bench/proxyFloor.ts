/**
 * The floor under `stor serve`'s snapshots socket (compiled by floors.ts's proxyFloor):
 * `proxyFloor SOCKET` serves containerd's Snapshots API on SOCKET with grpc-js, as stor serve
 * does, over snapshots kept in a Map: no database, no directories, no mounts, no checks, no log.
 * Its schema is stor's (src/serve/containerd.ts: requests that are not UTF-8 refused, as grpc-go
 * refuses them). What containerd's calls take through it is what any proxy snapshotter on this
 * runtime takes: `ctr snapshots ls` makes containerd Stat each snapshot over the socket, one
 * after another.
 * Ends on SIGTERM.
 */
import * as grpc from "@grpc/grpc-js";
import { snapshotsDefinition } from "../../src/serve/containerd.ts";
import { useNormalJit } from "../../src/jitPolicy.ts";

useNormalJit(); // as stor serve: a process that lives on

interface Info {
  name: string;
  parent: string;
  kind: "ACTIVE" | "VIEW" | "COMMITTED";
  created_at: { seconds: number; nanos: number };
  updated_at: { seconds: number; nanos: number };
  labels: Record<string, string>;
}
const snapshots = new Map<string, Info>();
const now = () => ({ seconds: Math.floor(Date.now() / 1000), nanos: 0 });
const mounts = { mounts: [{ type: "bind", source: "/nonexistent", target: "", options: ["rbind", "ro"] }] };

type Call = grpc.ServerUnaryCall<Record<string, never>, object>;
const unary = (fn: (req: any) => object) => (call: Call, callback: grpc.sendUnaryData<object>) => {
  try {
    callback(null, fn(call.request));
  } catch (err) {
    callback({ code: grpc.status.NOT_FOUND, details: (err as Error).message });
  }
};
const get = (key: string) => {
  const info = snapshots.get(key);
  if (!info) throw new Error(`snapshot ${key} not found`);
  return info;
};
const make = (kind: Info["kind"]) =>
  unary((r) => {
    snapshots.set(r.key, { name: r.key, parent: r.parent, kind, created_at: now(), updated_at: now(), labels: r.labels });
    return mounts;
  });

const server = new grpc.Server();
server.addService(snapshotsDefinition(), {
  Prepare: make("ACTIVE"),
  View: make("VIEW"),
  Mounts: unary((r) => (get(r.key), mounts)),
  Commit: unary((r) => {
    const active = get(r.key);
    snapshots.delete(r.key);
    snapshots.set(r.name, { ...active, name: r.name, kind: "COMMITTED", labels: r.labels });
    return {};
  }),
  Remove: unary((r) => (get(r.key), snapshots.delete(r.key), {})),
  Stat: unary((r) => ({ info: get(r.key) })),
  Update: unary((r) => {
    const info = get(r.info.name);
    info.labels = r.info.labels;
    return { info };
  }),
  List: (call: grpc.ServerWritableStream<unknown, object>) => {
    call.write({ info: [...snapshots.values()] });
    call.end();
  },
  Usage: unary((r) => (get(r.key), { size: 0, inodes: 0 })),
  Cleanup: unary(() => ({})),
});
server.bindAsync(`unix://${process.argv[2]}`, grpc.ServerCredentials.createInsecure(), (err) => {
  if (err) throw err;
});
process.on("SIGTERM", () => server.tryShutdown(() => process.exit(0)));
