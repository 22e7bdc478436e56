#!/usr/bin/env bash
# The artifact step of the release gate: builds everything a release
# publishes into one staging folder,
#
#   bash release/build-artifacts.sh --out DIR
#
#   archipelagod_<version>_amd64.deb    the node daemon's package (release/build-deb.sh)
#   archipelagod_<version>_arm64.deb    the same, cross-built, when this machine can
#                                       (else ARM64.txt says what was tried and why not)
#   Archipelago_<version>_amd64.deb     the desktop app's package (Tauri CLI's bundler)
#   Archipelago_<version>_amd64.AppImage  when the bundler's tools can be had
#                                       (else APPIMAGE.txt says why not)
#   catalog/                            the signed official catalog, laid out as in the
#                                       repository (catalog/, apps/, icons/), checked first
#   archipelago-catalog-<version>.tar.gz  that folder as one file
#   CHANGELOG.md                        release/CHANGELOG.md, for people, not developers;
#                                       it must have a "## <version> …" section
#
# Why a staging folder: the gate moves DIR's contents to release/out/ only
# once every test passed, so this script writes its results nowhere but DIR
# (cargo's target folder aside, which is a build cache) and refuses DIR
# inside release/out. It never signs anything: the catalog's signature is
# checked, not made (the key is not on build machines). No SHA256SUMS
# either: the gate writes it when it publishes.
#
# Rerunning overwrites: the files this script makes are removed from DIR
# first (only those), so nothing stale of an earlier run survives.
# Honours CARGO_TARGET_DIR. Runs as root on Debian (it installs the desktop
# build's packages through tests/desktop/setup.sh, and the arm64 cross
# compiler). Progress lines start with "==" and give the seconds since the
# start; the last line is DIR.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
cargo="${CARGO:-cargo}"
out=
arm64_target=aarch64-unknown-linux-gnu

usage() {
  echo "usage: $0 --out DIR" >&2
  exit 2
}
while [ $# -gt 0 ]; do
  case "$1" in
  --out) [ $# -ge 2 ] || usage; out="$2"; shift 2 ;;
  -h | --help) usage ;;
  *) usage ;;
  esac
done
[ -n "$out" ] || usage

start=$SECONDS
timings=()
step_start=$SECONDS
step_name=
step() {
  step_name="$1"
  step_start=$SECONDS
  echo "== [$((SECONDS - start))s] $1"
}
step_done() {
  local took=$((SECONDS - step_start))
  timings+=("$(printf '%5ss  %s' "$took" "$step_name")")
  echo "   done in ${took}s${1:+: $1}"
}
die() {
  echo "build-artifacts: $*" >&2
  exit 1
}

# Checked before anything is made: never even a folder in release/out.
out="$(realpath -m "$out")"
case "$out/" in
"$root/release/out/"*) die "$out is inside release/out: give a staging folder (the gate publishes into release/out)" ;;
"$root/") die "--out is the repository itself: give a staging folder" ;;
esac
mkdir -p "$out"
cd "$root"

