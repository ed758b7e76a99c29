#!/usr/bin/env python3
"""How fast the admin listener answers with a big set-up: 10,000 API keys (registered
through POST /register into SQLite, each used once, and tracked as metrics series) and 100
upstream hosts (10 clusters x 10; one real flowguard-backend, the other 99 addresses refuse
connections and turn unhealthy, as real outages would).

  bench/admin_endpoints.py [--keys N] [--hosts N] [--samples N]

Prints p50 / p99 / max milliseconds and the body size of each listing and stats endpoint
(target from the admin issue: under 10 ms).
"""
import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

from benchlib import BUILD, free_port, wait_port


def config_yaml(port, admin, backend, hosts, db):
    clusters = []
    ports = [backend] + [free_port() for _ in range(hosts - 1)]
    per = 10
    for c in range(0, hosts, per):
        members = ", ".join(f"127.0.0.1:{p}" for p in ports[c:c + per])
        clusters.append(f"  - {{ name: c{c // per}, hosts: [{members}], "
                        "health_check: { path: /health, interval: 1s, timeout: 200ms } }")
    return f"""workers: 2
storage: {{ url: "sqlite://{db}", flush_interval: 100ms }}
plans: {{ free: {{ rate: 1000/s, burst: 1000 }} }}
admin: {{ address: "127.0.0.1:{admin}" }}
listeners:
  - name: public
    address: 127.0.0.1:{port}
    filters:
      - {{ name: auth, exempt: [ {{ path: /register }} ] }}
      - {{ name: metrics, max_key_series: 20000 }}
      - name: router
        routes:
          - {{ match: {{ path: /register }}, handler: register }}
          - {{ match: {{ prefix: / }}, cluster: c0 }}
clusters:
""" + "\n".join(clusters) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keys", type=int, default=10_000)
    parser.add_argument("--hosts", type=int, default=100)
    parser.add_argument("--samples", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        port, admin, backend_port = free_port(), free_port(), free_port()
        path = os.path.join(work, "flowguard.yaml")
        with open(path, "w") as f:
            f.write(config_yaml(port, admin, backend_port, args.hosts, os.path.join(work, "keys.db")))
        backend = subprocess.Popen([os.path.join(BUILD, "backend", "flowguard-backend"), "--port", str(backend_port),
                                    "--name", "b"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        gateway = subprocess.Popen([os.path.join(BUILD, "gateway", "flowguard"), "-c", path], cwd=work,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_port(backend_port)
            wait_port(port)
            wait_port(admin)
            public = http.client.HTTPConnection("127.0.0.1", port)
            started = time.time()
            for i in range(args.keys):
                public.request("POST", "/register", body=json.dumps({"name": f"key-{i}"}),
                               headers={"Content-Type": "application/json"})
                key = json.loads(public.getresponse().read())["api_key"]
                public.request("GET", "/", headers={"X-API-Key": key})
                public.getresponse().read()
            print(f"registered and used {args.keys} keys in {time.time() - started:.1f} s; "
                  f"{args.hosts} hosts in {args.hosts // 10} clusters", flush=True)
            time.sleep(3)  # health checks take the dead hosts out; the request log is written
            conn = http.client.HTTPConnection("127.0.0.1", admin)
            print(f"{'endpoint':22s} {'p50 ms':>8s} {'p99 ms':>8s} {'max ms':>8s} {'bytes':>10s}")
            for endpoint in ["/stats", "/clusters", "/stats/prometheus", "/stats/history", "/keys",
                             "/logs?limit=100", "/metrics"]:
                times, size = [], 0
                for _ in range(args.samples):
                    t0 = time.perf_counter()
                    conn.request("GET", endpoint)
                    response = conn.getresponse()
                    body = response.read()
                    times.append((time.perf_counter() - t0) * 1000)
                    if response.status != 200:
                        raise RuntimeError(f"{endpoint}: {response.status} {body[:200]!r}")
                    size = len(body)
                times.sort()
                p99 = times[min(len(times) - 1, int(len(times) * 0.99))]
                print(f"{endpoint:22s} {statistics.median(times):8.2f} {p99:8.2f} {times[-1]:8.2f} {size:10d}",
                      flush=True)
        finally:
            for p in (gateway, backend):
                p.terminate()
                p.wait(timeout=10)


if __name__ == "__main__":
    sys.exit(main())
