#!/usr/bin/env bash
# The precise timing figures that ctest checks only with generous sanity bounds (CI machines
# are loaded and shared, so tight wall-clock bounds there would flake): run on a quiet machine,
# with nothing else going on, after a normal build (scripts/test, or cmake with -DBUILD_TESTING=ON).
# It runs the timing tests with FLOWGUARD_PRECISE_TIMING=1, which switches them to:
#   test_slow_clients  normal clients' p99 < 50 ms next to 2,000 slow connections
#   test_loadgen       --rate within 2% (requests/s, send rate, server count), every due
#                      request sent, rate_reached; uncorrected p50 < 20 ms in the
#                      coordinated-omission case
#   test_shutdown      keep-alive connections end < 1.5 s after SIGTERM; exit <= 1 s after the
#                      last in-flight request; cut at drain_timeout 2 s within 2.5 s; a second
#                      signal exits within 1 s
# Each test prints its measured figures (doctest MESSAGE lines); the script fails when a
# precise bound does.
#
# Usage: bench/timing-bounds.sh [ROUNDS (default 3)]
set -euo pipefail
source "$(dirname "$0")/../scripts/lib.sh"

ROUNDS=${1:-3}
TESTS=(test_slow_clients test_loadgen test_shutdown)
for t in "${TESTS[@]}"; do
  [ -x "$(find "$BUILD_DIR/tests" -name "$t" -type f | head -1)" ] ||
    { echo "$t is not built in $BUILD_DIR (build with -DBUILD_TESTING=ON)" >&2; exit 2; }
done
regex=$(printf '^%s$|' "${TESTS[@]}")
out=$(mktemp)
trap 'rm -f "$out"' EXIT
failed=0
for round in $(seq "$ROUNDS"); do
  echo "== round $round of $ROUNDS"
  # One test at a time, verbose: the measured figures are in the tests' MESSAGE lines.
  status=0
  (cd "$BUILD_DIR" && FLOWGUARD_PRECISE_TIMING=1 ctest -V -j1 --timeout 300 -R "${regex%|}") >"$out" 2>&1 ||
    status=$?
  # The figures (MESSAGE lines) and any failed bound with its values.
  grep -E -A1 'MESSAGE: |ERROR: ' "$out" | grep -E 'MESSAGE: |ERROR: |values:' | sed -E 's/^[0-9]+: [^ ]*: //' || true
  grep -E 'Test +#[0-9]+:' "$out" || true
  [ "$status" -eq 0 ] || failed=1
done
[ "$failed" -eq 0 ] && echo "every precise bound held in $ROUNDS round(s)" || echo "a precise bound failed" >&2
exit "$failed"
