/**
 * stor's manual: the man pages (roff) and docs/CLI.md (markdown), written from the command
 * definitions that parse argv and print `--help`, so the three cannot drift apart.
 */
import { ExitCode } from "../errors.ts";
import { LAYOUT } from "../layout.ts";
import { VERSION } from "../version.ts";
import type { CommandDef, Group } from "./command.ts";
import { GLOBAL_OPTIONS } from "./globals.ts";
import { describeOption, globalsFor, optionSpelling, usageLine } from "./help.ts";

/** What each exit status means (containerd's errdefs), keyed so that none can be left out. */
const EXIT_MEANINGS: Record<keyof typeof ExitCode, string> = {
  ok: "success",
  internal: "an unexpected (internal) error",
  invalid: "invalid argument or usage, a bad configuration",
  notFound: "the named thing does not exist",
  exists: "the named thing exists already",
  precondition: "the thing is in the wrong state: in use, has children, not active, not committed",
  outputClosed: "the reader of stdout went away (`| head`): stopped quietly, as a program SIGPIPE ends",
};

const ENVIRONMENT: readonly [string, string][] = [
  ["STOR_ROOT", "the state directory, as --root"],
  ["STOR_CONFIG", "the configuration file, as --config"],
  ["STOR_LOG_LEVEL", "as --log-level"],
  ["STOR_PLUGIN_DIRS", "where volume plugins are looked for (space-separated; empty for none), replacing [volume] plugin_dirs"],
  ["NO_COLOR", "no colour, as --no-color"],
];

const CONFIG_KEYS: readonly [string, string][] = [
  ["root", "the state directory (an absolute path; default /var/lib/stor)"],
  ["log_level", "error, warn, info or debug (default warn)"],
  ["[snapshot] default", "overlay, btrfs or native (default: the first of them that the kernel and the filesystem under the root support)"],
  ["[volume] default_driver", "the driver of volumes created without -d (default local): local or a volume plugin found in the plugin directories"],
  ["[volume] plugin_dirs", "where volume plugins are looked for, space-separated absolute paths (default Docker's: /run/docker/plugins /etc/docker/plugins /usr/lib/docker/plugins)"],
  ["[volume] plugin_timeout", "seconds a plugin call waits for its answer (default 60; Create and Mount twice that)"],
  ["[volume] plugin_retry", "seconds an unreachable plugin with known volumes is retried for (default 30; 0: no retry)"],
];

const INTRO =
  "stor is container storage for one Linux host, as one executable: containerd-style snapshotters (overlay, btrfs, native), Docker-style volumes (local driver, and Docker volume plugins as drivers), OCI layers (diff, apply, changes, unpack), and stor serve, which serves containerd's snapshots API and Docker's volume plugin protocol. Its commands print what ctr and docker print.";

const ERRORS =
  "Errors go to stderr as one line, `stor: <what failed>: <reason>`, with control characters in names escaped. `--` ends the options of every command: every argument after it is a positional, taken as given. Options may follow positionals; `-abc` is `-a -b -c`.";

/** One page: stor(1) with every command, or stor-snapshot(1)/stor-volume(1) with one group's. */
interface Page {
  name: string;
  summary: string;
  groups: readonly Group[];
  whole: boolean;
}

/** The pages of the manual: stor(1), then one per command group. */
export function pages(groups: readonly Group[]): Page[] {
  return [
    { name: "stor", summary: "container storage for one Linux host", groups, whole: true },
    ...groups.filter((g) => g.word).map((g) => ({ name: `stor-${g.word}`, summary: g.description.replace(/\.$/, ""), groups: [g], whole: false })),
  ];
}


/** A command's options as `[spelling, meaning]`, help last. */
const optionRows = (cmd: CommandDef): [string, string][] => [...cmd.options.map((o): [string, string] => [optionSpelling(o).trim(), describeOption(o)]), ["-h, --help", "print help"]];

// ---- roff

