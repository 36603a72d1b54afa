/**
 * Volume names as Docker's local driver allows them: they name directories, so the rule keeps
 * every name inside the volumes root.
 */
import { InvalidArgumentError } from "../errors.ts";

/** `c` is `[a-zA-Z0-9]`, or with `more` also `[_.-]`. */
const nameChar = (c: number, more: boolean) =>
  (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || (more && (c === 95 || c === 46 || c === 45));

/** Docker's `^[a-zA-Z0-9][a-zA-Z0-9_.-]+$`, without compiling a RegExp in every volume command. */
function hasNameCharacters(name: string): boolean {
  if (name.length < 2) return false;
  for (let i = 0; i < name.length; i++) if (!nameChar(name.charCodeAt(i), i > 0)) return false;
  return true;
}
/** The longest file name the kernel takes. */
const MAX_NAME_BYTES = 255;

/** True when `name` is a valid volume name. */
export function isVolumeName(name: string): boolean {
  return hasNameCharacters(name) && name.length <= MAX_NAME_BYTES;
}

/** Throws an {@link InvalidArgumentError} with Docker's reason when `name` is not a valid volume name. */
export function validateName(name: string): void {
  const what = `volume name "${name}"`;
  if (name.length === 1) throw new InvalidArgumentError(what, "too short, names should be at least two alphanumeric characters");
  if (!hasNameCharacters(name)) {
    throw new InvalidArgumentError(what, 'includes invalid characters for a local volume name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed');
  }
  if (name.length > MAX_NAME_BYTES) throw new InvalidArgumentError(what, `longer than ${MAX_NAME_BYTES} characters`);
}
