/** `stor snapshot …`: ctr's snapshot commands, printing what `ctr snapshots` prints. */
import type { Config } from "../config.ts";
import { openSnapshots } from "../snapshot/registry.ts";
import type { Info, SnapshotService } from "../snapshot/service.ts";
import type { Mount } from "../sys/mount.ts";
import { registerLayerCommands } from "./layer.ts";
import { group, keyValues, list, outputFormat, runGroup } from "./command.ts";
import { binarySize, CTR_TABLE, goJson, print, table } from "./output.ts";

const KIND_NAMES = { active: "Active", view: "View", committed: "Committed" } as const;

/** `mount -t TYPE SOURCE TARGET -o OPTIONS`, one line a mount, as ctr prints them. */
export function mountCommands(mounts: readonly Mount[], target: string): string {
  return mounts.map((m) => `mount -t ${m.Type} ${m.Source} ${target} -o ${m.Options.join(",")}\n`).join("");
}

/** The object ctr prints for a snapshot's info: Parent and Labels only when set. */
function infoView(i: Info) {
  const hasLabels = Object.keys(i.labels).length > 0;
  return {
    Kind: KIND_NAMES[i.kind],
    Name: i.name,
    ...(i.parent !== undefined && { Parent: i.parent }),
    ...(hasLabels && { Labels: i.labels }),
    Created: i.created,
    Updated: i.updated,
  };
}

function tree(infos: readonly Info[]): string {
  const children = new Map<string, Info[]>();
  const roots: Info[] = [];
  for (const i of infos) {
    if (i.parent === undefined) roots.push(i);
    else children.set(i.parent, [...(children.get(i.parent) ?? []), i]);
  }
  let out = "";
  const walk = (i: Info, level: number) => {
    out += level === 0 ? ` ${i.name}\n` : `${"  ".repeat(level)}\\_ ${i.name}\n`;
    for (const c of children.get(i.name) ?? []) walk(c, level + 1);
  };
  for (const r of roots) walk(r, 0);
  return out;
}

/** Runs `stor snapshot ARGS` with the snapshotter chosen by `-s` (already taken out of ARGS). */
export async function snapshotCommand(argv: readonly string[], config: Config, snapshotter?: string): Promise<void> {
  let service: SnapshotService | undefined;
  const svc = () => (service ??= openSnapshots(config, snapshotter));
  const cli = group("stor snapshot");

  const creators = [
    ["prepare", "Prepare an active (writable) snapshot on a committed parent"],
    ["view", "Create a read-only view of a committed snapshot"],
  ] as const;
  for (const [name, description] of creators) {
    cli
      .command(`${name} <key> [parent]`, description)
      .option("-t, --target <target>", "Print the mount command for this target")
      .option("--mounts", "Print the mounts as JSON")
      .option("-l, --label <k=v>", "Set a label (repeatable)")
      .action((key, parent, opts) => {
        const labels = keyValues(list(opts.label), "label");
        const mounts = svc()[name](String(key), parent === undefined ? undefined : String(parent), labels);
        if (opts.target !== undefined) print(mountCommands(mounts, String(opts.target)));
        if (opts.mounts) print(goJson(mounts));
      });
  }

  cli
    .command("commit <name> <key>", "Commit active snapshot KEY as NAME")
    .option("-l, --label <k=v>", "Set a label (repeatable)")
    .action((name, key, opts) => svc().commit(String(name), String(key), keyValues(list(opts.label), "label")));

  cli
    .command("mounts <target> <key>", "Print the mount commands of an active snapshot or view")
    .alias("m")
    .alias("mount")
    .action((target, key) => print(mountCommands(svc().mounts(String(key)), String(target))));

  cli
    .command("rm [...keys]", "Remove snapshots (leaves first; stops at the first failure)")
    .alias("remove")
    .alias("delete")
    .option("--force", "Also remove snapshots containerd made and still records")
    .action((keys: unknown[], opts) => {
      for (const k of keys) svc().remove(String(k), Boolean(opts.force));
    });

  cli
    .command("ls", "List snapshots")
    .alias("list")
    .option("--format <format>", "table or json", { default: "table" })
    .action((opts) => {
      const infos = svc().list();
      if (outputFormat(opts.format) === "json") return print(goJson(infos.map(infoView)));
      print(table([["KEY", "PARENT", "KIND"], ...infos.map((i) => [i.name, i.parent ?? "", KIND_NAMES[i.kind]])], CTR_TABLE));
    });

  cli.command("info <key>", "Print a snapshot's information as JSON").action((key) => print(goJson(infoView(svc().stat(String(key))))));

  cli
    .command("usage [...keys]", "Print disk usage of snapshots")
    .option("-b", "Print sizes in bytes")
    .action((keys: unknown[], opts) => {
      const names = keys.length ? keys.map(String) : svc().list().map((i) => i.name);
      const rows = names.map((k) => {
        const u = svc().usage(k);
        return [k, opts.b ? String(u.size) : binarySize(u.size), String(u.inodes)];
      });
      print(table([["KEY", "SIZE", "INODES"], ...rows], CTR_TABLE));
    });

  cli.command("tree", "Print the snapshots as a tree").action(() => print(tree(svc().list())));

  cli
    .command("label <key> [...labels]", "Set labels (K=V; K= removes K) and print them")
    .action((key, labels: unknown[]) => {
      const all = svc().updateLabels(String(key), keyValues(labels.map(String), "label"));
      print(Object.entries(all).map(([k, v]) => `${k}=${v}`).join(",") + "\n");
    });

  cli.command("cleanup", "Remove snapshot directories that no snapshot owns").action(() => {
    for (const name of svc().cleanup()) print(name);
  });

  registerLayerCommands(cli, svc);

  try {
    await runGroup(cli, argv);
  } finally {
    service?.close();
  }
}
