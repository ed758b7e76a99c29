#!/usr/bin/env bash
# flowguard-loadgen against wrk: the same upstream nginx the proxy harness uses
# (../shared/bench/templates/nginx-backend.conf.tmpl, one worker, 200 "ok\n"), one thread and
# 64 connections each, measured alternately (wrk, loadgen, wrk, ...) so drift hits both.
# Prints every round and the median req/s of each, then "loadgen/wrk=X" (target: >= 1.0).
#
# Usage: bench/loadgen-vs-wrk.sh [ROUNDS (default 5)] [SECONDS per run (default 5)]
# LOADGEN=path picks the binary (default $BUILD_DIR/loadgen/flowguard-loadgen, built Release
# when missing). nginx runs on CPU 0, the load generators on CPU 1.
set -euo pipefail
source "$(dirname "$0")/../scripts/lib.sh"

ROUNDS=${1:-5}
SECONDS_PER_RUN=${2:-5}
CONNS=64
TEMPLATES=${TEMPLATES:-$FLOWGUARD_ROOT/../shared/bench/templates}
[ -f "$TEMPLATES/nginx-backend.conf.tmpl" ] || { echo "nginx template not found in $TEMPLATES" >&2; exit 2; }

install_packages nginx wrk
LOADGEN=${LOADGEN:-$BUILD_DIR/loadgen/flowguard-loadgen}
if [ ! -x "$LOADGEN" ]; then
  install_packages "${BUILD_PACKAGES[@]}"
  cmake -S "$FLOWGUARD_ROOT" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$BUILD_DIR" -j2 --target flowguard-loadgen
fi

RUN=$(mktemp -d)
chmod 755 "$RUN"  # nginx workers run as nobody
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
PORT=$(free_port)
STATUS_PORT=$(free_port)
sed -e "s|@RUN@|$RUN|g" -e "s|@UPSTREAM_PORT@|$PORT|g" -e "s|@STATUS_PORT@|$STATUS_PORT|g" \
    -e "s|@WORKER_CONNECTIONS@|$((CONNS * 2 + 1024))|g" "$TEMPLATES/nginx-backend.conf.tmpl" >"$RUN/nginx.conf"
taskset -c 0 nginx -p "$RUN/" -e "$RUN/error.log" -c "$RUN/nginx.conf" &
NGINX_PID=$!
cleanup() { kill "$NGINX_PID" 2>/dev/null || true; wait "$NGINX_PID" 2>/dev/null || true; rm -rf "$RUN"; }
trap cleanup EXIT
for _ in $(seq 50); do curl -fs "http://127.0.0.1:$PORT/" >/dev/null 2>&1 && break; sleep 0.1; done

URL="http://127.0.0.1:$PORT/"
wrk_rps() {
  taskset -c 1 wrk -t1 -c"$CONNS" -d"${SECONDS_PER_RUN}s" "$URL" | awk '/^Requests\/sec:/ {print $2}'
}
loadgen_rps() {
  taskset -c 1 "$LOADGEN" -q -t1 -c"$CONNS" -d"$SECONDS_PER_RUN" --json "$RUN/lg.json" "$URL" >/dev/null
  python3 -c 'import json,sys; print("%.2f" % json.load(open(sys.argv[1]))["requests_per_sec"])' "$RUN/lg.json"
}
median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }

WRK=() LG=()
for round in $(seq "$ROUNDS"); do
  WRK+=("$(wrk_rps)")
  LG+=("$(loadgen_rps)")
  echo "round $round: wrk ${WRK[-1]} req/s, flowguard-loadgen ${LG[-1]} req/s"
done
W=$(printf '%s\n' "${WRK[@]}" | median)
L=$(printf '%s\n' "${LG[@]}" | median)
echo "median: wrk $W req/s, flowguard-loadgen $L req/s"
awk -v l="$L" -v w="$W" 'BEGIN { printf "loadgen/wrk=%.3f\n", l / w }'
