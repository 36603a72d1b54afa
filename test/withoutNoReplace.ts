/**
 * Runs a command on a kernel that answers renameat2(2) with RENAME_NOREPLACE as a filesystem
 * without the flag does (NFS, 9p, FUSE without rename2): EINVAL. A seccomp filter, installed on
 * this thread and inherited by the command it starts, gives that answer to every such call and
 * lets everything else through, so the command runs its fallback on a real filesystem.
 *
 *   bun test/withoutNoReplace.ts COMMAND ARGS…
 *
 * Exits with the command's exit code (its output passed through); 125 when the filter cannot be
 * installed or does not act (a kernel without seccomp, another architecture), saying why.
 */
import { dlopen, FFIType, ptr } from "bun:ffi";
import { RENAME_NOREPLACE, renameErrno } from "./renameProbe.ts";

/** Linux's numbers for the filter: the audit architecture and renameat2's syscall number. */
const ARCHES: Record<string, { audit: number; renameat2: number }> = {
  x64: { audit: 0xc000003e, renameat2: 316 },
  arm64: { audit: 0xc00000b7, renameat2: 276 },
};

const EINVAL = 22;
const PR_SET_NO_NEW_PRIVS = 38;
const PR_SET_SECCOMP = 22;
const SECCOMP_MODE_FILTER = 2;
const SECCOMP_RET_ALLOW = 0x7fff0000;
const SECCOMP_RET_ERRNO = 0x00050000;
// Classic BPF opcodes.
const LD_W_ABS = 0x20;
const JEQ_K = 0x15;
const JSET_K = 0x45;
const RET_K = 0x06;
/** Offsets in struct seccomp_data: nr, arch, then args[6] as u64 from 16 (the low half first). */
const NR = 0;
const ARCH = 4;
const ARG4_LOW = 16 + 4 * 8;

function fail(why: string): never {
  console.error(`withoutNoReplace: ${why}`);
  process.exit(125);
}

/** struct sock_filter: code (u16), jt (u8), jf (u8), k (u32). */
function program(audit: number, renameat2: number): Uint8Array {
  const ops: [number, number, number, number][] = [
    [LD_W_ABS, 0, 0, ARCH],
    [JEQ_K, 0, 5, audit], // another ABI: allowed
    [LD_W_ABS, 0, 0, NR],
    [JEQ_K, 0, 3, renameat2],
    [LD_W_ABS, 0, 0, ARG4_LOW], // the flags
    [JSET_K, 0, 1, RENAME_NOREPLACE],
    [RET_K, 0, 0, SECCOMP_RET_ERRNO | EINVAL],
    [RET_K, 0, 0, SECCOMP_RET_ALLOW],
  ];
  const bytes = new Uint8Array(ops.length * 8);
  const view = new DataView(bytes.buffer);
  ops.forEach(([code, jt, jf, k], i) => {
    view.setUint16(i * 8, code, true);
    view.setUint8(i * 8 + 2, jt);
    view.setUint8(i * 8 + 3, jf);
    view.setUint32(i * 8 + 4, k, true);
  });
  return bytes;
}

const argv = process.argv.slice(2);
if (argv.length === 0) fail("usage: bun test/withoutNoReplace.ts COMMAND ARGS…");
const arch = ARCHES[process.arch] ?? fail(`no filter for architecture ${process.arch}`);
const { symbols: libc } = dlopen("libc.so.6", {
  prctl: { args: [FFIType.i32, FFIType.u64, FFIType.u64, FFIType.u64, FFIType.u64], returns: FFIType.i32 },
});
const filter = program(arch.audit, arch.renameat2);
// struct sock_fprog: len (u16, then padding), then the pointer to the instructions.
const fprog = new BigUint64Array([BigInt(filter.length / 8), BigInt(ptr(filter))]);
if (libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) !== 0) fail("prctl(PR_SET_NO_NEW_PRIVS) failed");
if (libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, BigInt(ptr(fprog)), 0, 0) !== 0) fail("prctl(PR_SET_SECCOMP) failed: no seccomp filters here");

// The filter acts: a rename of nothing with the flag is EINVAL (ENOENT otherwise), without it ENOENT.
if (renameErrno(RENAME_NOREPLACE) !== EINVAL || renameErrno(0) !== 2) fail("the filter does not act on renameat2 here");

const run = Bun.spawnSync(argv, { stdio: ["inherit", "inherit", "inherit"] });
process.exit(run.exitCode ?? 125);
