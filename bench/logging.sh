#!/usr/bin/env bash
# What the request log costs: runs ../shared/bench/compare-proxies twice with flowguard on
# bench/flowguard-bench-logging.yaml, once with request_log on and once off (the store is
# configured both times), and divides the two flowguard/nginx ratios. With `postgres` as
# the first argument the log goes to a PostgreSQL started here (initdb in a temp dir);
# otherwise to SQLite. Other arguments go to the harness (default: --rounds 3 --duration 8).
set -euo pipefail
source "$(dirname "$0")/../scripts/lib.sh"

HARNESS=${HARNESS:-$FLOWGUARD_ROOT/../shared/bench/compare-proxies}
[ -x "$HARNESS" ] || { echo "compare-proxies not found at $HARNESS (set HARNESS=...)" >&2; exit 2; }
BACKEND=sqlite
if [ "${1:-}" = postgres ] || [ "${1:-}" = sqlite ]; then BACKEND=$1; shift; fi
install_packages "${BUILD_PACKAGES[@]}" nginx haproxy wrk curl python3 postgresql
build_flowguard

ARGS=("$@")
[ ${#ARGS[@]} -eq 0 ] && ARGS=(--rounds 3 --duration 8)
work=$(mktemp -d)
chmod 755 "$work"
cleanup() {
  [ -n "${pg_pid:-}" ] && kill -INT "$pg_pid" 2>/dev/null && wait "$pg_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

if [ "$BACKEND" = postgres ]; then
  bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  as_pg=()
  if [ "$(id -u)" -eq 0 ]; then chown postgres "$work"; as_pg=(setpriv --reuid=postgres --regid=postgres --init-groups); fi
  "${as_pg[@]}" "$bin/initdb" -D "$work/pg" -U postgres --auth=trust >/dev/null
  "${as_pg[@]}" "$bin/postgres" -D "$work/pg" -p "$port" -k "$work" -c listen_addresses=127.0.0.1 -c fsync=off \
    >"$work/pg.log" 2>&1 &
  pg_pid=$!
  for _ in $(seq 100); do "$bin/pg_isready" -h 127.0.0.1 -p "$port" >/dev/null 2>&1 && break; sleep 0.1; done
  export FG_BENCH_STORAGE_URL="postgres://postgres@127.0.0.1:$port/postgres"
else
  export FG_BENCH_STORAGE_URL="sqlite://$work/bench.db"
fi

declare -A ratio
for mode in off on; do
  export FG_BENCH_REQUEST_LOG=$([ $mode = on ] && echo true || echo false)
  echo "== request_log $mode ($BACKEND)"
  (cd "$work" && "$HARNESS" "${ARGS[@]}" --json "$work/$mode.json" -- "$BUILD_DIR/gateway/flowguard" \
    -c "$FLOWGUARD_ROOT/bench/flowguard-bench-logging.yaml" 2>&1 | tee "$work/$mode.out")
  ratio[$mode]=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["ratios"]["candidate/nginx"]["rps"])' \
    "$work/$mode.json" 2>/dev/null || echo "")
done
echo
echo "flowguard/nginx req/s: request_log off ${ratio[off]}  on ${ratio[on]}"
python3 -c 'import sys; off, on = float(sys.argv[1]), float(sys.argv[2]); print(f"logging on / off = {on / off:.2f}   (target >= 0.90)")' \
  "${ratio[off]}" "${ratio[on]}"
