/** The zod schema of the ini file; loaded only when a config file has content to validate. */
import { z } from "zod";
import { LOG_LEVELS } from "./log.ts";
import { SNAPSHOTTER_NAMES } from "./snapshot/registry.ts";

/** A string the kernel can take: it would read a path or name only up to a NUL byte in it. */
const text = z.string().refine((v) => !v.includes("\0"), "holds a NUL byte");

const absolutePath = text.refine((p) => p.startsWith("/"), "must be an absolute path");

const seconds = z.coerce.number().min(0).max(3600);

/** The ini file: top-level keys and the [snapshot] and [volume] sections, nothing else. */
export const fileSchema = z
  .object({
    root: absolutePath.optional(),
    log_level: z.enum(LOG_LEVELS).optional(),
    snapshot: z
      .object({ default: z.enum(SNAPSHOTTER_NAMES).optional() })
      .strict()
      .default({}),
    volume: z
      .object({
        default_driver: text.refine((v) => v !== "", "must not be empty").optional(),
        // Where volume plugins are looked for, space-separated; Docker's places when not given.
        plugin_dirs: text
          .refine((v) => v.split(/\s+/).every((d) => d === "" || d.startsWith("/")), "must be absolute paths, space-separated")
          .optional(),
        plugin_timeout: seconds.positive().optional(),
        // 0: a plugin that cannot be reached is not tried again.
        plugin_retry: seconds.optional(),
      })
      .strict()
      .default({}),
  })
  .strict();

/** A validated config file. */
export type FileConfig = z.infer<typeof fileSchema>;
