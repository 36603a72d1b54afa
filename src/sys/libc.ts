/**
 * The one handle on libc: symbols loaded through bun:ffi, errno, and {@link SysError}.
 * Only modules under src/sys import this.
 */
import { dlopen, FFIType, CString, read, type FFIFunction } from "bun:ffi";
import { InvalidArgumentError, StorError, ExitCode } from "../errors.ts";
import { decodeName, encodeName } from "../fileName.ts";

const { ptr, i32, u32, u64, i64_fast, u64_fast: usize } = FFIType;

/** The libc symbols stor calls, with their C signatures. */
const SIGNATURES = {
  strerror: { args: [i32], returns: ptr },
  syscall: { args: [i64_fast, i64_fast, i64_fast, i64_fast, i64_fast, i64_fast, i64_fast], returns: i64_fast },
  mount: { args: [ptr, ptr, ptr, u64, ptr], returns: i32 },
  umount2: { args: [ptr, i32], returns: i32 },
  open: { args: [ptr, i32, u32], returns: i32 },
  openat: { args: [i32, ptr, i32, u32], returns: i32 },
  mkdirat: { args: [i32, ptr, u32], returns: i32 },
  symlinkat: { args: [ptr, i32, ptr], returns: i32 },
  linkat: { args: [i32, ptr, i32, ptr, i32], returns: i32 },
  unlinkat: { args: [i32, ptr, i32], returns: i32 },
  mknodat: { args: [i32, ptr, u32, u64], returns: i32 },
  close: { args: [i32], returns: i32 },
  read: { args: [i32, ptr, usize], returns: i64_fast },
  write: { args: [i32, ptr, usize], returns: i64_fast },
  access: { args: [ptr, i32], returns: i32 },
  faccessat: { args: [i32, ptr, i32, i32], returns: i32 },
  realpath: { args: [ptr, ptr], returns: ptr },
  mkdir: { args: [ptr, u32], returns: i32 },
  mkdtemp: { args: [ptr], returns: ptr },
  rename: { args: [ptr, ptr], returns: i32 },
  renameat2: { args: [i32, ptr, i32, ptr, u32], returns: i32 },
  readlink: { args: [ptr, ptr, usize], returns: i64_fast },
  fchmod: { args: [i32, u32], returns: i32 },
  fchown: { args: [i32, u32, u32], returns: i32 },
  ftruncate: { args: [i32, i64_fast], returns: i32 },
  fallocate: { args: [i32, i32, i64_fast, i64_fast], returns: i32 },
  statx: { args: [i32, ptr, i32, u32, ptr], returns: i32 },
  pwrite: { args: [i32, ptr, usize, i64_fast], returns: i64_fast },
  ioctl: { args: [i32, u64, i64_fast], returns: i32 },
  copy_file_range: { args: [i32, ptr, i32, ptr, usize, u32], returns: i64_fast },
  posix_fadvise: { args: [i32, i64_fast, i64_fast, i32], returns: i32 },
  lseek: { args: [i32, i64_fast, i32], returns: i64_fast },
  fchownat: { args: [i32, ptr, u32, u32, i32], returns: i32 },
  fchmodat: { args: [i32, ptr, u32, i32], returns: i32 },
  utimensat: { args: [i32, ptr, ptr, i32], returns: i32 },
  futimens: { args: [i32, ptr], returns: i32 },
  llistxattr: { args: [ptr, ptr, usize], returns: i64_fast },
  lgetxattr: { args: [ptr, ptr, ptr, usize], returns: i64_fast },
  lsetxattr: { args: [ptr, ptr, ptr, usize, i32], returns: i32 },
  lremovexattr: { args: [ptr, ptr], returns: i32 },
  flistxattr: { args: [i32, ptr, usize], returns: i64_fast },
  fgetxattr: { args: [i32, ptr, ptr, usize], returns: i64_fast },
  fsetxattr: { args: [i32, ptr, ptr, usize, i32], returns: i32 },
  flock: { args: [i32, i32], returns: i32 },
  getrlimit: { args: [i32, ptr], returns: i32 },
  fsync: { args: [i32], returns: i32 },
  statfs: { args: [ptr, ptr], returns: i32 },
  getdents64: { args: [i32, ptr, usize], returns: i64_fast },
  _exit: { args: [i32], returns: FFIType.void },
} satisfies Record<string, FFIFunction>;

type Symbols = ReturnType<typeof dlopen<typeof SIGNATURES>>["symbols"];

/** Where this thread's errno lives, found with the first symbol bound (see {@link errno}); 0 before. */
let errnoAddress = 0;

/** Binds libc symbol `name`; the first time, __errno_location with it (one dlopen), to find errno. */
function bind<K extends keyof Symbols>(name: K): Symbols[K] {
  const wanted: Record<string, FFIFunction> = { [name]: SIGNATURES[name] };
  if (errnoAddress === 0) wanted.__errno_location = { args: [], returns: ptr };
  const symbols = dlopen("libc.so.6", wanted).symbols as unknown as Symbols & { __errno_location?: () => number };
  if (symbols.__errno_location) errnoAddress = symbols.__errno_location();
  return symbols[name];
}

