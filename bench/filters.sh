#!/usr/bin/env bash
# What the filter chain costs: runs ../shared/bench/compare-proxies three times, with
# flowguard on the router-only chain, on auth + rate_limit (local) + metrics + router, and
# on the same chain with the Redis store (a redis-server started here on a free port).
# Each run measures nginx too, so every figure is compared as flowguard/nginx of its own
# run; the summary divides those to give each chain relative to the router-only one.
# Extra arguments go to the harness (default: --rounds 3 --duration 8).
set -euo pipefail
source "$(dirname "$0")/../scripts/lib.sh"

HARNESS=${HARNESS:-$FLOWGUARD_ROOT/../shared/bench/compare-proxies}
[ -x "$HARNESS" ] || { echo "compare-proxies not found at $HARNESS (set HARNESS=...)" >&2; exit 2; }
install_packages "${BUILD_PACKAGES[@]}" nginx haproxy wrk curl redis-server python3
build_flowguard

ARGS=("$@")
[ ${#ARGS[@]} -eq 0 ] && ARGS=(--rounds 3 --duration 8)
work=$(mktemp -d)
export FG_BENCH_REDIS_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
redis-server --port "$FG_BENCH_REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no --dir "$work" \
  >"$work/redis.log" 2>&1 &
redis_pid=$!
trap 'kill $redis_pid 2>/dev/null; wait $redis_pid 2>/dev/null; rm -rf "$work"' EXIT

declare -A ratio
for chain in router local redis; do
  case $chain in
    router) config=bench/flowguard-bench.yaml ;;
    local) config=bench/flowguard-bench-filters.yaml ;;
    redis) config=bench/flowguard-bench-redis.yaml ;;
  esac
  echo "== $chain chain ($config)"
  "$HARNESS" "${ARGS[@]}" --json "$work/$chain.json" -- "$BUILD_DIR/gateway/flowguard" -c "$FLOWGUARD_ROOT/$config"
  ratio[$chain]=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["ratios"]["candidate/nginx"]["rps"])' "$work/$chain.json" 2>/dev/null || echo "")
done

echo
echo "flowguard/nginx req/s: router ${ratio[router]}  local chain ${ratio[local]}  redis chain ${ratio[redis]}"
python3 - "${ratio[router]}" "${ratio[local]}" "${ratio[redis]}" <<'PY'
import sys
r, l, d = (float(x) if x else float("nan") for x in sys.argv[1:4])
print(f"local chain / router-only = {l / r:.2f}   (target >= 0.90)")
print(f"redis chain / router-only = {d / r:.2f}   (target >= 0.60)")
PY
