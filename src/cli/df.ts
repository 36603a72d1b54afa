/**
 * `stor df`: space used by each snapshotter and by volumes, and what is reclaimable, in the
 * shapes `docker system df` prints; what is in use, the services say (snapshots in use by an
 * active snapshot or a view, volumes referenced or with something mounted on them). Local
 * volumes with mount options are not counted, as Docker does not count them.
 */
import type { Config } from "../config.ts";
import { openSnapshots, openVolumes } from "../services.ts";
import { SNAPSHOTTER_NAMES } from "../snapshot/registry.ts";
import type { SnapshotDiskUsage } from "../snapshot/service.ts";
import type { VolumeUsage } from "../volume/service.ts";
import { Group, outputFormat, type Context } from "./command.ts";
import { DOCKER_TABLE, decimalSize, goJson, print, table } from "./output.ts";
import { byNaturalName, rowView } from "./volume.ts";

/** One row of the summary. */
interface Summary {
  type: string;
  total: number;
  active: number;
  size: number;
  reclaimable: number;
}

/** The snapshots of snapshotter `name`, as df reports them. */
async function snapshotItems(config: Config, name: string): Promise<SnapshotDiskUsage[]> {
  const service = await openSnapshots(config, { access: "read", snapshotter: name });
  try {
    return service.diskUsage();
  } finally {
    service.release();
  }
}

function summarize(type: string, items: readonly { size: number | undefined; inUse: boolean }[]): Summary {
  const sum = (xs: readonly { size: number | undefined }[]) => xs.reduce((n, x) => n + (x.size ?? 0), 0);
  const unused = items.filter((i) => !i.inUse);
  return { type, total: items.length, active: items.length - unused.length, size: sum(items), reclaimable: sum(unused) };
}

/** Docker's RECLAIMABLE cell: the size, and its share of the total when there is one. */
function reclaimable(s: Summary): string {
  return s.size > 0 ? `${decimalSize(s.reclaimable)} (${Math.floor((s.reclaimable * 100) / s.size)}%)` : decimalSize(s.reclaimable);
}

function summaryView(s: Summary) {
  return { Active: String(s.active), Reclaimable: reclaimable(s), Size: decimalSize(s.size), TotalCount: String(s.total), Type: s.type };
}

/** A snapshot's kind as ctr prints it: `Active`, `View`, `Committed`. */
const kindName = (i: SnapshotDiskUsage) => i.info.kind[0]!.toUpperCase() + i.info.kind.slice(1);
const sizeText = (size: number | undefined) => (size === undefined ? "N/A" : decimalSize(size));
const snapshotView = (i: SnapshotDiskUsage) => ({ Key: i.info.name, Parent: i.info.parent ?? "", Kind: kindName(i), InUse: i.inUse, Size: sizeText(i.size) });
const volumeSize = (u: VolumeUsage) => sizeText(u.size);

/** `stor df`. */
export function dfGroup(ctx: Context): Group {
  const cli = new Group("stor");
  cli
    .command("df", "Print the space used by each snapshotter and by volumes, and how much of it is reclaimable, as docker system df.")
    .option("-v, --verbose", "show every snapshot and volume")
    .option("--format <format>", "table or json", { default: "table" })
    .example("stor df -v")
    .action(async (opts) => {
      const format = outputFormat(opts.format);
      const config = ctx.config();
      // Volumes first: a missing root is not found before any snapshotter is looked at.
      const service = await openVolumes(config, "read");
      let volumes: VolumeUsage[];
      try {
        volumes = byNaturalName(await service.usage(), (u) => u.volume.name);
      } finally {
        service.release();
      }
      const snapshots: { name: string; items: SnapshotDiskUsage[] }[] = [];
      for (const name of SNAPSHOTTER_NAMES) snapshots.push({ name, items: await snapshotItems(config, name) });
      const summaries = [
        ...snapshots.map((s) => summarize(`Snapshots (${s.name})`, s.items)),
        summarize("Local Volumes", volumes),
      ];

      if (format === "json" && opts.verbose) {
        return print(
          goJson(
            {
              Snapshots: Object.fromEntries(snapshots.map((s) => [s.name, s.items.map(snapshotView)])),
              Volumes: volumes.map((u) => rowView(u.volume, volumeSize(u))),
            },
            0,
          ),
        );
      }
      if (format === "json") return print(summaries.map((s) => `${goJson(summaryView(s), 0)}\n`).join(""));
      if (!opts.verbose) {
        const rows = summaries.map((s) => [s.type, String(s.total), String(s.active), decimalSize(s.size), reclaimable(s)]);
        return print(table([["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"], ...rows], DOCKER_TABLE));
      }
      const sections = snapshots.map((s) => {
        const rows = s.items.map((i) => [i.info.name, i.info.parent ?? "", kindName(i), sizeText(i.size)]);
        return `Snapshots space usage (${s.name}):\n\n${table([["KEY", "PARENT", "KIND", "SIZE"], ...rows], DOCKER_TABLE)}`;
      });
      const volumeRows = volumes.map((u) => [u.volume.name, String(u.volume.refs.length), volumeSize(u)]);
      sections.push(`Local Volumes space usage:\n\n${table([["VOLUME NAME", "LINKS", "SIZE"], ...volumeRows], DOCKER_TABLE)}`);
      print(sections.join("\n"));
    });
  return cli;
}
