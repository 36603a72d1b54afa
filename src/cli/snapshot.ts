/** `stor snapshot …`: ctr's snapshot commands, printing what `ctr snapshots` prints. */
import { openSnapshots, type Access } from "../services.ts";
import type { Info, SnapshotService, Summary } from "../snapshot/service.ts";
import type { Mount } from "../sys/mount.ts";
import { registerLayerCommands } from "./layer.ts";
import { Group, keyValues, list, outputFormat, type Context } from "./command.ts";
import { binarySize, CTR_TABLE, goJson, print, table } from "./output.ts";
import { oneLine } from "../oneLine.ts";

const KIND_NAMES = { active: "Active", view: "View", committed: "Committed" } as const;

/**
 * `mount -t TYPE SOURCE TARGET -o OPTIONS`, one line a mount, as ctr prints them, for `| sh`: a
 * word the shell would split or expand (a space, `;`, `$` in a root or target) is quoted, where
 * ctr prints it as it is; an everyday path needs no quotes and gets none.
 */
export function mountCommands(mounts: readonly Mount[], target: string): string {
  // A target that starts with "-" would be an option to mount(8); as ./-x it is the same directory.
  if (target.startsWith("-")) target = `./${target}`;
  let out = "";
  for (const m of mounts) out += `mount -t ${shellWord(m.Type)} ${shellWord(m.Source)} ${shellWord(target)} -o ${shellWord(m.Options.join(","))}\n`;
  return out;
}

/** Characters no POSIX shell gives a meaning to in a word. */
const PLAIN_WORD = /^[\w@%+=:,./-]+$/;

