/** `stor restore`: run once at boot to put right what an unclean shutdown left; prints what it did. */
import { restore, type RestoreReport } from "../restore.ts";
import type { SnapshotRestoreReport } from "../snapshot/restore.ts";
import type { VolumeRestoreReport } from "../volume/restore.ts";
import { StorError } from "../errors.ts";
import { Group, outputFormat, type Context } from "./command.ts";
import { goJson, print } from "./output.ts";
import { oneLine } from "../oneLine.ts";

/** One line per thing done or left; nothing when there was nothing to do. */
function volumeLines(r: VolumeRestoreReport): string[] {
  return [
    ...r.released.map((x) => `released volume "${x.volume}": ${x.refs.length > 0 ? `references ${x.refs.join(", ")}` : "active mount count"}`),
    ...r.kept.map((x) => `kept volume "${x.volume}": references ${x.refs.join(", ")} (${x.users.length > 0 ? `in use by ${x.users.map((u) => `pid ${u.pid} ${u.comm} (${u.how})`).join(", ")}` : "in use in this boot"})`),
    ...r.unmounted.map((p) => `unmounted ${p}`),
    ...r.busy.map((p) => `left ${p} mounted: busy`),
    ...r.leftMounted.map((p) => `would unmount ${p}: not the first restore of this boot (--force does it)`),
    ...r.dropped.map((n) => `dropped volume "${n}": its data is gone`),
    ...r.adopted.map((n) => `adopted volume "${n}": found without metadata`),
    ...r.removed.map((p) => `removed ${p}: left by an interrupted create or removal`),
    ...r.unreachable.map((u) => `kept the volumes of driver "${u.driver}" as recorded: ${u.error}`),
  ];
}

function volumeView(r: VolumeRestoreReport) {
  return {
    Unmounted: r.unmounted,
    Busy: r.busy,
    LeftMounted: r.leftMounted,
    Released: r.released.map((x) => ({ Volume: x.volume, Refs: x.refs })),
    Kept: r.kept.map((x) => ({ Volume: x.volume, Refs: x.refs, Users: x.users.map((u) => ({ Pid: u.pid, Command: u.comm, Use: u.how })) })),
    Dropped: r.dropped,
    Adopted: r.adopted,
    Removed: r.removed,
    // Only when there are any: a root without plugins reports as it always did.
    ...(r.unreachable.length > 0 && { Unreachable: r.unreachable.map((u) => ({ Driver: u.driver, Error: u.error })) }),
  };
}

function snapshotLines(reports: readonly SnapshotRestoreReport[]): string[] {
  return reports.flatMap((r) =>
    r.damaged !== undefined
      ? [`snapshotter ${r.snapshotter}: metadata damaged, nothing removed: ${r.damaged}`]
      : r.failed !== undefined
        ? [`snapshotter ${r.snapshotter}: not restored, nothing removed: ${r.failed.why}`]
        : [
          ...r.abandoned.map((k) => `removed snapshot "${k}" of ${r.snapshotter}: left by an interrupted unpack`),
          ...r.removed.map((d) => `removed snapshot directory ${r.snapshotter}/${d}: no snapshot owns it`),
          ...r.undone.map((d) => `undid an interrupted apply: put its snapshot back as it was from ${r.snapshotter}/${d}`),
        ],
  );
}

function reportLines(r: RestoreReport): string {
  return [
    ...(r.serveRunning ? ["stor serve is running on this root: nothing it may hold was touched"] : []),
    ...r.migrated.map((f) => `moved ${f} into volumes/.meta: the volume database of an older layout`),
    ...r.unmounted.map((p) => `unmounted ${p}`),
    ...r.busy.map((p) => `left ${p} mounted: busy`),
    ...volumeLines(r.volumes),
    ...snapshotLines(r.snapshots),
  ]
    // Names, references, paths and commands are the users': each line stays one line.
    .map((line) => `${oneLine(line)}\n`)
    .join("");
}

function reportView(r: RestoreReport) {
  return {
    AtBoot: r.atBoot,
    ServeRunning: r.serveRunning,
    Migrated: r.migrated,
    Unmounted: r.unmounted,
    Busy: r.busy,
    Volumes: volumeView(r.volumes),
    Snapshots: r.snapshots.map((s) => ({
      Snapshotter: s.snapshotter,
      Snapshots: s.snapshots,
      Removed: s.removed,
      // Only when there are any, as Damaged: a root without them reports as it always did.
      ...(s.abandoned.length > 0 && { Abandoned: s.abandoned }),
      ...(s.undone.length > 0 && { Undone: s.undone }),
      ...(s.damaged !== undefined && { Damaged: s.damaged }),
      ...(s.failed !== undefined && { Failed: s.failed.why }),
    })),
  };
}

/** `stor restore`. */
export function restoreGroup(ctx: Context): Group {
  const cli = new Group("stor");
  cli
    .command("restore", "Put right what an unclean shutdown left: stale mounts, references, half-made directories (run once at boot). Prints one line for each thing done and each thing left. A later run in the same boot leaves what a live host holds, unless --force.")
    .option("--format <format>", "table (one line per action) or json", { default: "table" })
    .option("--force", "dangerous: do the boot-time work on a live host, releasing references taken in this boot and unmounting unused volumes (refused while stor serve runs)")
    .example("stor restore")
    .example("stor restore --force")
    .action(async (opts) => {
      const format = outputFormat(opts.format);
      const report = await restore(ctx.config(), { force: Boolean(opts.force) });
      print(format === "json" ? goJson(reportView(report)) : reportLines(report));
      // A damaged database is not repaired by guessing: say so with the exit code too.
      const damaged = report.snapshots.filter((s) => s.damaged !== undefined).map((s) => s.snapshotter);
      if (damaged.length) throw new StorError("restore", `metadata of snapshotter ${damaged.join(", ")} is damaged; nothing of it was removed`);
      const failed = report.snapshots.find((s) => s.failed !== undefined);
      if (failed) throw new StorError("restore", `snapshotter ${failed.snapshotter} was not restored: ${failed.failed!.why}`, failed.failed!.code);
    });
  return cli;
}
