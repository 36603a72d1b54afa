/**
 * Colour on stderr, with kleur: only on a terminal that is not `dumb`, and never with `--no-color`
 * or a NO_COLOR that is not empty. Whether stderr is a terminal, and kleur itself, are looked at only when something is painted:
 * loading node:tty or kleur costs a short command a large part of its run time.
 */
import type kleurModule from "kleur";

let allowed = true;
let kleur: typeof kleurModule | null | undefined;

/** Records `--no-color` for this run. */
export function initColour(noColor: boolean): void {
  // Set and not empty, as no-color.org says: an empty NO_COLOR asks for nothing.
  allowed = !noColor && !process.env.NO_COLOR;
}

/** `text` in colour `name` when colour is on, else as it is. */
export function paint(name: "red" | "yellow" | "cyan" | "gray", text: string): string {
  if (kleur === undefined) {
    kleur = allowed && (require("node:tty") as typeof import("node:tty")).isatty(2) ? (require("kleur") as typeof kleurModule) : null;
    // kleur reads the environment itself and takes any NO_COLOR, an empty one too: the choice is made above.
    if (kleur) kleur.enabled = process.env.TERM !== "dumb";
  }
  return kleur ? kleur[name](text) : text;
}
