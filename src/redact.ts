/**
 * Hides secrets that mount options carry before text is shown. A key names a secret when it holds
 * `pass`, `secret` or `token` anywhere: `password`, cifs's `password2`, `passwd`, ecryptfs's
 * `passphrase_passwd`, ceph's `secret` (and, harmlessly, a few that only look like one). A value
 * runs to the comma that ends its option; cifs writes a comma inside a password as `,,`, so a
 * doubled comma does not end it. Quotes are part of a value.
 */

import { stringMap } from "./stringMap.ts";

const SECRET = "[\\w.-]*(?:pass|secret|token)[\\w.-]*";
/** In free text (messages, logs) a value also ends at whitespace, where the text goes on. */
const IN_TEXT = new RegExp(`(${SECRET})=(?:[^,\\s]|,,)*`, "gi");
/** In a list of mount options only a comma ends a value: a password may hold spaces. */
const IN_LIST = new RegExp(`(${SECRET})=(?:[^,]|,,)*`, "gi");
const SECRET_KEY = new RegExp(`^${SECRET}$`, "i");

const MASK = "********";

/** `text` with the value of every secret-looking `key=value` in it replaced by `********`. */
export function redact(text: string): string {
  return text.replace(IN_TEXT, (_m, k: string) => `${k}=${MASK}`);
}

/** A list of mount options (`size=1m,password=…`) with the value of every secret option masked. */
export function redactOptionList(list: string): string {
  return list.replace(IN_LIST, (_m, k: string) => `${k}=${MASK}`);
}

/** `options` (a volume's, by key) with secret keys' values, and secrets in the others, masked. */
export function redactOptions(options: Readonly<Record<string, string>>): Record<string, string> {
  const out = stringMap();
  for (const k in options) out[k] = SECRET_KEY.test(k) ? MASK : redactOptionList(options[k]!);
  return out;
}
