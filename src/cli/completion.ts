/**
 * Shell completion. The scripts are thin: on TAB they run `stor __complete WORD…` (the words
 * typed after `stor`, the last being the one completed) and offer what it prints, one candidate a
 * line, falling back to file names when it prints nothing. The candidates come from the same
 * command definitions as parsing and help, and snapshot keys and volume names from the store.
 */
import { SNAPSHOTTER_NAMES } from "../snapshot/registry.ts";
import { LOG_LEVELS } from "../log.ts";
import type { CommandDef, Group } from "./command.ts";
import { TOP_LEVEL } from "./commands.ts";
import { GLOBAL_OPTIONS, VALUED_GLOBALS, type Globals } from "./globals.ts";

/** The shells a script is written for. */
export const SHELLS = ["bash", "zsh", "fish"] as const;

// Candidates include snapshot keys and volume names, text anyone with access to the store chose.
// bash reads each as data, never through compgen -W, which expands $(…), backquotes and globs in its
// word list (stor matched the prefix already), and quotes it with %q: bash puts a candidate on the
// command line as it is, where `a b` would be two words and `$(…)` would run on Enter.
const BASH = `# bash completion for stor (written by 'stor completion bash')
_stor() {
  local candidate
  COMPREPLY=()
  while IFS= read -r candidate; do
    printf -v candidate '%q' "$candidate"
    COMPREPLY+=("$candidate")
  done < <(stor __complete "\${COMP_WORDS[@]:1:COMP_CWORD}" 2>/dev/null)
}
complete -o default -F _stor stor
`;

const ZSH = `#compdef stor
# zsh completion for stor (written by 'stor completion zsh')
_stor() {
  local -a candidates
  candidates=("\${(@f)$(stor __complete "\${(@)words[2,CURRENT]}" 2>/dev/null)}")
  candidates=(\${candidates:#})
  if (( \${#candidates} )); then compadd -a candidates; else _files; fi
}
if [[ "\${funcstack[1]}" = _stor ]]; then _stor "$@"; else compdef _stor stor; fi
`;

const FISH = `# fish completion for stor (written by 'stor completion fish')
function __stor_complete
    set -l out (stor __complete (commandline -opc)[2..-1] (commandline -ct) 2>/dev/null)
    if test (count $out) -eq 0
        __fish_complete_path (commandline -ct)
    else
        printf '%s\\n' $out
    end
end
complete -c stor -f -a '(__stor_complete)'
`;

/** The completion script for `shell`. */
export function completionScript(shell: (typeof SHELLS)[number]): string {
  return { bash: BASH, zsh: ZSH, fish: FISH }[shell];
}

/** What completion reads from the store, asked only when a snapshot key or volume name is wanted. */
export interface CompletionSource {
  snapshots(snapshotter: string | undefined): Promise<string[]>;
  volumes(): Promise<string[]>;
  drivers(): string[];
}

/** The values a global option can take, where they are few (the rest are paths). */
const GLOBAL_VALUES: Partial<Record<keyof Globals, readonly string[]>> = { snapshotter: SNAPSHOTTER_NAMES, logLevel: LOG_LEVELS };

const spellings = (cmd: CommandDef) => [...cmd.options.flatMap((o) => [o.long && `--${o.long}`, o.short && `-${o.short}`]), "--help"].filter((x): x is string => !!x);

/** What the positional `arg` of `cmd` in `group` can be. */
async function argCandidates(group: Group, cmd: CommandDef, arg: string, source: CompletionSource, snapshotter: string | undefined): Promise<string[]> {
  if (group.word === "snapshot" && (arg === "key" || arg === "parent")) return source.snapshots(snapshotter);
  if (cmd.name === "mount" && arg === "key") return source.snapshots(snapshotter);
  if (group.word === "volume" && arg === "name" && cmd.name !== "create") return source.volumes();
  if (arg === "shell") return [...SHELLS];
  if (arg === "page") return ["snapshot", "volume"];
  return [];
}

/** Candidates for the last of `words` (the words after `stor`), given every command group. */
export async function candidates(words: readonly string[], groups: readonly Group[], source: CompletionSource): Promise<string[]> {
  const current = words.at(-1) ?? "";
  const before = words.slice(0, -1);
  const rest: string[] = [];
  let snapshotter: string | undefined;
  let ended = false;
  for (let i = 0; i < before.length; i++) {
    const w = before[i]!;
    if (w === "--") ended = true;
    const eq = w.indexOf("=");
    const global = ended ? undefined : VALUED_GLOBALS.get(eq > 0 ? w.slice(0, eq) : w);
    if (global && eq < 0) {
      if (i === before.length - 1) return (GLOBAL_VALUES[global.key] ?? []).filter((c) => c.startsWith(current));
      if (global.key === "snapshotter") snapshotter = before[i + 1];
      i++;
    } else if (global) {
      if (global.key === "snapshotter") snapshotter = w.slice(eq + 1);
    } else if (ended || w !== "--no-color") rest.push(w);
  }
  const offer = (list: readonly string[]) => list.filter((c) => c.startsWith(current));
  const globals = GLOBAL_OPTIONS.map((o) => `--${o.long}`);
  if (rest.length === 0) {
    if (current.startsWith("-")) return offer([...globals, "-s", "--help", "--version"]);
    return offer(groups.flatMap((g) => (g.word ? [g.word] : g.commands.map((c) => c.name))));
  }
  const index = TOP_LEVEL.findIndex((t) => t.words.includes(rest[0]!));
  const group = groups[index];
  if (!group) return [];
  if (group.word && rest.length === 1) return offer(group.commands.map((c) => c.name));
  const cmd = group.find(group.word ? rest[1]! : rest[0]!);
  if (!cmd) return [];
  let positionals = 0;
  let dashdash = false;
  const typed = rest.slice(group.word ? 2 : 1);
  for (const [i, w] of typed.entries()) {
    if (dashdash || !w.startsWith("-") || w === "-") {
      positionals++;
      continue;
    }
    if (w === "--") {
      dashdash = true;
      continue;
    }
    const o = cmd.options.find((x) => (w.startsWith("--") ? `--${x.long}` === w : `-${x.short}` === w));
    if (o?.value && !o.value.optional) {
      if (i === typed.length - 1) return o.key === "format" ? offer(["table", "json"]) : o.key === "driver" ? offer(source.drivers()) : [];
      positionals--; // the option's value, counted next as a positional
    }
  }
  if (!dashdash && current.startsWith("-")) return offer([...spellings(cmd), ...globals]);
  const variadic = cmd.args.findIndex((a) => a.variadic);
  const arg = cmd.args[variadic >= 0 ? Math.min(positionals, variadic) : positionals];
  return arg ? offer(await argCandidates(group, cmd, arg.name, source, snapshotter)) : [];
}
