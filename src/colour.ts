/**
 * Colour on stderr, with kleur: only on a terminal and never with `--no-color` or NO_COLOR.
 * kleur is loaded on first use because importing it touches process.stdout, which costs a
 * short command a large part of its run time.
 */
import { isatty } from "node:tty";
import type { Kleur } from "kleur";

let enabled = false;
let kleur: Kleur | undefined;

/** Decides once per run whether stderr gets colour. */
export function initColour(noColor: boolean): void {
  enabled = !noColor && !process.env.NO_COLOR && isatty(2);
}

/** `text` in colour `name` when colour is on, else as it is. */
export function paint(name: "red" | "yellow" | "cyan" | "gray", text: string): string {
  if (!enabled) return text;
  kleur ??= require("kleur") as Kleur;
  return kleur[name](text);
}
