/**
 * `volume create -o size=…`: a project quota on XFS, tested for real in a VM, because the
 * host's kernel may lack CONFIG_XFS_QUOTA. The VM boots Debian's kernel with an initramfs of
 * busybox, the XFS modules, mkfs.xfs, xfs_quota and the stor binary under test; the guest
 * script reports one `check` line per fact and this test asserts them all.
 */
import { expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { STOR, have, need, sh } from "./helpers.ts";
import { buildInitramfs } from "./vm/initramfs.ts";
import { QEMU, bootVm, findKernel, parseConsole } from "./vm/qemu.ts";

/** Kernel options the guest needs, built in or as modules. */
const KERNEL_CONFIG = ["CONFIG_XFS_FS", "CONFIG_XFS_QUOTA", "CONFIG_VIRTIO_BLK", "CONFIG_VIRTIO_PCI", "CONFIG_SERIAL_8250_CONSOLE"];
const BOOT_TIMEOUT_MS = 180_000;

/** Runs in the guest (busybox sh) with `say` and `check` from /init; /dev/vda is a blank 400 MiB disk. */
const SCRIPT = String.raw`
S="stor --config /dev/null"
FULL='No space left on device|Disk quota exceeded'
has() { echo "$1" | grep -Eq "$2"; }
i=0; while [ ! -b /dev/vda ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
out=$(mkfs.xfs -q /dev/vda 2>&1); rc=$?
check mkfs "exit $rc: $out" '[ $rc = 0 ]'
mkdir -p /plain /stor

# Without project quotas, size= is refused as an invalid argument (exit 2) and leaves no volume.
mount -t tmpfs tmpfs /plain
out=$($S --root /plain volume create -o size=10m nq 2>&1); rc=$?
check noquota-tmpfs "exit $rc: $out" '[ $rc = 2 ] && has "$out" "^stor: volume \"nq\": quota size requested but no quota support$" && [ ! -e /plain/volumes/nq ] && [ -z "$($S --root /plain volume ls -q)" ]'
mount -t xfs /dev/vda /stor
out=$($S --root /stor/plain volume create -o size=10m nq 2>&1); rc=$?
check noquota-xfs "exit $rc: $out" '[ $rc = 2 ] && has "$out" "no quota support$" && [ ! -e /stor/plain/volumes/nq ]'
rm -rf /stor/plain; umount /stor

out=$(mount -t xfs -o prjquota /dev/vda /stor 2>&1); rc=$?
check mount-prjquota "exit $rc: $out" '[ $rc = 0 ] && grep -q " /stor xfs .*prjquota" /proc/mounts'
out=$($S --root /stor volume create -o size=10m quota 2>&1); rc=$?
check create "exit $rc: $out" '[ $rc = 0 ] && [ "$out" = quota ]'
out=$(xfs_quota -x -c "report -p -n -b -N" /stor 2>&1)
check limit-set "$out" 'echo "$out" | awk "\$3 == 10240 && \$4 == 10240 { found = 1 } END { exit !found }"'
D=$($S --root /stor volume mount quota c1 2>&1)
check mount "$D" '[ "$D" = /stor/volumes/quota/_data ]'

# The first 5 MiB go in a subdirectory: what is made below _data inherits its project.
mkdir $D/sub
out=$(dd if=/dev/zero of=$D/sub/five bs=1M count=5 conv=fsync 2>&1); rc=$?
check write-5m "exit $rc: $out" '[ $rc = 0 ]'
out=$(xfs_quota -x -c "report -p -n -b -N" /stor 2>&1)
check subdir-counted "$out" 'echo "$out" | awk "\$2 >= 5120 && \$4 == 10240 { found = 1 } END { exit !found }"'
out=$(dd if=/dev/zero of=$D/more bs=1M count=20 conv=fsync 2>&1); rc=$?
check write-20m-more-fails "exit $rc: $out" '[ $rc != 0 ] && has "$out" "$FULL"'
used=$(du -sk $D | cut -f1)
check usage-capped "$used KiB in $D" '[ $used -le 10240 ] && [ $used -ge 9216 ]'

F=$($S --root /stor volume create free >/dev/null && $S --root /stor volume mount free c1)
out=$(dd if=/dev/zero of=$F/big bs=1M count=20 conv=fsync 2>&1); rc=$?
check other-volume-unlimited "exit $rc: $out" '[ $rc = 0 ]'
out=$($S --root /stor volume inspect quota 2>&1)
check inspect-size "$out" 'has "$out" "\"size\": \"10m\""'

$S --root /stor volume unmount quota c1
out=$($S --root /stor volume rm quota 2>&1); rc=$?
check rm "exit $rc: $out" '[ $rc = 0 ] && [ "$out" = quota ] && [ ! -e /stor/volumes/quota ]'
# A new volume with a limit gets all of it: nothing of the old one is still counted.
D=$($S --root /stor volume create -o size=10m again >/dev/null && $S --root /stor volume mount again c2)
out=$(dd if=/dev/zero of=$D/eight bs=1M count=8 conv=fsync 2>&1); rc=$?
check recreate-full-limit "exit $rc: $out" '[ $rc = 0 ]'
out=$(dd if=/dev/zero of=$D/more bs=1M count=8 conv=fsync 2>&1); rc=$?
check recreate-limited "exit $rc: $out" '[ $rc != 0 ] && has "$out" "$FULL"'

# A size past a 64-bit count of bytes is an invalid size, refused before anything is made.
out=$($S --root /stor volume create -o size=16384p huge 2>&1); rc=$?
check huge-size "exit $rc: $out" '[ $rc = 2 ] && [ "$out" = "stor: volume \"huge\": invalid size: '"'16384p'"'" ] && [ ! -e /stor/volumes/huge ]'
# A create killed with its directory built, limit and all: restore leaves nothing of it; made again, it is limited.
STOR_FAILPOINT=volume-create:built $S --root /stor volume create -o size=10m cut >/dev/null 2>&1
$S --root /stor restore >/dev/null 2>&1
out=$($S --root /stor volume ls -q; ls -A /stor/volumes)
check killed-built-gone "$out" '! has "$out" "cut|[.]new-"'
D=$($S --root /stor volume create -o size=10m cut >/dev/null && $S --root /stor volume mount cut c3)
out=$(dd if=/dev/zero of=$D/big bs=1M count=20 conv=fsync 2>&1); rc=$?
check killed-built-limited "exit $rc: $out" '[ $rc != 0 ] && has "$out" "$FULL"'

# A project id goes to one volume only, whatever else is on the filesystem: another root's
# volumes (ids from 1 there too), a volume restore adopted after its metadata was lost, a
# removal's trash that still holds files. Each case: the first volume keeps its own limit.
$S --root /stor/ra volume create -o size=10m a1 >/dev/null
$S --root /stor/rb volume create -o size=100m b1 >/dev/null
A=$($S --root /stor/ra volume mount a1 c1)
out=$(dd if=/dev/zero of=$A/big bs=1M count=20 conv=fsync 2>&1); rc=$?
check other-root-own-limit "exit $rc: $out" '[ $rc != 0 ] && has "$out" "$FULL"'
$S --root /stor/rc volume create -o size=10m v1 >/dev/null
rm -rf /stor/rc/volumes/.meta
out=$($S --root /stor/rc restore 2>&1)
check adopted "$out" 'has "$out" "adopted volume \"v1\""'
$S --root /stor/rc volume create -o size=1m v3 >/dev/null
V=$($S --root /stor/rc volume mount v1 c1)
out=$(dd if=/dev/zero of=$V/five bs=1M count=5 conv=fsync 2>&1); rc=$?
check adopted-own-limit "exit $rc: $out" '[ $rc = 0 ]'
T=$($S --root /stor/rd volume create -o size=10m t1 >/dev/null && $S --root /stor/rd volume mount t1 c1)
dd if=/dev/zero of=$T/eight bs=1M count=8 conv=fsync 2>/dev/null
$S --root /stor/rd volume unmount t1 c1
chattr +i $T/eight
out=$($S --root /stor/rd volume rm t1 2>&1); rc=$?
check rm-trash-left "exit $rc: $out" '[ $rc = 0 ] && [ -n "$(ls -d /stor/rd/volumes/.rm-* 2>/dev/null)" ]'
T=$($S --root /stor/rd volume create -o size=10m t2 >/dev/null && $S --root /stor/rd volume mount t2 c1)
out=$(dd if=/dev/zero of=$T/eight bs=1M count=8 conv=fsync 2>&1); rc=$?
check trash-project-not-reused "exit $rc: $out" '[ $rc = 0 ]'
chattr -i /stor/rd/volumes/.rm-*/_data/eight
# A create killed once made, made again without a size: no limit stays hidden on its data.
STOR_FAILPOINT=volume-create:made $S --root /stor/re volume create -o size=5m kk >/dev/null 2>&1
out=$($S --root /stor/re volume create kk 2>&1) && K=$($S --root /stor/re volume mount kk c1 2>&1) && out=$(dd if=/dev/zero of=$K/twenty bs=1M count=20 conv=fsync 2>&1)
rc=$?
opts=$($S --root /stor/re volume inspect kk 2>&1)
check retried-without-size-unlimited "exit $rc: $out $opts" '[ $rc = 0 ] && has "$opts" "\"Options\": \{\}"'
umount /stor
`;

const CHECKS = [
  "mkfs",
  "noquota-tmpfs",
  "noquota-xfs",
  "mount-prjquota",
  "create",
  "limit-set",
  "mount",
  "write-5m",
  "subdir-counted",
  "write-20m-more-fails",
  "usage-capped",
  "other-volume-unlimited",
  "inspect-size",
  "rm",
  "recreate-full-limit",
  "recreate-limited",
  "huge-size",
  "killed-built-gone",
  "killed-built-limited",
  "other-root-own-limit",
  "adopted",
  "adopted-own-limit",
  "rm-trash-left",
  "trash-project-not-reused",
  "retried-without-size-unlimited",
];

/** Why the VM cannot run here, or undefined when it can. */
function missing(): string | undefined {
  if (!existsSync(STOR)) return `${STOR}: no stor binary (bun run build, or set STOR_BIN)`;
  if (!have(QEMU)) return `${QEMU} not found (apt-get install qemu-system-x86)`;
  if (!have("mkfs.xfs") || !have("xfs_quota")) return "mkfs.xfs or xfs_quota not found (apt-get install xfsprogs)";
  if (!have("chattr")) return "chattr not found (apt-get install e2fsprogs)";
  if (!existsSync("/bin/busybox")) return "/bin/busybox not found (apt-get install busybox-static)";
  if (!findKernel(KERNEL_CONFIG)) return `no kernel in /boot and /lib/modules with ${KERNEL_CONFIG.join(", ")} (apt-get install linux-image-amd64)`;
}

/** Why the VM cannot run, after test/setup.sh has installed what is missing under CI (it installs only that). */
function missingAfterSetup(): string | undefined {
  const why = missing();
  if (!why || process.env.CI !== "true" || process.getuid?.() !== 0) return why;
  const setup = sh(["bash", resolve(import.meta.dir, "setup.sh")]);
  const still = missing();
  return still && setup.code !== 0 ? `${still}; test/setup.sh: exit ${setup.code}: ${setup.stderr.trim()}` : still;
}

const why = missingAfterSetup();

test.skipIf(!need(why === undefined, `a VM with XFS quotas: ${why}`))(
  "size= on XFS with project quotas: writing past the limit fails (in a VM)",
  async () => {
    const kernel = findKernel(KERNEL_CONFIG)!;
    const initramfs = buildInitramfs({
      kernel,
      modules: ["crc32c_generic", "virtio_pci", "virtio_blk", "xfs"],
      binaries: [[STOR, "/usr/bin/stor"], Bun.which("mkfs.xfs")!, Bun.which("xfs_quota")!, Bun.which("chattr")!],
      script: SCRIPT,
    });
    const run = await bootVm({ kernel, initramfs, disksMiB: [400], timeoutMs: BOOT_TIMEOUT_MS });
    const report = parseConsole(run.console);
    const how = `kernel ${kernel}, ${run.accel}, ${run.ms} ms, qemu exit ${run.exitCode}${run.timedOut ? ", killed at the deadline" : ""}`;
    console.log(`VM: ${how}`);
    if (report.done === undefined) {
      throw new Error(`the VM did not finish (${how})\n--- qemu stderr:\n${run.stderr}\n--- console (end):\n${run.console.slice(-4000)}`);
    }
    // Every expected check and any other the guest reported: "ok", or why not.
    const verdict = (n: string) => {
      const c = report.checks.get(n);
      return c === undefined ? "not reported" : c.ok ? "ok" : `FAIL: ${c.detail}`;
    };
    const got = Object.fromEntries([...CHECKS, ...report.checks.keys()].map((n) => [n, verdict(n)]));
    expect({ errors: report.other, checks: got }).toEqual({
      errors: [],
      checks: Object.fromEntries(CHECKS.map((n) => [n, "ok"])),
    });
  },
  600_000,
);
