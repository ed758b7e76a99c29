#!/usr/bin/env python3
"""Soak test (not in CI): N minutes of mixed load through one gateway, watching its memory
and file descriptors.

- flowguard-loadgen sends keep-alive traffic with two API keys: "fast" (no practical limit)
  and "slow" (5/s), to a backend failing 5% of requests: a mix of 200, 429 and 5xx.
- A Python thread keeps opening new connections, sending a request and either reading the
  answer and closing, or resetting the connection (SO_LINGER 0) mid-request.
- The gateway's RSS is sampled every 10 s; /proc/PID/fd is counted at start and end.

Warm-up (default 60 s) is the time the bounded structures take to fill under this load:
upstream pools (at most 64 idle connections per worker and host; 10-20 here, more on a busy
machine), the read buffers of the requests being read (16-64 KiB each; an idle connection,
client or pooled, holds none, so RSS follows the load, not the pool), each HTTP parser's
parked header fields (at most
max_headers = 100), the metrics series (one per key, route, host, reason: a fixed set here)
and the worker threads' malloc arenas reaching their working set. Measured: RSS is flat from
~40 s on. The admin status history (300 one-second points, ~14 KiB) fills later, too small to
matter. The warm-up does not grow with the run: a longer run only makes the check stricter.

Prints the RSS curve (start, after warm-up, end, max), the growth after warm-up in % (end vs
the first sample after warm-up, as issue 10 defines it; the growth to the highest sample after
warm-up is printed too: a sawtooth that happens to end low shows there) and the fd counts,
naming leaked fds; exits 1 when RSS grew more than --max-growth % after warm-up or fds leaked.

    BUILD_DIR=build-rel python3 bench/soak.py --minutes 10
"""
import argparse
import os
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

from benchlib import BUILD, free_port, wait_port

