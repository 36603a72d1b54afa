#!/usr/bin/env bash
# Run by `npm test` first (pretest): what the tests need on a fresh machine, installed if missing.
set -euo pipefail
cd "$(dirname "$0")/.."
node_modules/.bin/bun --version >/dev/null 2>&1 || npm ci --no-audit --no-fund >/dev/null
node_modules/.bin/bun --version >/dev/null 2>&1 || { echo "test/setup.sh: node_modules/.bin/bun does not run after npm ci (did npm skip Bun's postinstall script? see allowScripts in package.json)" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || exit 0 # the tests that need root say so themselves
command -v apt-get >/dev/null || exit 0
# Each package is named, with why it is needed, before anything is installed (README, "Test").
need=()
want() { need+=("$1"); echo "test/setup.sh: will install $1: $2"; }
command -v mkfs.xfs >/dev/null || want xfsprogs "XFS loop filesystems (reflink copies, project quotas)"
command -v mkfs.btrfs >/dev/null || want btrfs-progs "btrfs loop filesystems (the btrfs snapshotter)"
command -v mkfs.ext4 >/dev/null || want e2fsprogs "ext4 loop filesystems"
command -v setfattr >/dev/null || want attr "setfattr, to give test files extended attributes"
command -v setcap >/dev/null || want libcap2-bin "setcap, to give test files capabilities"
command -v zsh >/dev/null || want zsh "zsh, to check stor's zsh completion script parses"
command -v fish >/dev/null || want fish "fish, to check stor's fish completion script parses"
command -v cc >/dev/null || want gcc "cc, to build the errno test's LD_PRELOAD library (test/clobberErrno.c)"
command -v script >/dev/null || want bsdutils "script, a pseudo-terminal for the progress tests"
command -v man >/dev/null || want man-db "man and groff, to check the man pages stor writes"
command -v containerd >/dev/null || want containerd "containerd and ctr, which drive stor serve as a snapshotter"
command -v dockerd >/dev/null || want docker.io "dockerd, which uses stor serve as a volume plugin"
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
# The quota test (test/volume-quota.test.ts) boots a VM: qemu, a Debian kernel with its modules, static busybox.
[ "$(dpkg --print-architecture)" = amd64 ] || exit 0
vm=()
vmwant() { vm+=("$1"); echo "test/setup.sh: will install $1: $2 (for the quota test's VM)"; }
command -v qemu-system-x86_64 >/dev/null || vmwant qemu-system-x86 "qemu, to boot the VM"
[ -x /bin/busybox ] && ! ldd /bin/busybox >/dev/null 2>&1 || vmwant busybox-static "a static busybox, the VM's userland"
kernel=
for d in /lib/modules/*/kernel/fs/xfs; do v=${d#/lib/modules/} && [ -e "/boot/vmlinuz-${v%%/*}" ] && kernel=${v%%/*}; done
[ -n "$kernel" ] || vmwant linux-image-amd64 "a Linux kernel with XFS modules, the VM's kernel"
if [ ${#vm[@]} -gt 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${vm[@]}" >/dev/null
fi
