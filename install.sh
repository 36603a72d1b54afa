#!/usr/bin/env bash
# Sets stor up on this machine, as root: npm dependencies (Bun among them), the single binary
# dist/stor, installed as $PREFIX/bin/stor with its man pages and shell completions, and a
# commented /etc/stor/stor.ini if there is none.
# Safe to run again.
set -euo pipefail

PREFIX=${PREFIX:-/usr/local}
CONFIG=${STOR_CONFIG:-/etc/stor/stor.ini}
cd "$(dirname "$0")"

die() { printf 'install.sh: %s\n' "$*" >&2; exit 1; }
step() { printf '==> %s\n' "$*"; }

[ "$(id -u)" -eq 0 ] || die "run as root: stor mounts filesystems and installs into $PREFIX"
command -v npm >/dev/null || die "npm not found: install Node.js and npm first"

step "installing npm dependencies (Bun comes from the npm registry)"
if [ -f package-lock.json ]; then npm ci --no-audit --no-fund >/dev/null; else npm install --no-audit --no-fund >/dev/null; fi \
  || die "npm could not install the dependencies (is the npm registry reachable?)"
# Bun's package puts its binary in place from a postinstall script; an npm that blocks install
# scripts (npm 12 does, but for those package.json's allowScripts names) leaves a placeholder.
node_modules/.bin/bun --version >/dev/null 2>&1 \
  || die "node_modules/.bin/bun does not run after npm install (did npm skip Bun's postinstall script? see allowScripts in package.json)"

if command -v apt-get >/dev/null; then
  # mkfs and quota tools for volume size limits on XFS; not needed for the rest.
  missing=$(for p in xfsprogs e2fsprogs; do dpkg -s "$p" >/dev/null 2>&1 || echo "$p"; done)
  if [ -n "$missing" ]; then
    step "installing Debian packages: $missing"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null; } \
      || printf 'install.sh: warning: could not install %s; XFS volume quotas will be unavailable\n' "$missing" >&2
  fi
fi

step "building dist/stor"
node_modules/.bin/bun run build >/dev/null || die "the build failed: run 'node_modules/.bin/bun run build' to see why"

step "installing $PREFIX/bin/stor"
install -D -m 0755 dist/stor "$PREFIX/bin/stor"

# Man pages and completions come from the binary itself, so they describe exactly what it does.
step "installing man pages in $PREFIX/share/man/man1 and shell completions"
"$PREFIX/bin/stor" man --dir "$PREFIX/share/man" || die "could not write the man pages"
install -d -m 0755 "$PREFIX/share/bash-completion/completions" "$PREFIX/share/zsh/site-functions" "$PREFIX/share/fish/vendor_completions.d"
"$PREFIX/bin/stor" completion bash >"$PREFIX/share/bash-completion/completions/stor"
"$PREFIX/bin/stor" completion zsh >"$PREFIX/share/zsh/site-functions/_stor"
"$PREFIX/bin/stor" completion fish >"$PREFIX/share/fish/vendor_completions.d/stor.fish"
command -v mandb >/dev/null && mandb -q "$PREFIX/share/man" 2>/dev/null || true

if [ ! -e "$CONFIG" ]; then
  step "writing $CONFIG"
  install -d -m 0755 "$(dirname "$CONFIG")"
  cat >"$CONFIG" <<'INI'
; stor configuration. Every key is optional; these are the defaults.
; Command-line options and STOR_* environment variables override this file.

; Where all state lives (STOR_ROOT, --root).
;root = /var/lib/stor

; error, warn, info or debug (STOR_LOG_LEVEL, --log-level).
;log_level = warn

[snapshot]
; overlay or native. Unset: overlay where the kernel and filesystem support it, else native.
;default = overlay

[volume]
; local, or the name of a Docker volume plugin.
;default_driver = local
; Where volume plugins are looked for (space-separated; --plugin-dir adds more).
;plugin_dirs = /run/docker/plugins /etc/docker/plugins /usr/lib/docker/plugins
; Seconds a plugin call may take (Create and Mount: twice), and an unreachable plugin is retried.
;plugin_timeout = 60
;plugin_retry = 30
INI
fi

UNIT_DIR=${UNIT_DIR:-/etc/systemd/system}
step "installing $UNIT_DIR/stor-restore.service"
install -d -m 0755 "$UNIT_DIR"
cat >"$UNIT_DIR/stor-restore.service" <<UNIT
[Unit]
Description=stor restore: reconcile container storage after boot
DefaultDependencies=no
After=local-fs.target
Before=containerd.service docker.service
Conflicts=shutdown.target

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=$PREFIX/bin/stor restore

[Install]
WantedBy=multi-user.target
UNIT
# The servers for containerd and dockerd: installed, not enabled (see README, "Serving").
step "installing $UNIT_DIR/stor-containerd.service and stor-docker-volume.service (not enabled)"
cat >"$UNIT_DIR/stor-containerd.service" <<UNIT
[Unit]
Description=stor serve: containerd snapshotter (proxy plugin "stor")
After=local-fs.target stor-restore.service
Before=containerd.service

[Service]
ExecStart=$PREFIX/bin/stor --log-level info serve --containerd /run/stor/containerd.sock
Restart=on-failure
TimeoutStopSec=45

[Install]
WantedBy=multi-user.target
UNIT
cat >"$UNIT_DIR/stor-docker-volume.service" <<UNIT
[Unit]
Description=stor serve: Docker volume plugin "stor"
After=local-fs.target stor-restore.service
Before=docker.service

[Service]
ExecStart=$PREFIX/bin/stor --log-level info serve --docker-volume /run/docker/plugins/stor.sock
Restart=on-failure
TimeoutStopSec=45

[Install]
WantedBy=multi-user.target
UNIT

if [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then
  systemctl daemon-reload && systemctl enable stor-restore.service >/dev/null 2>&1 \
    || die "systemctl could not enable stor-restore.service"
else
  printf 'install.sh: systemd is not running here: run "%s restore" once at boot,\n' "$PREFIX/bin/stor"
  printf '  before containerd and docker start (e.g. from /etc/rc.local or your init system)\n'
fi

"$PREFIX/bin/stor" --version >/dev/null || die "$PREFIX/bin/stor does not run"
step "done: $("$PREFIX/bin/stor" --version)"
