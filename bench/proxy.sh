#!/usr/bin/env bash
# Measures flowguard (one worker, router-only chain: bench/flowguard-bench.yaml) against
# nginx and HAProxy with ../shared/bench/compare-proxies. Extra arguments go to the
# harness, e.g. `bench/proxy.sh --rounds 9 --direct`. BENCH_CONFIG picks another config,
# e.g. BENCH_CONFIG=bench/flowguard-bench-health.yaml (health checks and outlier detection on).
set -euo pipefail
source "$(dirname "$0")/../scripts/lib.sh"

HARNESS=${HARNESS:-$FLOWGUARD_ROOT/../shared/bench/compare-proxies}
[ -x "$HARNESS" ] || { echo "compare-proxies not found at $HARNESS (set HARNESS=...)" >&2; exit 2; }

install_packages "${BUILD_PACKAGES[@]}" nginx haproxy wrk curl
build_flowguard

CONFIG=${BENCH_CONFIG:-$FLOWGUARD_ROOT/bench/flowguard-bench.yaml}
exec "$HARNESS" "$@" -- "$BUILD_DIR/gateway/flowguard" -c "$CONFIG"
