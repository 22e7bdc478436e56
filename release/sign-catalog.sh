#!/usr/bin/env bash
# Signs the official catalog: refreshes the SHA-256 of every manifest and
# icon named in catalog/catalog.json, writes catalog/catalog.json.minisig,
# then verifies the result with the public key the daemon ships
# (catalog/archipelago.pub).
#
# The secret key is never in the repository. Give it as
#   ARCHIPELAGO_CATALOG_KEY       the key file's text (CI secret), or
#   ARCHIPELAGO_CATALOG_KEY_FILE  a path to it, or
#   --secret-key-file PATH        on the command line.
# Another catalog folder (a community catalog laid out like this
# repository) can be signed with --root DIR --public-key FILE.
set -euo pipefail
cd "$(dirname "$0")/.."

root=.
public_key=catalog/archipelago.pub
args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --root) root=$2; shift 2 ;;
    --public-key) public_key=$2; shift 2 ;;
    *) args+=("$1"); shift ;;
  esac
done

tool() { cargo run -q --locked -p archipelago-catalog --features sign -- "$@"; }
tool sign "$root" "${args[@]}"
tool verify "$root" --public-key "$public_key"