/**
 * The raw libc symbols, each bound on its first use: binding compiles a trampoline per symbol, so
 * a command pays for the few it calls (flock and fsync: 0.06 ms), not for all of them (0.2 ms).
 * The object's prototype binds a symbol and makes it the object's own property, so every later
 * call reads a plain property: a Proxy trap on every call was hot enough to be JIT-compiled in a
 * small native prepare.
 */
export const libc: Symbols = Object.create(
  new Proxy({} as Symbols, {
    get(_target, name: keyof Symbols, receiver: Symbols) {
      if (!Object.hasOwn(SIGNATURES, name)) return undefined; // a lookup of anything else (then, inspect's symbols) finds nothing
      const fn = bind(name);
      Object.defineProperty(receiver, name, { value: fn });
      return fn;
    },
  }),
);

/**
 * Ends the process with `code` at once, as _exit(2): without the runtime's teardown, which would
 * close the SQLite connections a command released (see releaseDatabase in src/db.ts).
 */
export function exitNow(code: number): never {
  libc._exit(code);
  throw new Error("_exit returned");
}

/**
 * errno of the last failed libc call; read it straight after the call that failed. It is read
 * where it lives, with no call on the way: whatever the runtime does in between may set errno
 * (binding a symbol runs dlopen and allocates). While __errno_location was bound on the first
 * read, an rm on an existing root once failed with "mkdir ROOT: resource temporarily unavailable".
 * 0 before any libc call: none can have failed.
 */
export function errno(): number {
  return errnoAddress === 0 ? 0 : read.i32(errnoAddress, 0);
}

/** The errno values stor tells apart, by their C names (Linux numbers). */
export const Errno = {
  EPERM: 1, ENOENT: 2, ESRCH: 3, EINTR: 4, EIO: 5, ENXIO: 6, E2BIG: 7, EBADF: 9, EAGAIN: 11, ENOMEM: 12, EACCES: 13,
  EBUSY: 16, EEXIST: 17, EXDEV: 18, ENODEV: 19, ENOTDIR: 20, EISDIR: 21, EINVAL: 22, EMFILE: 24,
  ENOTTY: 25, EFBIG: 27, ENOSPC: 28, EROFS: 30, EMLINK: 31, EPIPE: 32, ERANGE: 34, ENAMETOOLONG: 36, ENOSYS: 38,
  ENOTEMPTY: 39, ELOOP: 40, ENODATA: 61, EOVERFLOW: 75, EOPNOTSUPP: 95, ESTALE: 116, EDQUOT: 122,
} as const;

/** Symbolic name of an errno value (`ENOENT`), or `errno N`. */
export function errnoName(code: number): string {
  // Looked up when asked, not tabled at load: building the table costs every command's start-up.
  for (const name in Errno) if (Errno[name as keyof typeof Errno] === code) return name;
  return `errno ${code}`;
}

/** The C library's message for an errno value. */
export function strerror(code: number): string {
  return new CString(libc.strerror(code)!).toString().toLowerCase();
}

/** A failed system call: `what` names the call and its object, `errno` what the kernel said. */
export class SysError extends StorError {
  override name = "SysError";
  readonly errno: number;
  constructor(what: string, code: number) {
    super(what, strerror(code), ExitCode.internal);
    this.errno = code;
  }
  /** The symbolic name of {@link errno}, as Node names it (`ENOENT`). */
  get errnoName(): string {
    return errnoName(this.errno);
  }
}

/** The errno name (`ENOENT`) of a failed call's error: a {@link SysError}, or node:fs's own. */
export function errnoCode(err: unknown): string | undefined {
  return err instanceof SysError ? err.errnoName : (err as NodeJS.ErrnoException | undefined)?.code;
}

/**
 * The {@link SysError} of the libc call that just failed: errno is read first, then the message
 * made, which may call into libc itself (a path shown, a descriptor described) and change errno.
 */
export function failed(what: string | (() => string)): SysError {
  const code = errno();
  return new SysError(typeof what === "string" ? what : what(), code);
}

/** Throws a {@link SysError} for `what` when a libc call returned a negative value. */
export function check(result: number, what: string | (() => string)): number {
  if (result < 0) throw failed(what);
  return result;
}

/**
 * A NUL-terminated C string for a pointer argument: bytes as they are, a string as the bytes of
 * the name it stands for (see {@link encodeName}: UTF-8, escaped bytes restored). Bytes that end
 * in a NUL are one already and are passed on as they are: no name or path holds a NUL, and a tree
 * walk builds its paths so (childCPath in src/fileName.ts), so as not to copy each one per call.
 */
export function cstr(s: string | Uint8Array): Uint8Array {
  if (typeof s !== "string" && s[s.length - 1] === 0) return s;
  // The kernel would read only what comes before it: what was asked and what is done would differ.
  if (typeof s === "string" ? s.includes("\0") : s.includes(0)) throw new InvalidArgumentError(`"${typeof s === "string" ? s : decodeName(s)}"`, "holds a NUL byte, which no name, path or option passed to the kernel can");
  const bytes = typeof s === "string" ? encodeName(s) : s;
  const out = new Uint8Array(bytes.length + 1);
  out.set(bytes);
  out[bytes.length] = 0;
  return out;
}

/** Retries a call that failed with EINTR. */
export function retry(call: () => number): number {
  for (;;) {
    const r = call();
    if (r >= 0 || errno() !== Errno.EINTR) return r;
  }
}

