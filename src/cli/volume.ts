/** `stor volume …`: docker volume's commands, printing what `docker volume` prints. */
import { readSync } from "node:fs";
import type { Config } from "../config.ts";
import { InvalidArgumentError, describe } from "../errors.ts";
import { redact } from "../redact.ts";
import { LIST_FILTERS, PRUNE_FILTERS, parseFilters } from "../volume/filters.ts";
import { openVolumes, type Access } from "../services.ts";
import type { Volume, VolumeService } from "../volume/service.ts";
import type { PluginStatus } from "../volume/pluginDriver.ts";
import { group, keyValues, list, outputFormat, runGroup } from "./command.ts";
import { DOCKER_TABLE, decimalSize, goJson, print, printError, table, write } from "./output.ts";

const ANONYMOUS_WARNING = "WARNING! This will remove anonymous local volumes not used by at least one container.";
const ALL_WARNING = "WARNING! This will remove all local volumes not used by at least one container.";

/** The object `docker volume inspect` prints for a volume; secrets in option values masked. */
function inspectView(v: Volume) {
  return {
    CreatedAt: v.created,
    Driver: v.driver,
    Labels: v.labels,
    Mountpoint: v.mountpoint,
    Name: v.name,
    Options: Object.fromEntries(Object.entries(v.options).map(([k, value]) => [k, redact(value)])),
    Scope: v.scope,
    ...(v.status && { Status: v.status }),
  };
}

/**
 * The object docker prints for a volume row in JSON (`ls --format json`, `system df -v`): links
 * and size only where they were measured.
 */
export function rowView(v: Volume, size?: string) {
  return {
    Driver: v.driver,
    Labels: Object.entries(v.labels)
      .map(([k, value]) => `${k}=${value}`)
      .sort()
      .join(","),
    Links: size === undefined ? "N/A" : String(v.refs.length),
    Mountpoint: v.mountpoint,
    Name: v.name,
    Scope: v.scope,
    Size: size ?? "N/A",
  };
}

/** Orders names as docker does: runs of digits by their value (`v2` before `v10`). */
export function naturalCompare(a: string, b: string): number {
  const x = a.match(/\d+|\D+/g) ?? [];
  const y = b.match(/\d+|\D+/g) ?? [];
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    const p = x[i]!;
    const q = y[i]!;
    if (p === q) continue;
    if (/^\d/.test(p) && /^\d/.test(q)) {
      const pn = p.replace(/^0+/, "");
      const qn = q.replace(/^0+/, "");
      if (pn.length !== qn.length) return pn.length - qn.length;
      if (pn !== qn) return pn < qn ? -1 : 1;
      return p.length - q.length; // equal values: fewer leading zeros first
    }
    return p < q ? -1 : 1;
  }
  return x.length - y.length;
}

/**
 * For commands that go on past a failure (rm, inspect), as docker's do: every failure but the
 * last is reported here; the last is thrown, so stor prints it and exits with its code.
 */
function throwLast(failures: readonly unknown[]): void {
  for (const err of failures.slice(0, -1)) printError(`stor: ${redact(describe(err))}`);
  if (failures.length > 0) throw failures[failures.length - 1];
}

/** Asks on stdout and reads the answer from stdin; only `y` confirms, as docker's prompt. */
function confirm(warning: string): boolean {
  write(`${warning}\nAre you sure you want to continue? [y/N] `);
  const buf = Buffer.alloc(256);
  let n = 0;
  try {
    n = readSync(0, buf, 0, buf.length, null);
  } catch {
    // No usable stdin: no answer, so no.
  }
  return buf.subarray(0, n).toString().trim().toLowerCase() === "y";
}

