#!/usr/bin/env bash
# The desktop app connected to a local demo node, in one command, on a
# fresh Debian 12 machine, as root:
#
#   bash tests/node/demo.sh
#
# Installs what the desktop app and the node harness need
# (tests/desktop/setup.sh, tests/node/fetch-nspawn.sh), builds the frontend
# and the app, boots a demo node — its own network namespace, the local
# registry serving the fixture apps, an nspawn node with the daemon's .deb
# installed, a password set, the fixture apps in its catalog — and opens
# the desktop app inside that namespace, paired with the node and logged
# in, on its dashboard. Without $DISPLAY the window is on Xvfb. It prints
# where it saved a screenshot of the dashboard, and keeps everything until
# Enter (end of input — `</dev/null` — stops right after the screenshot).
# Screenshots go to $ARCHIPELAGO_ARTIFACTS (default /var/tmp/archipelago-demo).
# See tests/e2e/src/bin/archipelago-demo.rs.
set -euo pipefail
cd "$(dirname "$0")/../.."
say() { printf 'demo: %s\n' "$*" >&2; }

say "installing what the app and the node need (first run: a few minutes)"
bash tests/desktop/setup.sh >/dev/null
bash tests/node/fetch-nspawn.sh >/dev/null
say "building the frontend"
(cd frontend && npm run --silent build >/dev/null)
say "building the desktop app and the demo"
cargo build -q -p archipelago-desktop --bin archipelago-desktop
cargo build -q -p archipelago-e2e --bin archipelago-demo
target="${CARGO_TARGET_DIR:-$PWD/target}"
exec "$target/debug/archipelago-demo" "$@"
