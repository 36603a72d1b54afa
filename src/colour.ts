/**
 * Colour on stderr, with kleur: only on a terminal and never with `--no-color` or NO_COLOR.
 * Whether stderr is a terminal, and kleur itself, are looked at only when something is painted:
 * loading node:tty or kleur costs a short command a large part of its run time.
 */
import type { Kleur } from "kleur";

let allowed = true;
let kleur: Kleur | null | undefined;

/** Records `--no-color` for this run. */
export function initColour(noColor: boolean): void {
  allowed = !noColor && !process.env.NO_COLOR;
}

/** `text` in colour `name` when colour is on, else as it is. */
export function paint(name: "red" | "yellow" | "cyan" | "gray", text: string): string {
  kleur ??= allowed && (require("node:tty") as typeof import("node:tty")).isatty(2) ? (require("kleur") as Kleur) : null;
  return kleur ? kleur[name](text) : text;
}
