/**
 * Hides secrets that mount options and addresses carry before text is shown. A key names a secret
 * when one of its parts (cut at `_`, `.` or `-`) starts with `pass`, `secret` or `token`:
 * `password`, cifs's `password2`, `passwd`, ecryptfs's `passphrase_passwd`, ceph's `secret`,
 * `auth.token`, `app-token`; not `compass` or `bypass`. A value runs to the comma that ends its
 * option; cifs writes a comma inside a password as `,,`, so a doubled comma does not end it.
 * Quotes are part of a value. Two more places hold a password: the user part of an address
 * (`//user:pass@server/share`, `http://user:pass@host`), and cifs's `user=name%pass`.
 */

import { stringMap } from "./stringMap.ts";

const SECRET = "(?<![\\w.-])(?:[\\w.-]*[_.-])?(?:pass|secret|token)[\\w.-]*";
/**
 * In free text (messages, logs) a value also ends at whitespace, where the text goes on, and at a
 * quote that closes what stor quoted (`snapshot "app-token=x": not found`): one followed by a
 * colon, whitespace or the end.
 */
const IN_TEXT = new RegExp(`(${SECRET})=(?:[^,\\s"]|,,|"(?![:\\s]|$))*`, "gi");
/** In a list of mount options only a comma ends a value: a password may hold spaces. */
const IN_LIST = new RegExp(`(${SECRET})=(?:[^,]|,,)*`, "gi");
const SECRET_KEY = new RegExp(`^${SECRET}$`, "i");
/** An address's password: from the colon after the user to its last `@` (a password may hold one). */
const USER_INFO = /(\/\/[^\s/@:]*:)[^\s]*(?=@)/g;
/** cifs's `user=name%password` (and `username=`). */
const USER_PERCENT_TEXT = /(?<![\w.-])(user(?:name)?=[^,\s%]*%)(?:[^,\s]|,,)*/gi;
const USER_PERCENT_LIST = /(?<![\w.-])(user(?:name)?=[^,%]*%)(?:[^,]|,,)*/gi;

const MASK = "********";

/** `text` with every secret in it (see above) replaced by `********`. */
export function redact(text: string): string {
  return text.replace(IN_TEXT, (_m, k: string) => `${k}=${MASK}`).replace(USER_INFO, `$1${MASK}`).replace(USER_PERCENT_TEXT, `$1${MASK}`);
}

/** A list of mount options (`size=1m,password=…`) with the value of every secret option, and every other secret, masked. */
export function redactOptionList(list: string): string {
  return list.replace(IN_LIST, (_m, k: string) => `${k}=${MASK}`).replace(USER_INFO, `$1${MASK}`).replace(USER_PERCENT_LIST, `$1${MASK}`);
}

/** `options` (a volume's, by key) with secret keys' values, and secrets in the others, masked. */
export function redactOptions(options: Readonly<Record<string, string>>): Record<string, string> {
  const out = stringMap();
  for (const k in options) out[k] = SECRET_KEY.test(k) ? MASK : redactOptionList(options[k]!);
  return out;
}
