#!/usr/bin/env bash
# Throwaway Archipelago test nodes from a shell:
#   tests/node/node.sh up [--nodes N]   start a run (namespace, registry, nodes with the
#                                       daemon's .deb, archy paired); Enter stops it
#   tests/node/node.sh cleanup          remove what killed runs left behind
# Needs root. See tests/harness/src/bin/archipelago-node.rs.
set -euo pipefail
cd "$(dirname "$0")/../.."
bash tests/node/fetch-nspawn.sh >/dev/null
target="${CARGO_TARGET_DIR:-$PWD/target}"
if [ "${1:-}" = up ]; then
	cargo build -q -p archy --bin archy
	shift
	set -- up --archy "$target/debug/archy" "$@"
fi
exec cargo run -q -p archipelago-harness --bin archipelago-node -- "$@"