/** `word` as one shell word: as it is when plain, else in single quotes. */
function shellWord(word: string): string {
  return PLAIN_WORD.test(word) ? word : `'${word.replaceAll("'", "'\\''")}'`;
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

/** A snapshot and its children, for `tree`. */
interface TreeNode {
  Name: string;
  Children: TreeNode[];
}

/** The snapshots as trees, roots first, children in list order. */
function treeView(infos: readonly Summary[]): TreeNode[] {
  const nodes = new Map(infos.map((i) => [i.name, { Name: i.name, Children: [] as TreeNode[] }]));
  const roots: TreeNode[] = [];
  for (const i of infos) {
    const parent = i.parent === undefined ? undefined : nodes.get(i.parent);
    (parent ? parent.Children : roots).push(nodes.get(i.name)!);
  }
  return roots;
}

/** The trees drawn as ctr draws them. */
function tree(infos: readonly Summary[]): string {
  let out = "";
  const walk = (n: TreeNode, level: number) => {
    out += level === 0 ? ` ${oneLine(n.Name)}\n` : `${"  ".repeat(level)}\\_ ${oneLine(n.Name)}\n`;
    for (const c of n.Children) walk(c, level + 1);
  };
  for (const r of treeView(infos)) walk(r, 0);
  return out;
}

/** ctr's labels: `-l K=V`; a bare `K` is `K=true`, as ctr's label arguments read it. */
const labels = (words: unknown) => keyValues(list(words), "label", "true");

/** The `stor snapshot` commands, on the snapshotter `-s` chooses. */
export function snapshotGroup(ctx: Context): Group {
  let service: SnapshotService | undefined;
  // One command runs per invocation, so the first call's access is the command's. Each command
  // checks its options before it opens the service: bad input creates nothing.
  const svc = async (access: Access, needs?: string) => (service ??= await openSnapshots(ctx.config(), { access, snapshotter: ctx.snapshotter, needs }));
  const cli = new Group("stor snapshot", "Snapshots as containerd's snapshotters keep them, with ctr's commands and output.", true);
  cli.finally(() => service?.release());

  const creators = [
    ["prepare", "Make an active (writable) snapshot KEY on committed PARENT, or empty without one. Prints nothing unless -t or --mounts asks.", "stor snapshot prepare -l app=web work sha256:5f70bf18…"],
    ["view", "Make a read-only view KEY of committed PARENT (or of nothing, as ctr allows). Prints nothing unless -t or --mounts asks.", "stor snapshot view -t /mnt/look look base"],
  ] as const;
  for (const [name, description, example] of creators) {
    cli
      .command(`${name} <key> [parent]`, description)
      .option("-t, --target <target>", "print the mount command for TARGET")
      .option("--mounts", "print the mounts as JSON, as ctr does")
      .option("-l, --label <k=v>", "set label K to V (a bare K is K=true; repeatable)", { repeat: true })
      .example(example)
      .action(async (key: string, parent: string | undefined, opts) => {
        const given = labels(opts.label);
        const { withTreeProgress } = await import("./progress.ts"); // a native snapshot's copy can take long
        const s = await svc("write", parent);
        const mounts = await withTreeProgress("copying", () => s[name](key, parent, given));
        if (opts.target !== undefined) print(mountCommands(mounts, String(opts.target)));
        if (opts.mounts) print(goJson(mounts));
      });
  }

  cli
    .command("commit <name> <key>", "Commit active snapshot KEY as committed snapshot NAME; KEY is gone afterwards. NAME has only the labels given here, as in containerd. A KEY mounted anywhere (in any mount namespace) is refused: unmount it first.")
    .option("-l, --label <k=v>", "set label K to V on NAME (a bare K is K=true; repeatable)", { repeat: true })
    .example("stor snapshot commit -l release=1 base work")
    .action(async (name: string, key: string, opts) => {
      const given = labels(opts.label);
      (await svc("change")).commit(name, key, given);
    });

  cli
    .command("mounts <target> <key>", "Print the mount commands that would mount active snapshot or view KEY on TARGET, as ctr does.")
    .alias("m")
    .alias("mount")
    .option("--format <format>", "table (mount commands) or json (the mounts, as prepare --mounts prints them)", { default: "table" })
    .example("stor snapshot mounts /mnt/work work | sh")
    .action(async (target: string, key: string, opts) => {
      const format = outputFormat(opts.format);
      const mounts = (await svc("read")).mounts(key);
      print(format === "json" ? goJson(mounts) : mountCommands(mounts, target));
    });

  cli
    .command("rm [...key]", "Remove snapshots, in the order given (children before their parents). Stops at the first that cannot be removed: one with children, or mounted anywhere (in any mount namespace). A snapshot containerd made and still records is refused unless --force.")
    .alias("remove")
    .alias("delete")
    .option("--force", "also remove snapshots containerd made and still records")
    .example("stor snapshot rm work base")
    .example("stor snapshot rm --force default/12/work")
    .action(async (keys: string[], opts) => {
      const { withTreeProgress } = await import("./progress.ts");
      for (const k of keys) {
        const s = await svc("change");
        await withTreeProgress(`removing snapshot ${k}`, () => s.remove(k, Boolean(opts.force)));
      }
    });

  cli
    .command("ls", "List snapshots: KEY, PARENT and KIND, as ctr snapshots ls.")
    .alias("list")
    .option("--format <format>", "table or json", { default: "table" })
    .example("stor snapshot ls --format json")
    .action(async (opts) => {
      const format = outputFormat(opts.format);
      const s = await svc("read");
      if (format === "json") return print(goJson(s.list().map(infoView)));
      print(table([["KEY", "PARENT", "KIND"], ...s.summaries().map((i) => [i.name, i.parent ?? "", KIND_NAMES[i.kind]])], CTR_TABLE));
    });

  cli
    .command("info <key>", "Print snapshot KEY's kind, name, parent, labels and times as JSON, as ctr does.")
    .example("stor snapshot info work")
    .action(async (key: string) => print(goJson(infoView((await svc("read")).stat(key)))));

  cli
    .command("usage [...key]", "Print the disk usage (size and inodes) of snapshots KEY…, or of every snapshot.")
    .option("-b", "print sizes in bytes")
    .option("--format <format>", "table or json", { default: "table" })
    .example("stor snapshot usage -b work")
    .action(async (keys: string[], opts) => {
      const format = outputFormat(opts.format);
      const s = await svc("read");
      // Loops, not Array.prototype.map: that builtin is compiled on its first call in a process.
      let names = keys;
      if (keys.length === 0) {
        names = [];
        for (const i of s.summaries()) names.push(i.name);
      }
      const json = [];
      const rows = [["KEY", "SIZE", "INODES"]];
      for (const key of names) {
        const u = s.usage(key);
        if (format === "json") json.push({ Key: key, Size: u.size, Inodes: u.inodes });
        else rows.push([key, opts.b ? String(u.size) : binarySize(u.size), String(u.inodes)]);
      }
      print(format === "json" ? goJson(json) : table(rows, CTR_TABLE));
    });

  cli
    .command("tree", "Print the snapshots as a tree of parents and children, as ctr does.")
    .option("--format <format>", "table (the tree) or json", { default: "table" })
    .example("stor snapshot tree")
    .action(async (opts) => {
      const format = outputFormat(opts.format);
      const infos = (await svc("read")).summaries();
      if (format === "json") return print(goJson(treeView(infos)));
      print(tree(infos));
    });

  cli
    .command("label <key> [...label]", "Set labels of snapshot KEY (K=V; K= removes K; a bare K is K=true) and print all of its labels.")
    .example("stor snapshot label work owner=ci stale=")
    .action(async (key: string, words: string[]) => {
      const given = labels(words);
      const all = (await svc("change")).updateLabels(key, given);
      let line = "";
      for (const k in all) line += `${line === "" ? "" : ","}${k}=${all[k]}`; // no Array.prototype.map: see usage
      print(`${oneLine(line)}\n`);
    });

  cli
    .command("cleanup", "Remove what interrupted work left: the snapshots of unpacks that were killed, snapshot directories no snapshot owns (left by a crash), and the trash of killed applies, whose changes are undone first; prints each one removed.")
    .example("stor snapshot cleanup")
    .action(async () => {
      const s = await svc("change");
      const { removeLeftovers } = await import("../snapshot/restore.ts");
      const { abandoned, removed, undone } = removeLeftovers(s);
      for (const name of [...abandoned, ...removed, ...undone]) print(oneLine(name));
    });

  registerLayerCommands(cli, svc);
  return cli;
}
