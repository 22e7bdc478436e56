#!/usr/bin/env bash
# What the real-node and desktop tests need, installed and cached on a
# fresh Debian machine (run as root): podman 5's Quadlet generator, the
# nspawn node tools and rootfs, the VM image (qemu), the desktop app's
# build and WebDriver stack. Sourced by tests/run.sh and release/gate, so
# that both run on exactly the same machine; exports ARCHIPELAGO_QUADLET
# and TAURI_DRIVER. Expects the repository root as working folder and a
# `say` function for its headings.

say "podman 5's Quadlet generator (checks every rendered unit file)"
ARCHIPELAGO_QUADLET=$(bash tests/tools/fetch-quadlet.sh)
export ARCHIPELAGO_QUADLET
"$ARCHIPELAGO_QUADLET" -version

say "test nodes: host tools, systemd-nspawn, the node rootfs (cached)"
bash tests/node/fetch-nspawn.sh >/dev/null
start=$(date +%s)
rootfs=$(bash tests/node/build-rootfs.sh)
echo "node rootfs: $rootfs ($(( $(date +%s) - start )) s)"
start=$(date +%s)
vm_image=$(bash tests/node/build-vm-image.sh)
echo "VM image: $vm_image ($(( $(date +%s) - start )) s)"

say "desktop app: WebKitGTK, Xvfb, WebKitWebDriver, tauri-driver, the frontend's npm packages"
TAURI_DRIVER=$(bash tests/desktop/setup.sh)
export TAURI_DRIVER
"$TAURI_DRIVER" --help >/dev/null

