#!/usr/bin/env bash
# Throwaway Archipelago test nodes from a shell:
#   tests/node/node.sh up [--nodes N]   start a run (namespace, registry, nodes); Enter stops it
#   tests/node/node.sh cleanup          remove what killed runs left behind
# Needs root. See tests/harness/src/bin/archipelago-node.rs.
set -euo pipefail
cd "$(dirname "$0")/../.."
bash tests/node/fetch-nspawn.sh >/dev/null
exec cargo run -q -p archipelago-harness --bin archipelago-node -- "$@"
