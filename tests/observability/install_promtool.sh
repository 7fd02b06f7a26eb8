#!/bin/sh
# Installs promtool alone, from Debian 12's `prometheus` package, without installing the
# package: `apt-get install prometheus` would add a 96 MB server, a system user and a
# service that starts itself on port 9090 (on hosts where systemd runs). promtool is one
# binary that needs only libc, so it is taken out of the .deb and nothing else is touched.
#
#   tests/observability/install_promtool.sh [DESTDIR]   (default /usr/local/bin; needs apt)
#
# Does nothing when a promtool is already on PATH (or in DESTDIR). scripts/test runs it.
set -eu
dest=${1:-/usr/local/bin}
if [ -x "$dest/promtool" ] || command -v promtool >/dev/null 2>&1; then
    exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# apt downloads as _apt when it can write the folder; otherwise it warns and goes on as root.
chown _apt "$tmp" 2>/dev/null || true
# A fresh machine may have no package lists yet: update once and try again.
(cd "$tmp" && apt-get download -q prometheus) || { apt-get update -qq && (cd "$tmp" && apt-get download -q prometheus); }
dpkg-deb --fsys-tarfile "$tmp"/prometheus_*.deb | tar -x -C "$tmp" ./usr/bin/promtool
mkdir -p "$dest"
install -m 0755 "$tmp/usr/bin/promtool" "$dest/promtool"
"$dest/promtool" --version 2>&1 | head -n 1
