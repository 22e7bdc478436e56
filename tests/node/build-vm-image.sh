#!/usr/bin/env bash
# Builds the disk image of the VM flavour of Archipelago's test nodes from
# the node rootfs (tests/node/build-rootfs.sh): an ext4 image of the tree
# (`base.img`, raw, 3 GB sparse), the tree's kernel and initrd next to it,
# and what only a VM needs, written into the image and never into the
# shared rootfs:
#   - /etc/fstab with the root file system (/dev/vda);
#   - a systemd-networkd .network taking an address by DHCP on the virtio
#     NIC (qemu's user network gives 10.0.2.15, gateway and host 10.0.2.2);
#     the rootfs's pasta template veth (10.0.2.15/24, gateway 10.0.2.2) is
#     removed from the image: it would clash with that very subnet, and the
#     VM's real NIC is the template pasta needs;
#   - qemu-guest-agent enabled (the harness runs commands through it).
# Each node boots from a qcow2 overlay on base.img (see
# tests/harness/src/vm.rs); base.img is never written after this script.
#
# Also installs the host's qemu (qemu-system-x86 from bookworm-backports,
# without recommends: nothing else on the host is upgraded).
#
# Cached: $ARCHIPELAGO_CACHE/nodes/vm-<rootfs-hash>, rebuilt when the rootfs
# or this script changes. Prints that folder on stdout. Needs root.
set -euo pipefail

cache="${ARCHIPELAGO_CACHE:-/var/cache/archipelago}"
here="$(cd "$(dirname "$0")" && pwd)"
log() { echo "build-vm-image: $*" >&2; }

[ "$(id -u)" -eq 0 ] || { echo "build-vm-image.sh: needs root (apt-get, mkfs.ext4 -d)" >&2; exit 1; }

# The host's qemu: Debian 12's own is 7.2; the verified recipe is 10.0 from
# bookworm-backports.
if ! command -v qemu-system-x86_64 >/dev/null 2>&1 || ! command -v qemu-img >/dev/null 2>&1; then
  if ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
    log "adding bookworm-backports as an apt source"
    echo 'deb http://deb.debian.org/debian bookworm-backports main' > /etc/apt/sources.list.d/bookworm-backports.list
  fi
  log "installing qemu-system-x86 and qemu-utils from bookworm-backports"
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    -t bookworm-backports qemu-system-x86 qemu-utils >&2
fi
command -v debugfs >/dev/null && command -v mkfs.ext4 >/dev/null \
  || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq e2fsprogs >&2

rootfs=$(bash "$here/build-rootfs.sh")
rootfs_hash=$(basename "$rootfs" | sed 's/^rootfs-//')
script_hash=$(sha256sum "$here/build-vm-image.sh" | cut -c1-16)
out="$cache/nodes/vm-$rootfs_hash"
stamp="$rootfs_hash $script_hash"

if [ -f "$out/.archipelago-complete" ] && [ "$(cat "$out/.archipelago-complete")" = "$stamp" ]; then
  echo "$out"
  exit 0
fi

start=$(date +%s)
tmp="$out.partial"
rm -rf "$tmp"
mkdir -p "$tmp"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

kernel=$(ls "$rootfs"/boot/vmlinuz-* | sort -V | tail -n1)
initrd=$(ls "$rootfs"/boot/initrd.img-* | sort -V | tail -n1)
[ -f "$kernel" ] && [ -f "$initrd" ] || { log "no kernel or initrd in $rootfs/boot"; exit 1; }
cp "$kernel" "$tmp/vmlinuz"
cp "$initrd" "$tmp/initrd"

log "mkfs.ext4 -d $rootfs (3G)"
mkfs.ext4 -q -F -L archipelago-node -d "$rootfs" "$tmp/base.img" 3G >&2

# What only the VM gets, written into the image with debugfs.
echo '/dev/vda / ext4 defaults 0 1' > "$work/fstab"
cat > "$work/20-vm.network" <<'NET'
# qemu's user network: 10.0.2.15 by DHCP, the host (the run's namespace)
# at 10.0.2.2. IPv4 only: slirp's IPv6 would make network-online wait for
# DHCPv6 that never answers.
[Match]
Name=en* eth*

[Network]
DHCP=ipv4
LinkLocalAddressing=no
IPv6AcceptRA=no
NET
chmod 644 "$work/fstab" "$work/20-vm.network"
cat > "$work/debugfs.cmds" <<CMDS
rm /etc/fstab
write $work/fstab /etc/fstab
rm /etc/systemd/network/50-pasta-template.netdev
rm /etc/systemd/network/50-pasta-template.network
rm /etc/systemd/network/51-pasta-peer.network
write $work/20-vm.network /etc/systemd/network/20-vm.network
symlink /etc/systemd/system/multi-user.target.wants/qemu-guest-agent.service /usr/lib/systemd/system/qemu-guest-agent.service
CMDS
debugfs -w -f "$work/debugfs.cmds" "$tmp/base.img" >"$work/debugfs.log" 2>&1 \
  || { cat "$work/debugfs.log" >&2; exit 1; }
# debugfs does not fail when a single command does: check the result.
in_image() { debugfs -R "$1" "$tmp/base.img" 2>/dev/null; }
check() { "$@" || { cat "$work/debugfs.log" >&2; log "the image was not changed as intended ($*)"; exit 1; }; }
check [ "$(in_image 'cat /etc/fstab')" = "$(cat "$work/fstab")" ]
check [ "$(in_image 'cat /etc/systemd/network/20-vm.network')" = "$(cat "$work/20-vm.network")" ]
check [ "$(in_image 'ls -p /etc/systemd/network' | grep -c pasta)" = 0 ]
check [ "$(in_image 'stat /etc/systemd/system/multi-user.target.wants/qemu-guest-agent.service' | grep -c 'Fast link dest: "/usr/lib/systemd/system/qemu-guest-agent.service"')" = 1 ]
e2fsck -fn "$tmp/base.img" >&2

echo "$stamp" > "$tmp/.archipelago-complete"
rm -rf "$out"
mv "$tmp" "$out"
log "done in $(( $(date +%s) - start )) s: $(du -sh "$out" | cut -f1) used of $(du -sh --apparent-size "$out" | cut -f1)"
echo "$out"