CONFIG = """workers: 2
listeners:
  - name: public
    address: 127.0.0.1:{port}
    filters:
      - name: auth
        keys:
          - {{ key: soak-fast-key, name: fast }}
          - {{ key: soak-slow-key, name: slow, limit: {{ rate: 5/s, burst: 5 }} }}
      - name: rate_limit
        rate: 100000/s
      - name: metrics
      - name: router
        routes:
          - match: {{ prefix: / }}
            cluster: backends
clusters:
  - name: backends
    hosts: [127.0.0.1:{backend}]
    retries: 0
    idle_timeout: 2s
admin: {{ address: "127.0.0.1:{admin}" }}
"""


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def fd_count(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def fd_targets(pid):
    """fd -> what it points at ("socket:[inode]", a path, ...)."""
    targets = {}
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            targets[fd] = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            pass
    return targets


def describe_socket(pid, target):
    """'socket:[123]' -> 'tcp 127.0.0.1:80 -> 127.0.0.1:5000 state 01' when it is a TCP socket."""
    inode = target[len("socket:["):-1] if target.startswith("socket:[") else None
    if inode is None:
        return target
    def addr(hexaddr):
        ip, port = hexaddr.split(":")
        return f"{socket.inet_ntoa(struct.pack('<I', int(ip, 16)))}:{int(port, 16)}"
    try:
        with open(f"/proc/{pid}/net/tcp") as f:
            for line in list(f)[1:]:
                cols = line.split()
                if cols[9] == inode:
                    return f"{target} tcp {addr(cols[1])} -> {addr(cols[2])} state {cols[3]}"
    except (OSError, IndexError, ValueError):
        pass
    return target


def socket_split(pid, port, backend_port):
    """How many of the gateway's TCP sockets are client connections (local port `port`) and
    how many go to the backend, by /proc/PID/net/tcp: RSS follows the open connections."""
    inodes = {t[len("socket:["):-1] for t in fd_targets(pid).values() if t.startswith("socket:[")}
    clients = upstream = 0
    try:
        with open(f"/proc/{pid}/net/tcp") as f:
            for line in list(f)[1:]:
                cols = line.split()
                if cols[9] not in inodes or cols[3] == "0A":  # 0A: listening
                    continue
                if int(cols[1].split(":")[1], 16) == port:
                    clients += 1
                elif int(cols[2].split(":")[1], 16) == backend_port:
                    upstream += 1
    except (OSError, IndexError, ValueError):
        pass
    return clients, upstream


def churn(port, stop, counts):
    """New connections, some answered and closed, some reset mid-request."""
    i = 0
    while not stop.is_set():
        i += 1
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=2)
            if i % 3 == 0:
                s.sendall(b"GET /delay/50 HTTP/1.1\r\nHost: soak\r\nX-API-Key: soak-fast-key\r\n\r\n")
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                s.close()  # RST while the request is in flight
                counts["reset"] += 1
            else:
                s.sendall(b"GET /churn HTTP/1.1\r\nHost: soak\r\nX-API-Key: soak-fast-key\r\n"
                          b"Connection: close\r\n\r\n")
                while s.recv(65536):
                    pass
                s.close()
                counts["closed"] += 1
        except OSError:
            counts["errors"] += 1
        time.sleep(0.005)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=10)
    ap.add_argument("--warmup", type=float, default=None, help="seconds of warm-up (default: 60 s, at most "
                    "half the run)")
    ap.add_argument("--rate", type=float, default=2000, help="loadgen requests/s")
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--max-growth", type=float, default=5.0, help="allowed RSS growth after warm-up, %%")
    args = ap.parse_args()
    total = args.minutes * 60
    warmup = args.warmup if args.warmup is not None else min(60.0, total / 2)

    tmp = tempfile.mkdtemp(prefix="fg-soak-")
    port, admin, backend_port = free_port(), free_port(), free_port()
    config = os.path.join(tmp, "flowguard.yaml")
    with open(config, "w") as f:
        f.write(CONFIG.format(port=port, admin=admin, backend=backend_port))
    log = open(os.path.join(tmp, "gateway.log"), "w")
    backend = subprocess.Popen([os.path.join(BUILD, "backend/flowguard-backend"), "--port", str(backend_port),
                                "--name", "soak", "--fail-rate", "0.05"], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    gateway = subprocess.Popen([os.path.join(BUILD, "gateway/flowguard"), "-c", config], stdout=log, stderr=log)
    procs = [backend, gateway]
    try:
        wait_port(backend_port)
        wait_port(port)
        time.sleep(0.5)
        fds_start = fd_count(gateway.pid)
        fd_map_start = fd_targets(gateway.pid)
        loadgen = subprocess.Popen(
            [os.path.join(BUILD, "loadgen/flowguard-loadgen"), f"http://127.0.0.1:{port}/soak", "-c",
             str(args.connections), "-t", "1", "-d", str(int(total)), "--rate", str(args.rate), "--key",
             "soak-fast-key", "--key", "soak-slow-key", "--json", os.path.join(tmp, "loadgen.json"), "-q"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(loadgen)
        stop = threading.Event()
        counts = {"reset": 0, "closed": 0, "errors": 0}
        churner = threading.Thread(target=churn, args=(port, stop, counts), daemon=True)
        churner.start()

        samples = []  # (seconds since start, RSS KiB)
        start = time.time()
        while True:
            elapsed = time.time() - start
            samples.append((elapsed, rss_kib(gateway.pid)))
            clients, upstream = socket_split(gateway.pid, port, backend_port)
            print(f"  t={elapsed:6.0f}s rss={samples[-1][1] / 1024:7.1f} MiB fds={fd_count(gateway.pid)} "
                  f"(client connections {clients}, backend connections {upstream})", flush=True)
            if elapsed >= total or loadgen.poll() is not None:
                break
            time.sleep(min(10, max(0.1, total - elapsed)))
        stop.set()
        churner.join(timeout=5)
        loadgen.wait(timeout=30)
        time.sleep(5)  # idle client connections close, pooled upstream ones pass the cluster idle_timeout
        fds_end = fd_count(gateway.pid)
        fd_map_end = fd_targets(gateway.pid)

        first = next((i for i, (t, _) in enumerate(samples) if t >= warmup), len(samples) - 1)
        after_warmup = samples[first][1]
        end = samples[-1][1]
        peak = max(kib for _, kib in samples)
        peak_after = max(kib for _, kib in samples[first:])
        growth = 100.0 * (end - after_warmup) / after_warmup if after_warmup else 0.0
        growth_peak = 100.0 * (peak_after - after_warmup) / after_warmup if after_warmup else 0.0
        print(f"RSS MiB: start {samples[0][1] / 1024:.1f}, after warm-up ({warmup:.0f}s) {after_warmup / 1024:.1f}, "
              f"end {end / 1024:.1f}, max {peak / 1024:.1f}, max after warm-up {peak_after / 1024:.1f}; "
              f"growth after warm-up {growth:+.2f}% (to the highest sample {growth_peak:+.2f}%)")
        print(f"fds: start {fds_start}, end {fds_end}")
        for fd, target in sorted(fd_map_end.items(), key=lambda e: int(e[0])):
            if fds_end != fds_start and fd_map_start.get(fd) != target:
                print(f"  fd {fd} not there at start: {describe_socket(gateway.pid, target)}")
        print(f"churn: {counts['closed']} answered+closed, {counts['reset']} reset, {counts['errors']} errors")
        try:
            import json
            with open(os.path.join(tmp, "loadgen.json")) as f:
                summary = json.load(f)
            print("loadgen:", json.dumps({k: summary[k] for k in summary if k in
                                          ("requests", "rps", "status", "errors", "latency_ms")})[:600])
        except (OSError, ValueError):
            pass
        failed = False
        if growth > args.max_growth:
            print(f"FAIL: RSS grew {growth:.2f}% after warm-up (limit {args.max_growth}%)")
            failed = True
        if fds_end > fds_start:
            print(f"FAIL: fds leaked: {fds_start} at start, {fds_end} at end")
            failed = True
        return 1 if failed else 0
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                p.terminate()
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
        log.close()


if __name__ == "__main__":
    sys.exit(main())
