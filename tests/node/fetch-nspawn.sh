#!/usr/bin/env bash
# Puts systemd-nspawn where the node harness looks for it, without
# installing Debian 12's systemd-container (which would upgrade the host's
# systemd): the package is downloaded and unpacked into the cache. Its
# binary uses the host's own libsystemd-shared, so the package must be the
# host's systemd release. Also installs the host tools the harness drives
# (and dpkg-deb and objdump, which release/build-deb.sh needs for the
# daemon's package the node tests install).
# Prints the path of systemd-nspawn.
set -euo pipefail
cache="${ARCHIPELAGO_CACHE:-/var/cache/archipelago}"
bin="$cache/nspawn/usr/bin/systemd-nspawn"

need=()
for tool in debootstrap:debootstrap docker-registry:docker-registry skopeo:skopeo \
            busybox:busybox-static nsenter:util-linux ip:iproute2 curl:curl \
            dpkg-deb:dpkg objdump:binutils; do
  command -v "${tool%%:*}" >/dev/null 2>&1 || need+=("${tool#*:}")
done
if [ ${#need[@]} -gt 0 ]; then
  [ "$(id -u)" -eq 0 ] || { echo "fetch-nspawn.sh: installing ${need[*]} needs root" >&2; exit 1; }
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >&2
fi

if [ -x "$bin" ] && "$bin" --version >/dev/null 2>&1; then
  echo "$bin"
  exit 0
fi
work=$(mktemp -d)
chmod 755 "$work"
trap 'rm -rf "$work"' EXIT
version=$(dpkg-query -W -f '${Version}' systemd)
(cd "$work" && apt-get download -qq "systemd-container=$version" >&2 || apt-get download -qq systemd-container/bookworm >&2)
rm -rf "$cache/nspawn"
mkdir -p "$cache/nspawn"
dpkg -x "$work"/systemd-container_*.deb "$cache/nspawn"
"$bin" --version >/dev/null
echo "$bin"
