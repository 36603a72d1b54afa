#!/usr/bin/env bash
# Run by `npm test` first (pretest): what the tests need on a fresh machine, installed if missing.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x node_modules/.bin/bun ] || npm ci --no-audit --no-fund >/dev/null
[ "$(id -u)" -eq 0 ] || exit 0 # the tests that need root say so themselves
command -v apt-get >/dev/null || exit 0
need=()
command -v mkfs.xfs >/dev/null || need+=(xfsprogs)
command -v mkfs.btrfs >/dev/null || need+=(btrfs-progs)
command -v mkfs.ext4 >/dev/null || need+=(e2fsprogs)
command -v setfattr >/dev/null || need+=(attr)
command -v setcap >/dev/null || need+=(libcap2-bin)
command -v containerd >/dev/null || need+=(containerd)
command -v dockerd >/dev/null || need+=(docker.io)
if [ ${#need[@]} -gt 0 ]; then
  echo "test/setup.sh: installing ${need[*]}"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
# The quota test (test/volume-quota.test.ts) boots a VM: qemu, a Debian kernel with its modules, static busybox.
vm=()
command -v qemu-system-x86_64 >/dev/null || vm+=(qemu-system-x86)
[ -x /bin/busybox ] && ! ldd /bin/busybox >/dev/null 2>&1 || vm+=(busybox-static)
kernel=
for d in /lib/modules/*/kernel/fs/xfs; do v=${d#/lib/modules/} && [ -e "/boot/vmlinuz-${v%%/*}" ] && kernel=${v%%/*}; done
[ -n "$kernel" ] || vm+=(linux-image-amd64)
if [ ${#vm[@]} -gt 0 ] && [ "$(dpkg --print-architecture)" = amd64 ]; then
  echo "test/setup.sh: installing ${vm[*]} (for the quota test's VM)"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${vm[@]}" >/dev/null
fi
