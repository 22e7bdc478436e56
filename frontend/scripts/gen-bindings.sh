#!/usr/bin/env bash
# Generates the frontend's TypeScript types from the Rust types with ts-rs:
# archipelago-api (feature `ts`) and, once it exists, the desktop crate
# (src-tauri). Never write a type in src/bindings by hand: run this.
#
#   bash frontend/scripts/gen-bindings.sh           # rewrite frontend/src/bindings
#   bash frontend/scripts/gen-bindings.sh --check   # fail if they drifted (CI)
#
# u64 fields carry `ts(type = "number")` on the Rust side because JSON gives
# the frontend numbers; a binding that still says `bigint` is refused here.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
frontend="$(dirname "$here")"
root="$(dirname "$frontend")"
bindings="$frontend/src/bindings"

check=0
case "${1:-}" in
  --check) check=1 ;;
  "") ;;
  *) echo "usage: $0 [--check]" >&2; exit 2 ;;
esac

out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT

export TS_RS_EXPORT_DIR="$out"
cd "$root"
cargo test --quiet -p archipelago-api --features ts --lib export_bindings >/dev/null
if [ -f "$root/src-tauri/Cargo.toml" ]; then
  # The desktop crate derives TS on its own types (NodeEntry, ProbeResult,
  # NodeOverview, DesktopError) unconditionally or behind its own `ts`
  # feature; ask for it when it has one.
  features=()
  if grep -Eq '^ts[[:space:]]*=' "$root/src-tauri/Cargo.toml"; then
    features=(--features ts)
  fi
  cargo test --quiet -p archipelago-desktop "${features[@]}" export_bindings >/dev/null
fi

if [ -z "$(ls -A "$out")" ]; then
  echo "gen-bindings: ts-rs wrote nothing to $out" >&2
  exit 1
fi
if grep -rl 'bigint' "$out" >/dev/null; then
  echo "gen-bindings: these bindings use bigint; add #[cfg_attr(feature = \"ts\", ts(type = \"number\"))] to their u64 fields:" >&2
  grep -rl 'bigint' "$out" | sed "s|$out/|  |" >&2
  exit 1
fi

if [ "$check" = 1 ]; then
  if ! diff -ru "$bindings" "$out"; then
    echo "gen-bindings: frontend/src/bindings is out of date; run: bash frontend/scripts/gen-bindings.sh" >&2
    exit 1
  fi
  echo "gen-bindings: bindings are up to date ($(ls "$out" | wc -l) files)"
else
  rm -rf "$bindings"
  mkdir -p "$bindings"
  cp -r "$out"/. "$bindings"/
  echo "gen-bindings: wrote $(ls "$bindings" | wc -l) files to frontend/src/bindings"
fi
