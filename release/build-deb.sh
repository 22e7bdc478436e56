#!/usr/bin/env bash
# Builds archipelagod and packs it as a Debian package:
#
#   bash release/build-deb.sh [--profile dev|release] [--out DIR] [--target TRIPLE]
#
# The package holds /usr/bin/archipelagod, its system unit
# /usr/lib/systemd/system/archipelagod.service, the signed official catalog
# (/usr/share/archipelago: catalog/, apps/, icons/) and its docs; its
# maintainer scripts (release/deb/) create the service user and start the
# daemon. Prints the path of the .deb on its last line.
#
# Packed by dpkg-deb itself, not cargo-deb: dpkg-deb is on every Debian
# machine, CI included, so nothing needs installing or compiling first, and
# the package's files and control fields are all in this script and
# release/deb/ for anyone to read.
#
# Honours CARGO_TARGET_DIR (and CARGO, the cargo that runs a test).
# Default: --profile release, --out target/deb (under the target folder),
# the host's architecture. --target aarch64-unknown-linux-gnu cross-builds an
# arm64 package (needs the Rust target, `rustup target add`, and Debian's
# gcc-aarch64-linux-gnu and libc6-dev-arm64-cross for the linker, strip and
# objdump); --target x86_64-unknown-linux-gnu an amd64 one.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
deb_src="$here/deb"
cargo="${CARGO:-cargo}"
profile=release
out=
target=

usage() {
  echo "usage: $0 [--profile dev|release] [--out DIR] [--target TRIPLE]" >&2
  exit 2
}
while [ $# -gt 0 ]; do
  case "$1" in
  --profile) [ $# -ge 2 ] || usage; profile="$2"; shift 2 ;;
  --out) [ $# -ge 2 ] || usage; out="$2"; shift 2 ;;
  --target) [ $# -ge 2 ] || usage; target="$2"; shift 2 ;;
  -h | --help) usage ;;
  *) usage ;;
  esac
done
case "$profile" in
dev) profile_dir=debug ;;
release) profile_dir=release ;;
*) usage ;;
esac
log() { echo "build-deb: $*" >&2; }
command -v dpkg-deb >/dev/null || { log "needs dpkg-deb (Debian's dpkg)"; exit 1; }

cd "$root"
# The target folder as cargo sees it (CARGO_TARGET_DIR, .cargo/config).
metadata=$("$cargo" metadata --format-version 1 --no-deps)
target_dir=$(printf '%s' "$metadata" | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
[ -n "$target_dir" ] || { log "cargo metadata named no target directory"; exit 1; }
# The package's version: the workspace's, as cargo resolves it.
version=$("$cargo" pkgid -p archipelagod | sed -n 's/.*[@#]\([0-9][^@#]*\)$/\1/p')
[ -n "$version" ] || { log "no version for archipelagod from cargo pkgid"; exit 1; }
homepage=$(sed -n 's/^repository *= *"\(.*\)"/\1/p' Cargo.toml | head -n1)
arch=$(dpkg --print-architecture)
out="${out:-$target_dir/deb}"
# Without --target: the host's build, as always. With it: cargo's output
# under target/TRIPLE/, and for another architecture its GNU tool prefix
# (linker, strip, objdump).
target_args=()
bin_dir="$target_dir/$profile_dir"
tools=
if [ -n "$target" ]; then
  case "$target" in
  x86_64-unknown-linux-gnu) target_arch=amd64 gnu=x86_64-linux-gnu ;;
  aarch64-unknown-linux-gnu) target_arch=arm64 gnu=aarch64-linux-gnu ;;
  *) log "--target $target: only x86_64-unknown-linux-gnu and aarch64-unknown-linux-gnu are packaged"; exit 2 ;;
  esac
  target_args=(--target "$target")
  bin_dir="$target_dir/$target/$profile_dir"
  if [ "$target_arch" != "$arch" ]; then
    tools="$gnu-"
    for tool in gcc strip objdump; do
      command -v "$tools$tool" >/dev/null || {
        log "cross-building for $target needs $tools$tool: apt install gcc-$gnu libc6-dev-$target_arch-cross"
        exit 1
      }
    done
    # The linker cargo uses for the target, unless the caller set one.
    linker_var="CARGO_TARGET_$(printf '%s' "$target" | tr 'a-z-' 'A-Z_')_LINKER"
    export "$linker_var=${!linker_var:-${tools}gcc}"
  fi
  arch=$target_arch
