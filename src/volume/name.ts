/**
 * Volume names as Docker's local driver allows them: they name directories, so the rule keeps
 * every name inside the volumes root.
 */
import { InvalidArgumentError } from "../errors.ts";

const NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/;
/** The longest file name the kernel takes. */
const MAX_NAME_BYTES = 255;

/** True when `name` is a valid volume name. */
export function isVolumeName(name: string): boolean {
  return NAME.test(name) && name.length <= MAX_NAME_BYTES;
}

/** Throws an {@link InvalidArgumentError} with Docker's reason when `name` is not a valid volume name. */
export function validateName(name: string): void {
  const what = `volume name "${name}"`;
  if (name.length === 1) throw new InvalidArgumentError(what, "too short, names should be at least two alphanumeric characters");
  if (!NAME.test(name)) {
    throw new InvalidArgumentError(what, 'includes invalid characters for a local volume name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed');
  }
  if (name.length > MAX_NAME_BYTES) throw new InvalidArgumentError(what, `longer than ${MAX_NAME_BYTES} characters`);
}
