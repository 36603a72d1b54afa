/** The local driver's options checked as Docker's local driver checks them (src/volume/localOptions.ts). */
import { expect, test } from "bun:test";
import { InvalidArgumentError } from "../../src/errors.ts";
import { toOptsConfig, validateOptions } from "../../src/volume/localOptions.ts";

const validate = (size: string) => () => validateOptions('volume "v"', { size }, () => true);

test.each([
  ["2^64 bytes", "18446744073709551616"],
  ["16 EiB", "16384p"],
  ["far more", "99999999999999999999999p"],
  ["more than a double holds", "1".padEnd(401, "0")],
])("a size of %s, more than a 64-bit count of bytes, is an invalid size (exit 2), not a quota to set", (_what, size) => {
  expect(validate(size)).toThrow(new InvalidArgumentError('volume "v"', `invalid size: '${size}'`));
});

test.each([
  ["16383p", 16383 * 2 ** 50],
  ["18446744073709549568", 18446744073709549568], // the largest double below 2^64
  ["10m", 10 * 2 ** 20],
])("a size of %s is taken, as %d bytes", (size, bytes) => {
  expect(validate(size)).not.toThrow();
  expect(toOptsConfig({ size }).Quota.Size).toBe(bytes);
});
