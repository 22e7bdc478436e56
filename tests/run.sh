#!/usr/bin/env bash
# The project's test command (README, .ci/run): installs what the tests need
# on a fresh Debian 12 machine, then runs formatting, lint and every test.
# Must run as root on a fresh machine (apt); later runs reuse the caches in
# /var/cache/archipelago.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\n== %s\n' "$*"; }

if ! command -v cargo >/dev/null 2>&1; then
  echo "tests/run.sh: cargo not found: install Rust 1.85 or newer (rustup) first" >&2
  exit 1
fi

# CI clones into a new folder each run: keep its build cache where the
# machine keeps it, so that only what changed is rebuilt.
if [ "${CI:-}" = "true" ] && [ -z "${CARGO_TARGET_DIR:-}" ]; then
  export CARGO_TARGET_DIR=/var/cache/archipelago/target
  mkdir -p "$CARGO_TARGET_DIR"
  # A clone is built once: incremental data would only fill the disk.
  export CARGO_INCREMENTAL=0
fi

source tests/setup.sh

say "frontend: format, types (tsc), unit tests (Vitest), build"
(
  cd frontend
  npm run --silent format:check
  npm run --silent check
  npm run --silent test 2>&1 | tee /tmp/archipelago-vitest.log
  npm run --silent build
)
vitest_passed=$(sed -E 's/\x1b\[[0-9;]*m//g' /tmp/archipelago-vitest.log | awk '/^ *Tests +[0-9]+ passed/ {print $2; exit}')

say "TypeScript types generated from the Rust API types are up to date"
bash frontend/scripts/gen-bindings.sh --check

# Whatever happens to the tests (failure, interruption), nothing of their
# runs stays behind: namespaces, mounts, node and registry processes.
cleanup() { cargo run -q -p archipelago-harness --bin archipelago-node -- cleanup >/dev/null 2>&1 || true; }
trap cleanup EXIT

say "cargo fmt --check"
cargo fmt --all -- --check

say "cargo clippy -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings

say "cargo test"
# No stack traces: a failing test names its cause in its message, and a
# trace after it would push that message out of the log's tail, the part
# CI shows.
RUST_BACKTRACE=0 RUST_LIB_BACKTRACE=0 cargo test --workspace --locked 2>&1 | tee /tmp/archipelago-test.log
summary=$(grep -E '^test result:' /tmp/archipelago-test.log | awk '{p+=$4; f+=$6} END {print p+0, f+0}')
read -r passed failed <<<"$summary"
if [ "$passed" -eq 0 ] || [ -z "$vitest_passed" ]; then
  echo "tests/run.sh: no test ran (cargo: $passed, vitest: ${vitest_passed:-none})" >&2
  exit 1
fi
printf '\n%s passed, %s failed (cargo), %s passed (Vitest)\n' "$passed" "$failed" "$vitest_passed"
