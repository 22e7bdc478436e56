#!/usr/bin/env bash
# Proves that the release gate fails when it should: runs release/gate with
# hello-web broken on purpose (ARCHY_GATE_BREAK=hello-web-3rd-start: the
# fixture counts its starts in a volume and exits at the third, which is
# the matrix's first "restart" cell), then checks that
#  - the gate exited non-zero,
#  - its report shows hello-web's restart cell red, with the reason,
#  - its output folder holds no artifact (no .deb, AppImage, catalog
#    archive, SHA256SUMS or changelog).
# As root, like the gate. Writes to ARCHY_GATE_OUT (default
# release/out-proof, so that a green release/out is left alone).
set -euo pipefail
cd "$(dirname "$0")/.."
out="${ARCHY_GATE_OUT:-$(pwd)/release/out-proof}"

set +e
ARCHY_GATE_OUT="$out" ARCHY_GATE_BREAK=hello-web-3rd-start \
  ARCHY_ITERATIONS="${ARCHY_ITERATIONS:-3}" bash release/gate
rc=$?
set -e

fail() { echo "prove-gate-fails: $*" >&2; exit 1; }
[ "$rc" -ne 0 ] || fail "the gate passed with a broken fixture"
[ -f "$out/report.md" ] || fail "no report at $out/report.md"
grep -q 'Verdict: ✘ FAILED — no artifacts' "$out/report.md" ||
  fail "the report's verdict is not red"
# The lifecycle table's restart row has a red cell, and the failures name
# it as hello-web's.
grep -E '^\| restart \|.*✘ 0/1' "$out/report.md" >/dev/null ||
  fail "no red cell in the restart row of the report"
grep -F '**lifecycle · nspawn / hello-web / restart**' "$out/report.md" >/dev/null ||
  fail "the report's failures do not name hello-web's restart"
artifacts=$(find "$out" -type f \( -name '*.deb' -o -name '*.AppImage' -o -name '*.tar.gz' \
  -o -name SHA256SUMS -o -name CHANGELOG.md \))
[ -z "$artifacts" ] || fail "a red gate left artifacts: $artifacts"
echo "prove-gate-fails: the gate exited $rc, hello-web's restart cell is red, and $out holds no artifact"
grep -E '^\| restart \|' "$out/report.md"
