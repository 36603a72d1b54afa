/** `stor unpack SOURCE`: an image's layers as committed snapshots named by chain ID. */
import { openSnapshots } from "../services.ts";
import { Group, type Context } from "./command.ts";
import { print } from "./output.ts";
import { withUnpackProgress } from "./progress.ts";

/** `stor unpack`. */
export function unpackGroup(ctx: Context): Group {
  const cli = new Group("stor");
  cli
    .command("unpack <source>", "Unpack an OCI image layout directory or docker save tarball into a chain of committed snapshots named by chain ID, and print the top one's. Shows progress on a terminal.")
    .usesSnapshotter()
    .option("--image <name>", "the image to unpack, where SOURCE holds several: a name docker save tagged it with, or index.json gives it (alpine:3.19 is docker.io/library/alpine:3.19)")
    .example("stor unpack -s native alpine.tar")
    .example("docker save alpine:3.19 busybox > images.tar && stor unpack --image busybox images.tar")
    .action(async (source: string, opts) => {
      const { unpack } = await import("../layer/unpack.ts");
      const service = await openSnapshots(ctx.config(), { access: "write", snapshotter: ctx.snapshotter });
      try {
        print(await withUnpackProgress((onProgress) => unpack(service, source, onProgress, opts.image === undefined ? undefined : String(opts.image))));
      } finally {
        service.release();
      }
    });
  return cli;
}
