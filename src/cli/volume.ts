/** `stor volume …`: docker volume's commands, printing what `docker volume` prints. */
import { readSync } from "../nodeFs.ts";
import { ExitCode, InvalidArgumentError, StorError, exitCodeOf } from "../errors.ts";
import { redact, redactOptions } from "../redact.ts";
import { LIST_FILTERS, PRUNE_FILTERS, parseFilters } from "../volume/filters.ts";
import { openVolumes, volumePlugins, type Access } from "../services.ts";
import type { Volume, VolumeService } from "../volume/service.ts";
import type { PluginStatus } from "../volume/pluginDriver.ts";
import { Group, keyValues, list, outputFormat, type Context } from "./command.ts";
import { DOCKER_TABLE, decimalSize, goJson, print, reportError, table, write } from "./output.ts";
import { oneLine } from "../oneLine.ts";

const ANONYMOUS_WARNING = "WARNING! This will remove anonymous local volumes not used by at least one container.";
const ALL_WARNING = "WARNING! This will remove all local volumes not used by at least one container.";

/** The object `docker volume inspect` prints for a volume; secret options masked. */
function inspectView(v: Volume) {
  return {
    CreatedAt: v.created,
    Driver: v.driver,
    Labels: v.labels,
    Mountpoint: v.mountpoint,
    Name: v.name,
    Options: redactOptions(v.options),
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

const isDigit = (c: number) => c >= 48 && c <= 57;

/** `s` cut into runs of ASCII digits and runs of anything else. */
function runs(s: string): string[] {
  const out: string[] = [];
  let start = 0;
  for (let i = 1; i <= s.length; i++) {
    if (i === s.length || isDigit(s.charCodeAt(i)) !== isDigit(s.charCodeAt(i - 1))) {
      out.push(s.slice(start, i));
      start = i;
    }
  }
  return out;
}

/** `digits` without its leading zeros. */
function significant(digits: string): string {
  let i = 0;
  while (i < digits.length && digits.charCodeAt(i) === 48) i++;
  return digits.slice(i);
}

/**
 * `items` ordered by their names as docker orders them: runs of digits by their value (`v2`
 * before `v10`), fewer leading zeros first, the rest as text. Each name is cut into runs once,
 * not at every comparison (a sort of 10,000 names compares 130,000 times): in a short command the
 * cutting runs in the interpreter, and a list of 100 volumes spent 2 ms on it.
 */
export function byNaturalName<T>(items: readonly T[], name: (item: T) => string): T[] {
  const keyed: { item: T; runs: string[] }[] = [];
  for (const item of items) keyed.push({ item, runs: runs(name(item)) });
  keyed.sort((a, b) => compareRuns(a.runs, b.runs));
  const out: T[] = [];
  for (const k of keyed) out.push(k.item);
  return out;
}

/** Two names cut into runs, compared in docker's order. Without RegExps. */
function compareRuns(x: readonly string[], y: readonly string[]): number {
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    const p = x[i]!;
    const q = y[i]!;
    if (p === q) continue;
    if (isDigit(p.charCodeAt(0)) && isDigit(q.charCodeAt(0))) {
      const pn = significant(p);
      const qn = significant(q);
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
 * last is reported here; the last is thrown, so stor prints it. The exit code is the failures'
 * when they share one, else 1 (as docker exits for any): whichever name came last, a script that
 * tests for 5 (in use) reads that every failure was one.
 */
function throwFailures(failures: readonly unknown[]): void {
  if (failures.length === 0) return;
  for (const err of failures.slice(0, -1)) reportError(err);
  const last = failures[failures.length - 1];
  // Anything but a StorError exits 1 already.
  if (last instanceof StorError) {
    for (const err of failures) if (exitCodeOf(err) !== last.code) throw new StorError(last.what, last.why, ExitCode.internal, { cause: last });
  }
  throw last;
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

/** The `stor volume` commands. */
export function volumeGroup(ctx: Context): Group {
  let service: VolumeService | undefined;
  // One command runs per invocation, so the first call's access is the command's. Each command
  // checks its options before it opens the service: bad input creates nothing.
  const svc = async (access: Access) => (service ??= await openVolumes(ctx.config(), access));
  const cli = new Group("stor volume", "Volumes as Docker keeps them, with docker volume's commands and output.");
  cli.finally(() => service?.release());

  cli
    .command("create [name]", "Create volume NAME (none: a random 64-hex name) and print its name. Creating a volume that exists with the same driver succeeds.")
    .option("-d, --driver <driver>", "local or a volume plugin's name (default: [volume] default_driver, else local)")
    .option("-o, --opt <k=v>", "driver option (local: type, device, o, size; a plugin: its own) (repeatable)", { repeat: true })
    .option("--label <k=v>", "set label K to V (a bare K is K=\"\", as docker; repeatable)", { repeat: true })
    .example("stor volume create -o size=1G --label team=web data")
    .action(async (name: string | undefined, opts) => {
      const request = {
        driver: opts.driver === undefined ? undefined : String(opts.driver),
        options: keyValues(list(opts.opt), "option"),
        labels: keyValues(list(opts.label), "label", ""),
      };
      (await import("../volume/service.ts")).checkCreateRequest(ctx.config(), name, request);
      print(await (await svc("write")).create(name, request));
    });

  cli
    .command("ls", "List volumes: DRIVER and VOLUME NAME, as docker volume ls.")
    .alias("list")
    .option("-q, --quiet", "only print volume names")
    .option("-f, --filter <filter>", "name=, driver=, label=K[=V], dangling=true|false (repeatable)", { repeat: true })
    .option("--format <format>", "table or json", { default: "table" })
    .example("stor volume ls -f dangling=true -q")
    .action(async (opts) => {
      const format = outputFormat(opts.format);
      const filters = parseFilters(list(opts.filter), LIST_FILTERS);
      const volumes = byNaturalName(await (await svc("read")).list(filters), (v) => v.name);
      if (opts.quiet) return print(volumes.map((v) => `${v.name}\n`).join(""));
      if (format === "json") return print(volumes.map((v) => `${goJson(rowView(v), 0)}\n`).join(""));
      print(table([["DRIVER", "VOLUME NAME"], ...volumes.map((v) => [v.driver, v.name])], DOCKER_TABLE));
    });

  cli
    .command("inspect <...name>", "Print volumes NAME… as a JSON array, as docker volume inspect.")
    .option("--format <format>", "json", { default: "json" })
    .example("stor volume inspect data")
    .action(async (names: string[], opts) => {
      if (String(opts.format) !== "json") throw new InvalidArgumentError(`format "${opts.format}"`, "expected json");
      const found = [];
      const failures = [];
      try {
        const s = await svc("read"); // opened once: a store that cannot be opened is one error, not one a name
        for (const n of names) {
          try {
            found.push(inspectView(await s.inspect(n)));
          } catch (err) {
            failures.push(err);
          }
        }
      } catch (err) {
        failures.push(err);
      }
      print(goJson(found)); // what was found, if only [], as docker prints it whatever failed
      throwFailures(failures);
    });

  cli
    .command("rm <...name>", "Remove volumes NAME… and their data, printing each name removed. A volume in use (referenced or mounted) is not removed; the others still are. Several failures exit with their code when they share one, else 1.")
    .alias("remove")
    .option("-f, --force", "ignore volumes that do not exist")
    .example("stor volume rm data")
    .action(async (names: string[], opts) => {
      const failures = [];
      const { withTreeProgress } = await import("./progress.ts");
      const s = await svc("change"); // opened once: a store that cannot be opened is one error, not one a name
      for (const n of names) {
        try {
          await withTreeProgress(`removing volume ${n}`, () => s.remove(n, Boolean(opts.force)));
          print(n);
        } catch (err) {
          failures.push(err);
        }
      }
      throwFailures(failures);
    });

  cli
    .command("prune", "Remove local volumes no one references (anonymous ones only, unless -a) after asking, and print what was removed and the space reclaimed.")
    .option("-a, --all", "remove all unused volumes, not just anonymous ones")
    .option("-f, --force", "do not prompt for confirmation")
    .option("--filter <filter>", "label=K[=V], label!=K[=V] (repeatable)", { repeat: true })
    .example("stor volume prune -f --filter label=tmp")
    .action(async (opts) => {
      const filters = parseFilters(list(opts.filter), PRUNE_FILTERS);
      if (!opts.force && !confirm(opts.all ? ALL_WARNING : ANONYMOUS_WARNING)) return print("Total reclaimed space: 0B");
      const { withTreeProgress } = await import("./progress.ts");
      const s = await svc("change");
      const report = await withTreeProgress("removing", () => s.prune(filters, Boolean(opts.all)));
      const deleted = report.deleted.length > 0 ? `Deleted Volumes:\n${report.deleted.map((n) => `${n}\n`).join("")}\n` : "";
      print(`${deleted}Total reclaimed space: ${decimalSize(report.reclaimed)}`);
    });

  cli
    .command("mount <name> <ref>", "Take reference REF on volume NAME (the first one mounts its device) and print the volume's host path.")
    .example("stor volume mount data job-42")
    .action(async (name: string, ref: string) => print(oneLine(await (await svc("change")).mount(name, ref)))); // a plugin's answer, as any text

  cli
    .command("unmount <name> <ref>", "Drop reference REF on volume NAME (the last one unmounts its device).")
    .alias("umount")
    .example("stor volume unmount data job-42")
    .action(async (name: string, ref: string) => (await svc("change")).unmount(name, ref));

  cli
    .command("plugins", "List the volume plugins found (as Docker finds them: sockets, then .spec and .json files, --plugin-dir first) and whether each answers.")
    .option("--format <format>", "table or json", { default: "table" })
    .example("stor volume plugins --plugin-dir /run/my-plugins")
    .action(async (opts) => {
      const format = outputFormat(opts.format);
      const plugins = await volumePlugins(ctx.config());
      if (format === "json") {
        const view = (p: PluginStatus) => ({ Name: p.name, Addr: p.addr, Source: p.source, Scope: p.scope ?? "", Answers: p.error === undefined, Error: p.error ?? "" });
        return print(plugins.map((p) => `${goJson(view(p), 0)}\n`).join(""));
      }
      const rows = plugins.map((p) => [p.name, redact(p.addr), p.scope ?? "", p.error === undefined ? "answers" : redact(p.error)]);
      print(table([["NAME", "ADDRESS", "SCOPE", "STATUS"], ...rows], DOCKER_TABLE));
    });

  return cli;
}
