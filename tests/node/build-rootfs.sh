#!/usr/bin/env bash
# Builds the root file system of Archipelago's throwaway test nodes from
# Debian packages only: Debian 13 (trixie) with systemd, dbus-user-session,
# podman 5 (Quadlet), crun, passt, uidmap, fuse-overlayfs, and the
# unprivileged service user `archipelago` (uid 1000, subuid/subgid
# 100000:65536, lingering). The same tree boots as an nspawn container and,
# with its kernel and initrd, as a qemu VM.
#
# Cached: the tree is kept under $ARCHIPELAGO_CACHE/nodes/rootfs-<hash>,
# where <hash> covers this script, so a changed recipe builds a new tree and
# an unchanged one is reused. Downloaded packages are kept in
# $ARCHIPELAGO_CACHE/debootstrap so a rebuild downloads nothing.
#
# Prints the path of the finished tree on stdout. Needs root.
set -euo pipefail

cache="${ARCHIPELAGO_CACHE:-/var/cache/archipelago}"
mirror="${ARCHIPELAGO_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
here="$(cd "$(dirname "$0")" && pwd)"
hash=$(sha256sum "$here/build-rootfs.sh" | cut -c1-16)
out="$cache/nodes/rootfs-$hash"

if [ -f "$out/.archipelago-complete" ]; then
  echo "$out"
  exit 0
fi
[ "$(id -u)" -eq 0 ] || { echo "build-rootfs.sh: needs root (debootstrap)" >&2; exit 1; }
command -v debootstrap >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >&2

log() { echo "build-rootfs: $*" >&2; }
start=$(date +%s)
mkdir -p "$cache/nodes" "$cache/debootstrap"
tmp="$out.partial"
rm -rf "$tmp"

packages=(
  systemd systemd-sysv dbus dbus-user-session libpam-systemd
  podman crun passt uidmap fuse-overlayfs catatonit conmon netavark aardvark-dns nftables
  golang-github-containers-common iproute2 ca-certificates busybox-static procps curl
  # VM flavour: a kernel, its initrd and the guest agent.
  linux-image-amd64 udev kmod e2fsprogs initramfs-tools zstd qemu-guest-agent
)
include=$(printf '%s\n' "${packages[@]}" | grep -v '^#' | paste -sd, -)
log "debootstrap trixie (${#packages[@]} packages and their dependencies)"
debootstrap --variant=minbase --include="$include" --cache-dir="$cache/debootstrap" \
  trixie "$tmp" "$mirror" >&2

log "configuring"
echo node > "$tmp/etc/hostname"
printf '127.0.0.1 localhost\n127.0.1.1 node\n::1 localhost\n' > "$tmp/etc/hosts"
: > "$tmp/etc/fstab"
# Quiet boots: no timers or first-boot prompts in a throwaway node.
for unit in apt-daily.timer apt-daily-upgrade.timer dpkg-db-backup.timer e2scrub_all.timer \
            fstrim.timer systemd-firstboot.service netavark-dhcp-proxy.socket \
            e2scrub_reap.service man-db.timer; do
  ln -sf /dev/null "$tmp/etc/systemd/system/$unit"
done
# Quadlet user units wait for the system's network-online.target: pull it in.
chroot "$tmp" systemctl add-wants multi-user.target network-online.target >&2
chroot "$tmp" systemctl enable systemd-networkd.service >&2
# The service user, with a user namespace range and lingering, so that its
# systemd manager (and its Quadlet units) start at boot.
chroot "$tmp" useradd --system --uid 1000 --user-group --home-dir /var/lib/archipelago \
  --create-home --shell /bin/bash archipelago
echo "archipelago:100000:65536" > "$tmp/etc/subuid"
echo "archipelago:100000:65536" > "$tmp/etc/subgid"
mkdir -p "$tmp/var/lib/systemd/linger"
touch "$tmp/var/lib/systemd/linger/archipelago"
# The root password is locked; nodes are entered with nsenter or the guest agent.
chroot "$tmp" passwd -l root >&2

# pasta (rootless networking) needs an interface with a default route to
# copy; a veth pair kept inside the node serves as that template.
mkdir -p "$tmp/etc/systemd/network"
cat > "$tmp/etc/systemd/network/50-pasta-template.netdev" <<'NET'
[NetDev]
Name=tmpl0
Kind=veth

[Peer]
Name=tmpl1
NET
cat > "$tmp/etc/systemd/network/50-pasta-template.network" <<'NET'
[Match]
Name=tmpl0

[Network]
Address=10.0.2.15/24
Gateway=10.0.2.2
NET
cat > "$tmp/etc/systemd/network/51-pasta-peer.network" <<'NET'
[Match]
Name=tmpl1

[Network]
LinkLocalAddressing=no
NET

# Images come from the harness's registry only: over the nodes' bridge
# (nspawn) or the VM's user network.
mkdir -p "$tmp/etc/containers/registries.conf.d" "$tmp/etc/containers/containers.conf.d"
cat > "$tmp/etc/containers/registries.conf.d/50-archipelago-test.conf" <<'CONF'
[[registry]]
location = "10.99.0.1:5000"
insecure = true

[[registry]]
location = "10.0.2.2:5000"
insecure = true
CONF

# Debian's kernel wants a small initrd with the virtio drivers to boot fast.
cat > "$tmp/etc/initramfs-tools/conf.d/archipelago.conf" <<'CONF'
MODULES=list
COMPRESS=zstd
CONF
printf '%s\n' virtio_pci virtio_blk virtio_net virtio_console virtio_rng ext4 > "$tmp/etc/initramfs-tools/modules"
chroot "$tmp" update-initramfs -u -k all >&2 || log "update-initramfs failed (the VM flavour will not boot)"

echo "$hash" > "$tmp/.archipelago-complete"
mv "$tmp" "$out"
log "done in $(( $(date +%s) - start )) s: $(du -sh "$out" | cut -f1)"
echo "$out"
