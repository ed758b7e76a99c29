#!/usr/bin/env bash
# Heap allocations per proxied request, exact: the gateway runs with bench/alloc_counter.c
# preloaded (it counts malloc, calloc, realloc and the aligned allocators; operator new goes
# through malloc), a warm-up of 2,000 keep-alive requests fills pools and caches, and the count
# over the next N requests (default 10,000, 8 connections) is divided by N. The upstream is
# flowguard-backend, a process of its own (its allocations are not counted).
#
#   bench/allocs-per-request.sh [-n N] [CONFIG...]
#       default configs: bench/flowguard-bench.yaml (router only) and
#       bench/flowguard-bench-filters.yaml (auth + rate_limit + metrics + router)
set -euo pipefail
source "$(dirname "$0")/../scripts/lib.sh"

N=10000
if [ "${1:-}" = "-n" ]; then N=$2; shift 2; fi
CONFIGS=("$@")
[ ${#CONFIGS[@]} -eq 0 ] && CONFIGS=(bench/flowguard-bench.yaml bench/flowguard-bench-filters.yaml)

install_packages "${BUILD_PACKAGES[@]}" gcc curl python3
[ -x "$BUILD_DIR/gateway/flowguard" ] && [ -x "$BUILD_DIR/loadgen/flowguard-loadgen" ] || build_flowguard >/dev/null
work=$(mktemp -d /tmp/flowguard-allocs.XXXXXX)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null; rm -rf "$work"' EXIT
gcc -O2 -shared -fPIC -o "$work/alloc_counter.so" "$FLOWGUARD_ROOT/bench/alloc_counter.c" -ldl -lpthread

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$1/" && return 0; sleep 0.1; done; return 1; }
count() { sleep 0.1; cat "$work/count"; }  # the counter file is rewritten every 20 ms

export FG_BENCH_UPSTREAM_PORT=$(free_port)
"$BUILD_DIR/backend/flowguard-backend" --name up --port "$FG_BENCH_UPSTREAM_PORT" >"$work/backend.log" 2>&1 &
pids+=($!)
wait_port "$FG_BENCH_UPSTREAM_PORT" || { echo "backend did not start"; cat "$work/backend.log"; exit 1; }

for config in "${CONFIGS[@]}"; do
  export FG_BENCH_PORT=$(free_port)
  LD_PRELOAD="$work/alloc_counter.so" ALLOC_COUNTER_FILE="$work/count" \
    "$BUILD_DIR/gateway/flowguard" -c "$FLOWGUARD_ROOT/$config" >"$work/gateway.log" 2>&1 &
  gateway=$!
  pids+=($gateway)
  wait_port "$FG_BENCH_PORT" || { echo "gateway did not start"; cat "$work/gateway.log"; exit 1; }
  load() { "$BUILD_DIR/loadgen/flowguard-loadgen" -n "$1" -c 8 -t 1 "http://127.0.0.1:$FG_BENCH_PORT/" >"$work/load.log"; }
  load 2000
  before=$(count)
  load "$N"
  after=$(count)
  # The same time again with no load: what the gateway allocates on its own (timers).
  idle_before=$(count)
  sleep 1
  idle_after=$(count)
  kill "$gateway"
  wait "$gateway" 2>/dev/null || true
  python3 - "$config" "$N" "$before" "$after" "$idle_before" "$idle_after" <<'PY'
import sys
config, n, before, after, idle0, idle1 = sys.argv[1], *map(int, sys.argv[2:])
print(f"{config}: {(after - before) / n:.2f} allocations per request "
      f"({after - before} over {n} requests; idle: {idle1 - idle0} in 1 s)")
PY
done
