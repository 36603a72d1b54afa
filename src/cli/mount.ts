/** `stor mount KEY TARGET` and `stor unmount TARGET`. */
import { unmountAll } from "../mounting.ts";
import { openSnapshots } from "../services.ts";
import { Group, type Context } from "./command.ts";

/** `stor mount` and `stor unmount`. */
export function mountGroup(ctx: Context): Group {
  const cli = new Group("stor");
  cli
    .command("mount <key> <target>", "Mount active snapshot or view KEY on directory TARGET through mount(2). KEY already mounted on TARGET is an error (exit 4).")
    .usesSnapshotter()
    .example("stor mount work /mnt/work")
    .action(async (key: string, target: string) => {
      // Opened to read: mounting changes no metadata, and a missing root or key creates nothing.
      const service = await openSnapshots(ctx.config(), { access: "read", snapshotter: ctx.snapshotter });
      try {
        await service.mount(key, target);
      } finally {
        service.release();
      }
    });
  cli
    .command("unmount <target>", "Unmount everything mounted on TARGET, topmost first.")
    .alias("umount")
    .option("--lazy", "detach now, clean up when no longer busy (MNT_DETACH)")
    .example("stor unmount /mnt/work")
    .action((target: string, opts) => unmountAll(target, ctx.config().root, Boolean(opts.lazy)));
  return cli;
}
