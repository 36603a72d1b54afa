/** Device numbers: glibc's makedev, major and minor, on the 64-bit dev_t that statx and mknod use. */

/** The dev_t of a device number pair, as glibc's makedev. */
export function makedev(major: number, minor: number): bigint {
  const ma = BigInt(major);
  const mi = BigInt(minor);
  return ((ma & 0xfffff000n) << 32n) | ((ma & 0xfffn) << 8n) | ((mi & 0xffffff00n) << 12n) | (mi & 0xffn);
}

/** The device number pair of a dev_t, as glibc's major and minor. */
export function splitdev(dev: bigint): { major: number; minor: number } {
  return {
    major: Number(((dev >> 8n) & 0xfffn) | ((dev >> 32n) & 0xfffff000n)),
    minor: Number((dev & 0xffn) | ((dev >> 12n) & 0xffffff00n)),
  };
}
