#!/usr/bin/env python3
"""CPU time the gateway spends per request, for two or more configs measured in turns.

On a shared machine, requests/second swing with whatever else runs (and with CPU steal in a
VM); the CPU time the flowguard process itself burns per request (all its threads: workers,
store thread, main thread, from /proc/PID/stat) moves much less. On one core, throughput is
the inverse of it, so a ratio of CPU-per-request is the throughput ratio without the noise.

  bench/cpu_per_request.py [--rounds N] [--duration S] NAME=CONFIG[,VAR=VALUE...] ...

e.g. bench/cpu_per_request.py off=bench/flowguard-bench-logging.yaml,FG_BENCH_REQUEST_LOG=false \
                              on=bench/flowguard-bench-logging.yaml

Each config must listen on 127.0.0.1:$FG_BENCH_PORT and proxy to $FG_BENCH_UPSTREAM_PORT
(like bench/flowguard-bench*.yaml). The upstream is flowguard-backend; the load is wrk.
Configs run in turns (A B A B ...) so slow drifts hit all of them alike. Prints the median
CPU microseconds per request of each config and each one's ratio to the first.

To compare two builds of the gateway (before and after a change), give one config the build
directory of the other with FLOWGUARD_BUILD_DIR, e.g.
  bench/cpu_per_request.py new=bench/flowguard-bench.yaml \
                           old=bench/flowguard-bench.yaml,FLOWGUARD_BUILD_DIR=/tmp/old/build
"""
import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

from benchlib import BUILD, free_port, wait_port

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def cpu_by_thread(pid):
    """CPU seconds per thread name (fg-worker-0, fg-store, ...), threads of one name summed."""
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/comm") as f:
                name = f.read().strip()
            out[name] = out.get(name, 0) + cpu_seconds(f"{pid}/task/{tid}")
        except OSError:
            pass
    return out


def run_wrk(port, duration, connections, pin):
    out = subprocess.run(pin + ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", f"http://127.0.0.1:{port}/"],
                         capture_output=True, text=True, check=True).stdout
    m = re.search(r"(\d+) requests in", out)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        raise RuntimeError(f"wrk saw {errors.group(1)} non-2xx answers:\n{out}")
    return int(m.group(1))


def measure(config, duration, connections, workdir):
    config, extra_env = config
    port, upstream = free_port(), free_port()
    env = dict(os.environ, FG_BENCH_PORT=str(port), FG_BENCH_UPSTREAM_PORT=str(upstream), **extra_env)
    # The gateway on the last CPU, load and upstream on the others (as compare-proxies does):
    # unpinned, where the scheduler puts them changes the CPU each request costs.
    last = os.cpu_count() - 1
    pin_gateway = ["taskset", "-c", str(last)] if last > 0 else []
    pin_load = ["taskset", "-c", f"0-{last - 1}"] if last > 0 else []
    backend = subprocess.Popen(pin_load + [os.path.join(BUILD, "backend", "flowguard-backend"), "--port", str(upstream), "--name", "bench-upstream"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    binary = os.path.join(os.path.abspath(extra_env.get("FLOWGUARD_BUILD_DIR", BUILD)), "gateway", "flowguard")
    gateway = subprocess.Popen(pin_gateway + [binary, "-c", config], env=env, cwd=workdir,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(upstream)
        wait_port(port)
        run_wrk(port, 1, connections, pin_load)  # warm-up
        before = cpu_seconds(gateway.pid)
        threads_before = cpu_by_thread(gateway.pid)
        requests = run_wrk(port, duration, connections, pin_load)
        used = cpu_seconds(gateway.pid) - before
        threads = {name: (t - threads_before.get(name, 0)) * 1e6 / requests
                   for name, t in cpu_by_thread(gateway.pid).items()}
        return used * 1e6 / requests, requests / duration, threads
    finally:
        for p in (gateway, backend):
            p.terminate()
            p.wait(timeout=10)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--duration", type=int, default=5)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("configs", nargs="+", help="NAME=CONFIG")
    args = parser.parse_args()
    configs = []
    for spec in args.configs:
        name, rest = spec.split("=", 1)
        path, *assignments = rest.split(",")
        configs.append((name, (os.path.abspath(path), dict(a.split("=", 1) for a in assignments))))
    results = {name: [] for name, _ in configs}
    rates = {name: [] for name, _ in configs}
    with tempfile.TemporaryDirectory() as workdir:
        for r in range(args.rounds):
            for name, config in configs:
                cpu, rate, threads = measure(config, args.duration, args.connections, workdir)
                results[name].append(cpu)
                rates[name].append(rate)
                split = "  ".join(f"{t} {us:.2f}" for t, us in sorted(threads.items()) if us >= 0.05)
                print(f"round {r + 1}/{args.rounds} {name:12s} {cpu:7.2f} us CPU/request  {rate:9.0f} req/s"
                      f"   by thread: {split}", flush=True)
    first = statistics.median(results[configs[0][0]])
    print()
    for name, _ in configs:
        med = statistics.median(results[name])
        print(f"{name:12s} median {med:7.2f} us CPU/request  (x{med / first:.2f} of {configs[0][0]}; "
              f"throughput on one core x{first / med:.2f})  median {statistics.median(rates[name]):.0f} req/s")


if __name__ == "__main__":
    sys.exit(main())