# The version: [workspace.package] version in the workspace's Cargo.toml.
version=$(sed -n '/^\[workspace\.package\]/,/^\[/ s/^version *= *"\([^"]*\)".*/\1/p' Cargo.toml | head -n1)
[ -n "$version" ] || die "no [workspace.package] version in $root/Cargo.toml"
target_dir=$("$cargo" metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
[ -n "$target_dir" ] || die "cargo metadata named no target directory"
echo "== Archipelago $version: artifacts into $out (cargo target folder $target_dir)"

# What an earlier run left in DIR; nothing else in DIR is touched.
rm -rf "$out/catalog"
rm -f "$out"/*.AppImage "$out"/archipelago-catalog-*.tar.gz \
  "$out/ARM64.txt" "$out/APPIMAGE.txt" "$out/CHANGELOG.md"
for f in "$out"/*.deb; do
  [ -e "$f" ] || continue
  # The daemon's packages and the desktop app's (Tauri names it after
  # tauri.conf.json's productName).
  case "$(dpkg-deb -f "$f" Package 2>/dev/null)" in
  archipelagod | archipelago) rm -f "$f" ;;
  esac
done

# A .deb must be a valid package holding the given file.
check_deb() {
  local deb="$1" file="$2"
  dpkg-deb -I "$deb" >/dev/null || die "$deb is not a valid Debian package"
  # dpkg-deb lists "./usr/…", Tauri's bundler "usr/…".
  dpkg-deb -c "$deb" | awk '{print $NF}' | sed 's|^\./||' | grep -qx "$file" || die "$deb has no /$file"
}
# Quotes a command's error lines for the notes below, without terminal
# colours: the lines matching $2 if any do, else the last ones.
error_lines() {
  local text
  text=$(sed -E 's/\x1b\[[0-9;]*[A-Za-z]//g' "$1" | grep -v '^[[:space:]]*$' || true)
  { grep -E "${2:-^$}" <<<"$text" || tail -n 8 <<<"$text"; } | sed 's/^/    /'
}
logs=$(mktemp -d "${TMPDIR:-/tmp}/build-artifacts.XXXXXX")
trap 'rm -rf "$logs"' EXIT

# 1. The daemon's package, for this machine's architecture (amd64).
step "building the daemon .deb (release, $(dpkg --print-architecture))"
deb=$(bash "$here/build-deb.sh" --profile release --out "$out" | tail -n1)
check_deb "$deb" usr/bin/archipelagod
step_done "$(basename "$deb")"

# 2. The daemon for arm64, cross-built, if this machine can: the Rust target
# (rustup, from static.rust-lang.org) and Debian's cross compiler (apt). If
# either cannot be had, ARM64.txt says what was tried and what failed, and
# the release goes out without an arm64 package. Once both are there, a
# failing build is a real failure and stops the script.
step "building the daemon .deb (release, arm64, cross-compiled for $arm64_target)"
arm64_missing=
arm64_log="$logs/arm64.log"
sysroot=$(rustc --print sysroot)
if [ -d "$sysroot/lib/rustlib/$arm64_target/lib" ]; then
  echo "   Rust target $arm64_target: installed"
elif ! command -v rustup >/dev/null 2>&1; then
  arm64_missing="the Rust standard library for $arm64_target is not installed in $sysroot and there is no rustup on this machine to add it"
  echo "(no rustup)" >"$arm64_log"
else
  echo "   Rust target $arm64_target: rustup target add (timeout 300 s)"
  if ! RUST_BACKTRACE=0 timeout 300 rustup target add "$arm64_target" >"$arm64_log" 2>&1; then
    arm64_missing="\`rustup target add $arm64_target\` (which downloads the target's standard library from static.rust-lang.org) failed"
  fi
fi
if [ -z "$arm64_missing" ] && ! command -v aarch64-linux-gnu-gcc >/dev/null 2>&1; then
  cross_packages=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross)
  echo "   cross compiler: apt-get install ${cross_packages[*]}"
  if [ "$(id -u)" -ne 0 ]; then
    arm64_missing="Debian's cross compiler (${cross_packages[*]}) is not installed, and installing it needs root"
    echo "(not root)" >"$arm64_log"
  elif ! {
    export DEBIAN_FRONTEND=noninteractive
    timeout 600 apt-get install -y -qq --no-install-recommends "${cross_packages[@]}" ||
      { timeout 300 apt-get update -qq && timeout 600 apt-get install -y -qq --no-install-recommends "${cross_packages[@]}"; }
  } >"$arm64_log" 2>&1; then
    arm64_missing="\`apt-get install ${cross_packages[*]}\` (Debian's cross compiler, linker and binutils for arm64) failed"
  fi
fi
if [ -z "$arm64_missing" ]; then
  deb_arm64=$(bash "$here/build-deb.sh" --profile release --target "$arm64_target" --out "$out" | tail -n1)
  check_deb "$deb_arm64" usr/bin/archipelagod
  [ "$(dpkg-deb -f "$deb_arm64" Architecture)" = arm64 ] || die "$deb_arm64 is not an arm64 package"
  dpkg-deb --fsys-tarfile "$deb_arm64" | tar -xOf - ./usr/bin/archipelagod >"$logs/archipelagod-arm64"
  readelf -h "$logs/archipelagod-arm64" | grep -q 'Machine:.*AArch64' || die "$deb_arm64 holds no AArch64 program"
  step_done "$(basename "$deb_arm64")"
else
  {
    echo "No arm64 package of archipelagod in this release. It is cross-compiled" \
      "on the amd64 build machine, and $arm64_missing, so it could not be built." \
      "On a machine that can reach static.rust-lang.org and Debian's mirrors," \
      "\`bash release/build-deb.sh --profile release --target $arm64_target\`" \
      "builds it the same way as the amd64 package." | fmt -w 76
    echo
    echo "The error:"
    echo
    error_lines "$arm64_log" '[Ee]rror|E: |failed|no rustup|not root'
  } >"$out/ARM64.txt"
  echo "   no arm64 .deb: see ARM64.txt ($arm64_missing)"
  step_done "skipped, ARM64.txt written"
fi

# 3. The desktop app: the frontend first (the binary embeds frontend/dist),
# then the Tauri CLI from the frontend's devDependencies builds the release
# binary and bundles it. tauri.conf.json keeps bundling off for everyday
# builds; it is switched on here, for this build only.
step "desktop app: build dependencies (tests/desktop/setup.sh) and the frontend (npm run build)"
bash tests/desktop/setup.sh >/dev/null
tauri="$root/frontend/node_modules/.bin/tauri"
[ -x "$tauri" ] || die "no Tauri CLI in frontend/node_modules (@tauri-apps/cli is a devDependency of frontend/package.json)"
(cd frontend && npm run --silent build >&2)
step_done

bundle_dir="$target_dir/release/bundle"
tauri_build() {
  (cd src-tauri && "$tauri" build --ci --config '{"bundle":{"active":true}}' --bundles "$1" -- --locked)
}

step "building the desktop app .deb (tauri build --bundles deb, release)"
rm -rf "$bundle_dir/deb"
tauri_build deb >&2
desktop_debs=()
for f in "$bundle_dir"/deb/*.deb; do
  [ -e "$f" ] || continue
  check_deb "$f" usr/bin/archipelago-desktop
  cp -f "$f" "$out/"
  desktop_debs+=("$(basename "$f")")
done
[ "${#desktop_debs[@]}" -gt 0 ] || die "tauri build made no .deb in $bundle_dir/deb"
step_done "${desktop_debs[*]}"

# AppImage: the bundler downloads linuxdeploy, its plugins and the AppImage
# runtime from GitHub (cached in ~/.cache/tauri afterwards). Without them
# the release has no AppImage, and APPIMAGE.txt says why; any other failure
# stops the script.
step "building the desktop app AppImage (tauri build --bundles appimage)"
rm -rf "$bundle_dir/appimage"
appimage_log="$logs/appimage.log"
if tauri_build appimage >"$appimage_log" 2>&1; then
  images=()
  for f in "$bundle_dir"/appimage/*.AppImage; do
    [ -e "$f" ] || continue
    cp -f "$f" "$out/"
    images+=("$(basename "$f")")
  done
  [ "${#images[@]}" -gt 0 ] || die "tauri build --bundles appimage made no .AppImage in $bundle_dir/appimage"
  step_done "${images[*]}"
else
  cat "$appimage_log" >&2
  # A download that failed: the bundler names the URL ("Downloading URL"),
  # then the network error. Anything else is a real failure.
  if ! grep -qiE 'failed to lookup address|dns error|could not resolve|error sending request|connection (refused|reset|timed out)|network is unreachable|operation timed out' "$appimage_log"; then
    die "tauri build --bundles appimage failed, and not for want of a download (see above)"
  fi
  wanted=$(sed -E 's/\x1b\[[0-9;]*[A-Za-z]//g' "$appimage_log" | grep -oE 'Downloading https?://[^ ]+' | tail -n1 | cut -d' ' -f2 || true)
  {
    echo "No AppImage of the desktop app in this release. Tauri's AppImage bundler" \
      "needs AppImage tools (AppRun, linuxdeploy and its plugins) that it downloads" \
      "from GitHub on first use and then keeps in ~/.cache/tauri; this build machine" \
      "could not download them, so \`tauri build --bundles appimage\` failed at its" \
      "first download. The desktop app's .deb, from the same build, is complete. On" \
      "a machine that can reach GitHub, or has those tools in ~/.cache/tauri, the" \
      "same command makes the AppImage." | fmt -w 76
    if [ -n "$wanted" ]; then
      echo
      echo "What it tried to download:"
      echo
      echo "    $wanted"
    fi
    echo
    echo "The error:"
    echo
    error_lines "$appimage_log" 'Downloading|[Ee]rror|failed'
    echo
    echo "(\`tauri build --bundles appimage\` in src-tauri/, Tauri CLI $("$tauri" --version 2>/dev/null | sed 's/^tauri-cli //'))"
  } >"$out/APPIMAGE.txt"
  echo "   no AppImage: see APPIMAGE.txt"
  step_done "skipped, APPIMAGE.txt written"
fi

# 4. The signed official catalog, checked before it is copied and again as
# copied: minisign's own check of the signature with the shipped public key
# (when minisign is installed), and the project's verifier, which checks the
# signature and then every manifest and icon against its digest, as a node
# does. Laid out as in the repository, so the folder (or the tarball's one
# folder) is what `archipelagod catalog add` takes.
step "the signed catalog: verify, copy, tar"
# The key is the repository's, the one compiled into the daemon.
verify() {
  "$cargo" run -q --locked --release -p archipelago-catalog --features sign -- \
    verify "$1" --public-key "$root/catalog/archipelago.pub" >&2
}
if command -v minisign >/dev/null 2>&1; then
  minisign -V -q -m catalog/catalog.json -x catalog/catalog.json.minisig -p catalog/archipelago.pub ||
    die "catalog/catalog.json: minisign says the signature does not verify with catalog/archipelago.pub"
  echo "   minisign: the signature of catalog/catalog.json verifies with catalog/archipelago.pub"
fi
verify "$root" || die "the repository's catalog does not verify: sign it again (release/sign-catalog.sh) before releasing"
cat_out="$out/catalog"
install -d -m 0755 "$cat_out/catalog" "$cat_out/apps" "$cat_out/icons"
install -m 0644 catalog/catalog.json catalog/catalog.json.minisig catalog/archipelago.pub "$cat_out/catalog/"
for manifest in apps/*/manifest.yml; do
  install -D -m 0644 "$manifest" "$cat_out/$manifest"
done
install -m 0644 icons/*.png "$cat_out/icons/"
verify "$cat_out" || die "the copied catalog in $cat_out does not verify"
tarball="$out/archipelago-catalog-$version.tar.gz"
# One top folder named like the file; the same bytes for the same files.
mtime=$(git log -1 --format=%ct -- catalog apps icons 2>/dev/null || true)
tar -C "$cat_out" --sort=name --owner=0 --group=0 --numeric-owner \
  --mtime="@${mtime:-0}" --transform "s|^\.|archipelago-catalog-$version|" -cf - . | gzip -n -9 >"$tarball"
step_done "$(tar -tzf "$tarball" | grep -c '[^/]$') files in $(basename "$tarball")"

# 5. The changelog, for people who use Archipelago rather than build it.
step "the changelog"
grep -qE "^## .*\b$(printf '%s' "$version" | sed 's/\./\\./g')\b" release/CHANGELOG.md ||
  die "release/CHANGELOG.md has no section for $version: add one (a '## $version …' heading) before releasing"
install -m 0644 release/CHANGELOG.md "$out/CHANGELOG.md"
step_done

echo "== [$((SECONDS - start))s] done; timings:"
printf '%s\n' "${timings[@]}"
echo "== files:"
(cd "$out" && find . -maxdepth 1 -type f -printf '%f\n' | sort | while read -r f; do
  printf '%10s  %s\n' "$(du -h --apparent-size "$f" | cut -f1)" "$f"
done)
echo "$out"