/** Runs `stor volume ARGS`. */
export async function volumeCommand(argv: readonly string[], config: Config): Promise<void> {
  let service: VolumeService | undefined;
  // One command runs per invocation, so the first call's access is the command's.
  const svc = (access: Access = "write") => (service ??= openVolumes(config, access));
  const cli = group("stor volume");

  cli
    .command("create [name]", "Create a volume (no NAME: a random 64-hex name)")
    .option("-d, --driver <driver>", "local or a volume plugin's name (default: [volume] default_driver, else local)")
    .option("-o, --opt <k=v>", "Driver option (local: type, device, o, size; a plugin: its own) (repeatable)")
    .option("--label <k=v>", "Set a label (repeatable)")
    .action(async (name, opts) => {
      const created = await svc().create(name === undefined ? undefined : String(name), {
        driver: opts.driver === undefined ? undefined : String(opts.driver),
        options: keyValues(list(opts.opt), "option"),
        labels: keyValues(list(opts.label), "label"),
      });
      print(created);
    });

  cli
    .command("ls", "List volumes")
    .alias("list")
    .option("-q, --quiet", "Only display volume names")
    .option("-f, --filter <filter>", "name=, driver=, label=K[=V], dangling=true|false (repeatable)")
    .option("--format <format>", "table or json", { default: "table" })
    .action(async (opts) => {
      const format = outputFormat(opts.format);
      const volumes = (await svc("read").list(parseFilters(list(opts.filter), LIST_FILTERS))).sort((a, b) => naturalCompare(a.name, b.name));
      if (opts.quiet) return print(volumes.map((v) => `${v.name}\n`).join(""));
      if (format === "json") return print(volumes.map((v) => `${goJson(rowView(v), 0)}\n`).join(""));
      print(table([["DRIVER", "VOLUME NAME"], ...volumes.map((v) => [v.driver, v.name])], DOCKER_TABLE));
    });

  cli
    .command("inspect <...names>", "Print volumes as JSON")
    .option("--format <format>", "json", { default: "json" })
    .action(async (names: unknown[], opts) => {
      if (String(opts.format) !== "json") throw new InvalidArgumentError(`format "${opts.format}"`, "expected json");
      const found = [];
      const failures = [];
      for (const n of names) {
        try {
          found.push(inspectView(await svc("read").inspect(String(n))));
        } catch (err) {
          failures.push(err);
        }
      }
      print(goJson(found));
      throwLast(failures);
    });

  cli
    .command("rm <...names>", "Remove volumes; one in use cannot be")
    .alias("remove")
    .option("-f, --force", "Ignore volumes that do not exist")
    .action(async (names: unknown[], opts) => {
      const failures = [];
      for (const n of names) {
        try {
          await svc().remove(String(n), Boolean(opts.force));
          print(String(n));
        } catch (err) {
          failures.push(err);
        }
      }
      throwLast(failures);
    });

  cli
    .command("prune", "Remove unused local volumes (anonymous ones only, unless -a)")
    .option("-a, --all", "Remove all unused volumes, not just anonymous ones")
    .option("-f, --force", "Do not prompt for confirmation")
    .option("--filter <filter>", "label=K[=V], label!=K[=V] (repeatable)")
    .action(async (opts) => {
      const filters = parseFilters(list(opts.filter), PRUNE_FILTERS);
      if (!opts.force && !confirm(opts.all ? ALL_WARNING : ANONYMOUS_WARNING)) return print("Total reclaimed space: 0B");
      const report = await svc().prune(filters, Boolean(opts.all));
      const deleted = report.deleted.length > 0 ? `Deleted Volumes:\n${report.deleted.map((n) => `${n}\n`).join("")}\n` : "";
      print(`${deleted}Total reclaimed space: ${decimalSize(report.reclaimed)}`);
    });

  cli
    .command("mount <name> <ref>", "Take reference REF on a volume (the first mounts its device); print its host path")
    .action(async (name, ref) => print(await svc().mount(String(name), String(ref))));

  cli
    .command("unmount <name> <ref>", "Drop reference REF (the last unmounts the volume's device)")
    .alias("umount")
    .action(async (name, ref) => svc().unmount(String(name), String(ref)));

  cli
    .command("plugins", "List the volume plugins found (as Docker finds them) and whether each answers")
    .option("--format <format>", "table or json", { default: "table" })
    .action(async (opts) => {
      const format = outputFormat(opts.format);
      const plugins = await svc().plugins();
      if (format === "json") {
        const view = (p: PluginStatus) => ({ Name: p.name, Addr: p.addr, Source: p.source, Scope: p.scope ?? "", Answers: p.error === undefined, Error: p.error ?? "" });
        return print(plugins.map((p) => `${goJson(view(p), 0)}\n`).join(""));
      }
      const rows = plugins.map((p) => [p.name, p.addr, p.scope ?? "", p.error === undefined ? "answers" : redact(p.error)]);
      print(table([["NAME", "ADDRESS", "SCOPE", "STATUS"], ...rows], DOCKER_TABLE));
    });

  try {
    await runGroup(cli, argv);
  } finally {
    service?.close();
  }
}
