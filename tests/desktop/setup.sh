#!/usr/bin/env bash
# Installs what building the desktop app (src-tauri/) and driving it in a
# real window needs, on Debian 12, as root; safe to run again (CI runs it on
# every job, a second run installs nothing).
#
# - apt: WebKitGTK 4.1, GTK 3 and friends (Tauri 2's Linux webview), the
#   compiler toolchain's C side, WebKitWebDriver, Xvfb, a session D-Bus and
#   fonts (without fonts WebKit renders boxes, and screenshots are useless).
# - tauri-driver (the WebDriver proxy for Tauri apps), built once with
#   `cargo install --locked` into a cache folder that CI keeps between runs.
# - the frontend's npm packages (the Tauri CLI among its devDependencies),
#   when frontend/package.json exists.
#
# Prints the path of tauri-driver on stdout; everything else goes to stderr.
set -euo pipefail
cd "$(dirname "$0")/../.."

cache="${ARCHIPELAGO_CACHE:-/var/cache/archipelago}"
tools="$cache/cargo-tools"
driver="$tools/bin/tauri-driver"
# The tauri-driver release the e2e tests are written against.
driver_version="2.0.6"

log() { printf 'desktop setup: %s\n' "$*" >&2; }

if [ "$(id -u)" -ne 0 ]; then
  log "run as root (it installs Debian packages)"
  exit 1
fi

packages=(
  # Build: Tauri 2 on Linux links against these.
  build-essential pkg-config curl file
  libwebkit2gtk-4.1-dev libjavascriptcoregtk-4.1-dev libsoup-3.0-dev
  libgtk-3-dev librsvg2-dev
  # Run and drive: WebDriver for WebKitGTK, a virtual display, a session
  # bus (WebKit and GTK want one), xauth for xvfb-run.
  webkit2gtk-driver xvfb xauth dbus-x11 at-spi2-core
  # Readable text in the window and in screenshots.
  fonts-dejavu-core fonts-noto-core fonts-noto-color-emoji
  # Screenshots of the whole virtual display (the README's main command).
  imagemagick x11-apps
)
missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed'; then
    missing+=("$p")
  fi
done
if [ "${#missing[@]}" -gt 0 ]; then
  log "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  log "installing Node.js and npm (Debian's) for the frontend"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm >&2
fi

if [ ! -x "$driver" ] || ! "$driver" --help >/dev/null 2>&1 \
  || [ "$(cat "$tools/tauri-driver.version" 2>/dev/null)" != "$driver_version" ]; then
  log "building tauri-driver $driver_version into $tools"
  mkdir -p "$tools"
  cargo install --locked --quiet --root "$tools" --version "$driver_version" tauri-driver >&2
  echo "$driver_version" >"$tools/tauri-driver.version"
fi

# The frontend's packages, the Tauri CLI among them; `npm ci` only when the
# lock file changed since the last install (it empties node_modules first).
if [ -f frontend/package.json ]; then
  stamp=frontend/node_modules/.package-lock.json
  if [ ! -f "$stamp" ] || [ frontend/package-lock.json -nt "$stamp" ]; then
    log "frontend: npm ci"
    (cd frontend && npm ci --no-audit --no-fund --loglevel=error >&2)
  fi
  if [ ! -x frontend/node_modules/.bin/tauri ]; then
    log "warning: frontend/package.json has no @tauri-apps/cli devDependency"
  fi
fi

echo "$driver"
