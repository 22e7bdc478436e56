#!/usr/bin/env bash
# Puts podman 5's Quadlet generator where the golden-file tests look for it.
#
# The host is Debian 12, whose podman (4.3) has no Quadlet. Debian 13's podman
# package ships /usr/libexec/podman/quadlet, a static-enough binary that needs
# only libc, so we download that one package (without installing it) and
# unpack it into a cache folder. trixie is added as an apt source pinned to
# priority 100 so that nothing on the host is ever upgraded from it.
#
# Prints the path of the quadlet binary on stdout.
set -euo pipefail

cache="${ARCHIPELAGO_CACHE:-/var/cache/archipelago}"
dest="$cache/podman-trixie"
bin="$dest/usr/libexec/podman/quadlet"

pin=/etc/apt/preferences.d/archipelago-trixie
if [ "$(id -u)" -eq 0 ]; then
  # Written every time: priority 1 keeps trixie below everything installed
  # (backports included), so no upgrade ever takes a package from it.
  printf '%s\n' \
    "# Archipelago's test harness downloads single trixie packages from here;" \
    "# nothing may be installed or upgraded from trixie on this host." \
    "Package: *" "Pin: release n=trixie" "Pin-Priority: 1" >"$pin"
fi

if [ -x "$bin" ] && "$bin" -version >/dev/null 2>&1; then
  echo "$bin"
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "fetch-quadlet: the Quadlet generator is not cached at $bin and fetching it needs root (apt)." >&2
  exit 1
fi

src=/etc/apt/sources.list.d/archipelago-trixie.sources
if [ ! -f "$src" ]; then
  cat >"$src" <<'SRC'
Types: deb
URIs: http://deb.debian.org/debian
Suites: trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
fi

apt-get update -qq >&2
work=$(mktemp -d)
chmod 755 "$work"
trap 'rm -rf "$work"' EXIT
(cd "$work" && apt-get download -qq podman/trixie >&2)
mkdir -p "$dest"
dpkg -x "$work"/podman_*.deb "$dest"
"$bin" -version >/dev/null
echo "$bin"
