/** Hides secrets that mount options carry (`password=…` and the like) before text is shown. */

const SECRET_KEYS = /\b(password|passwd|pass|secret|token)=([^,\s"']*)/gi;

/** Replaces the value of every secret-looking `key=value` in `text` with `********`. */
export function redact(text: string): string {
  return text.replace(SECRET_KEYS, (_m, k: string) => `${k}=********`);
}