fi

log "cargo build --profile $profile -p archipelagod ${target_args[*]}"
locked=()
[ "$profile" = release ] && locked=(--locked)
"$cargo" build "${locked[@]}" --profile "$profile" "${target_args[@]}" -p archipelagod --bin archipelagod >&2
bin="$bin_dir/archipelagod"
[ -x "$bin" ] || { log "$bin is missing after the build"; exit 1; }

stage=$(mktemp -d "${TMPDIR:-/tmp}/archipelagod-deb.XXXXXX")
trap 'rm -rf "$stage"' EXIT
pkg="$stage/pkg"
doc="$pkg/usr/share/doc/archipelagod"
install -d -m 0755 "$pkg/DEBIAN" "$pkg/usr/bin" "$pkg/usr/lib/systemd/system" "$doc"
# Shipped without debug info, as Debian ships binaries (a dev build's is
# ten times the size of the program).
"${tools}strip" --strip-debug -o "$pkg/usr/bin/archipelagod" "$bin"
chmod 0755 "$pkg/usr/bin/archipelagod"
install -m 0644 "$deb_src/archipelagod.service" "$pkg/usr/lib/systemd/system/"
install -m 0644 "$deb_src/README.md" "$doc/README.md"
# The official catalog, laid out as in the repository; the daemon checks its
# signature against the key compiled into it before using any of it.
repo="$(cd "$here/.." && pwd)"
share="$pkg/usr/share/archipelago"
install -d -m 0755 "$share/catalog" "$share/icons"
install -m 0644 "$repo/catalog/catalog.json" "$repo/catalog/catalog.json.minisig" "$share/catalog/"
for manifest in "$repo"/apps/*/manifest.yml; do
  app=$(basename "$(dirname "$manifest")")
  install -D -m 0644 "$manifest" "$share/apps/$app/manifest.yml"
done
install -m 0644 "$repo"/icons/*.png "$share/icons/"
sed "s|@HOMEPAGE@|$homepage|" "$deb_src/copyright" >"$doc/copyright"
chmod 0644 "$doc/copyright"
for script in postinst prerm postrm; do
  install -m 0755 "$deb_src/$script" "$pkg/DEBIAN/$script"
done

# The shared libraries the binary links, as package dependencies (what
# dpkg-shlibdeps would say for a Rust program: glibc and libgcc only).
glibc=$("${tools}objdump" -T "$bin" | grep -o 'GLIBC_[0-9][0-9.]*' | sed 's/GLIBC_//' | sort -uV | tail -n1)
shlibs="libc6 (>= ${glibc:-2.36})"
for lib in $("${tools}objdump" -p "$bin" | awk '$1 == "NEEDED" { print $2 }'); do
  case "$lib" in
  libc.so.6 | libm.so.6 | libdl.so.2 | libpthread.so.0 | librt.so.1 | ld-linux*) ;;
  libgcc_s.so.1) shlibs="$shlibs, libgcc-s1" ;;
  *) log "archipelagod links $lib: add its package to the Depends in $0"; exit 1 ;;
  esac
done

installed_size=$(du -sk --exclude=DEBIAN "$pkg" | cut -f1)
sed -e "s|@VERSION@|$version|" -e "s|@ARCH@|$arch|" -e "s|@HOMEPAGE@|$homepage|" \
  -e "s|@INSTALLED_SIZE@|$installed_size|" -e "s|@SHLIBS_DEPENDS@|$shlibs|" \
  "$deb_src/control.in" >"$pkg/DEBIAN/control"
(cd "$pkg" && find usr -type f -print0 | sort -z | xargs -0 md5sum) >"$pkg/DEBIAN/md5sums"
chmod 0644 "$pkg/DEBIAN/control" "$pkg/DEBIAN/md5sums"

mkdir -p "$out"
deb="$(cd "$out" && pwd)/archipelagod_${version}_${arch}.deb"
# xz for releases (smallest download); gzip for dev builds (packs in a
# fraction of the time, for tests that build it on every run).
compress=(-Zxz)
[ "$profile" = dev ] && compress=(-Zgzip -z6)
dpkg-deb --root-owner-group "${compress[@]}" --build "$pkg" "$deb" >&2
log "$(du -h "$deb" | cut -f1) archipelagod $version ($arch, $profile)"
echo "$deb"