/** Text as roff shows it: code quotes dropped, backslashes and hyphens escaped, no line taken for a request. */
function roff(text: string): string {
  return text
    .replace(/`/g, "")
    .replace(/\\/g, "\\e")
    .replace(/-/g, "\\-")
    .replace(/^([.'])/gm, "\\&$1")
    .replace(/[^\x00-\x7f]/gu, (c) => `\\[u${c.codePointAt(0)!.toString(16).toUpperCase().padStart(4, "0")}]`);
}

function roffCommand(group: Group, cmd: CommandDef): string {
  const opts = optionRows(cmd);
  return [
    `.SS "${roff(usageLine(group, cmd))}"`,
    roff(cmd.description),
    cmd.aliases.length ? `.br\nAliases: ${roff(cmd.aliases.join(", "))}` : "",
    ...opts.map(([l, r]) => `.TP\n.B "${roff(l)}"\n${roff(r)}`),
    ...(cmd.examples.length ? [".PP\nExample:", `.RS\n.nf\n${cmd.examples.map(roff).join("\n")}\n.fi\n.RE`] : []),
  ]
    .filter(Boolean)
    .join("\n");
}

/** Page `page` as roff, for man(1). */
export function roffPage(page: Page): string {
  const upper = page.name.toUpperCase();
  const sections = [
    `.TH ${upper} 1 "" "stor ${VERSION}" "stor manual"`,
    `.SH NAME\n${roff(page.name)} \\- ${roff(page.summary)}`,
    `.SH SYNOPSIS\n.B ${roff(page.whole ? "stor" : page.groups[0]!.name)}\n[\\fIglobal options\\fR] \\fIcommand\\fR [\\fIargs\\fR]`,
    `.SH DESCRIPTION\n${roff(page.whole ? INTRO : page.groups[0]!.description)}\n.PP\n${roff(ERRORS)}`,
    `.SH COMMANDS\n${page.groups.flatMap((g) => g.commands.map((c) => roffCommand(g, c))).join("\n")}`,
    `.SH GLOBAL OPTIONS\n${GLOBAL_OPTIONS.map((o) => `.TP\n.B "${roff(optionSpelling(o).trim())}"\n${roff(o.description)}`).join("\n")}`,
  ];
  if (page.whole) {
    sections.push(
      `.SH CONFIGURATION\nThe ini file (/etc/stor/stor.ini unless --config or STOR_CONFIG) is read at start and every value checked; a bad one is an error naming the file and the key (exit 2). Options and the environment override it.\n${CONFIG_KEYS.map(([k, v]) => `.TP\n.B "${roff(k)}"\n${roff(v)}`).join("\n")}`,
      `.SH ENVIRONMENT\n${ENVIRONMENT.map(([k, v]) => `.TP\n.B ${k}\n${roff(v)}`).join("\n")}`,
      `.SH EXIT STATUS\n${Object.entries(EXIT_MEANINGS).map(([k, v]) => `.TP\n.B ${ExitCode[k as keyof typeof ExitCode]}\n${roff(v)}`).join("\n")}`,
      `.SH FILES\nBelow the root (/var/lib/stor unless --root):\n${LAYOUT.map(([p, h]) => `.TP\n.I ${roff(p)}\n${roff(h)}`).join("\n")}`,
    );
  }
  const others = pages(page.groups).filter((p) => p.name !== page.name).map((p) => `.BR ${p.name} (1)`);
  sections.push(`.SH SEE ALSO\n${[...(page.whole ? others : [".BR stor (1)"]), ".BR ctr (8)", ".BR docker-volume (1)"].join(",\n")}`);
  return `${sections.join("\n")}\n`;
}

// ---- markdown

const code = (s: string) => `\`${s.replace(/`/g, "'")}\``;
const cell = (s: string) => s.replace(/\|/g, "\\|");

function markdownCommand(group: Group, cmd: CommandDef): string {
  const opts = optionRows(cmd);
  const globals = globalsFor(cmd)
    .map((o) => code(optionSpelling(o).trim()))
    .join(", ");
  return [
    `${group.word ? "####" : "###"} ${group.name} ${cmd.name}`,
    "",
    code(usageLine(group, cmd)),
    "",
    cmd.description,
    ...(cmd.aliases.length ? ["", `Aliases: ${cmd.aliases.map(code).join(", ")}`] : []),
    "",
    "| option | meaning |",
    "|---|---|",
    ...opts.map(([l, r]) => `| ${code(l)} | ${cell(r)} |`),
    "",
    `Global options: ${globals}.`,
    ...(cmd.examples.length ? ["", "```sh", ...cmd.examples, "```"] : []),
    "",
  ].join("\n");
}

/** docs/CLI.md: every command, option, output, exit code and the on-disk layout. */
export function markdownReference(groups: readonly Group[]): string {
  const lines = [
    "# stor command-line reference",
    "",
    "<!-- Written by `stor man --format markdown` from the definitions behind --help; test/cli-docs.test.ts checks it. -->",
    "",
    INTRO,
    "",
    ERRORS,
    "",
    "`stor completion bash|zsh|fish` prints a completion script; `man stor` (and `man stor-snapshot`, `man stor-volume`) documents every command.",
    "",
    "## Global options",
    "",
    "They may stand anywhere before `--`.",
    "",
    "| option | meaning |",
    "|---|---|",
    ...GLOBAL_OPTIONS.map((o) => `| ${code(optionSpelling(o).trim())} | ${cell(o.description)} |`),
    "| `-h, --help` | print help |",
    "| `-v, --version` | print the version |",
    "",
    "## Configuration",
    "",
    "The ini file (`/etc/stor/stor.ini` unless `--config` or `STOR_CONFIG`) is read at start and every value checked; a bad one is an error naming the file and the key (exit 2). Options and the environment override it.",
    "",
    "| key | meaning |",
    "|---|---|",
    ...CONFIG_KEYS.map(([k, v]) => `| ${code(k)} | ${cell(v)} |`),
    "",
    "| variable | meaning |",
    "|---|---|",
    ...ENVIRONMENT.map(([k, v]) => `| ${code(k)} | ${cell(v)} |`),
    "",
    "## Exit codes",
    "",
    "| code | meaning |",
    "|---|---|",
    ...Object.entries(EXIT_MEANINGS).map(([k, v]) => `| ${ExitCode[k as keyof typeof ExitCode]} | ${v} |`),
    "",
    "## On-disk layout",
    "",
    "Below the root (`/var/lib/stor` unless `--root`):",
    "",
    "| path | holds |",
    "|---|---|",
    ...LAYOUT.map(([p, h]) => `| ${code(p)} | ${cell(h)} |`),
    "",
    "## Commands",
    "",
  ];
  for (const g of groups) {
    if (g.word) lines.push(`### ${g.name}`, "", g.description, "");
    for (const c of g.commands) lines.push(markdownCommand(g, c));
  }
  return `${lines.join("\n").trimEnd()}\n`;
}
