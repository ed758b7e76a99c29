#!/usr/bin/env python3
"""Hot reload under load, measured from outside: flowguard-loadgen drives the gateway (two
backends, auth + rate_limit + metrics + router) for two phases of the same length, side by
side in one run: a quiet phase, then a phase with a reload every `--every` seconds that
alternates two valid configs (a different route set and a changed cluster each time), saved
by rename as an editor would. Prints for each phase requests/s, p50/p99/max latency and
every non-2xx answer and error, and the reloads' own apply times from /config_dump.

  bench/reload.py [--duration 10] [--every 0.5] [--connections 32]

The target is zero failed requests during reloads; the latency ratio says what a reload
costs the requests around it. Build first (BUILD_DIR, default build/).
"""
import argparse
import http.client
import json
import os
import subprocess
import sys
import tempfile
import threading
import time

from benchlib import BUILD, free_port, wait_port


def config_yaml(port, admin, backends, variant):
    mirror = list(reversed(backends)) if variant else backends
    hosts = ", ".join(f"127.0.0.1:{p}" for p in mirror)
    body = "variant-B" if variant else "variant-A"
    return f"""workers: 2
admin: {{ address: "127.0.0.1:{admin}" }}
listeners:
  - name: public
    address: 127.0.0.1:{port}
    filters:
      - {{ name: auth, keys: [ {{ key: bench-key-0001, name: bench }} ] }}
      - {{ name: rate_limit, rate: 100000/s, burst: 100000 }}
      - {{ name: metrics }}
      - name: router
        routes:
          - {{ match: {{ path: /variant }}, direct_response: {{ status: 200, body: {body} }} }}
          - {{ match: {{ prefix: / }}, cluster: backends }}
clusters:
  - {{ name: backends, hosts: [{hosts}], connect_timeout: {"1s" if variant else "2s"} }}
"""


def admin_get(port, path):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    c.request("GET", path)
    r = c.getresponse()
    body = r.read()
    c.close()
    return json.loads(body)


def loadgen(url, duration, connections, out):
    cmd = [os.path.join(BUILD, "loadgen", "flowguard-loadgen"), "-q", "-c", str(connections), "-t", "1",
           "-d", str(duration), "--key", "bench-key-0001", "--json", out, url]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    with open(out) as f:
        return json.load(f)


def summary(name, report):
    lat = report["latency"]
    bad = {s: n for s, n in report["status"].items() if not s.startswith("2")}
    return (f"{name:>14}: {report['requests_per_sec']:9.0f} req/s  p50 {lat['p50_us'] / 1000:6.2f} ms  "
            f"p99 {lat['p99_us'] / 1000:6.2f} ms  max {lat['max_us'] / 1000:7.2f} ms  "
            f"non-2xx {bad or 'none'}  errors {report['errors']}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--every", type=float, default=0.5)
    ap.add_argument("--connections", type=int, default=32)
    args = ap.parse_args()

    work = tempfile.mkdtemp(prefix="fg-reload-bench-")
    port, admin = free_port(), free_port()
    backends = [free_port(), free_port()]
    procs = [subprocess.Popen([os.path.join(BUILD, "backend", "flowguard-backend"), "--port", str(p),
                               "--name", f"b{i}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
             for i, p in enumerate(backends)]
    config = os.path.join(work, "flowguard.yaml")
    with open(config, "w") as f:
        f.write(config_yaml(port, admin, backends, False))
    log = open(os.path.join(work, "gateway.log"), "w")
    gateway = subprocess.Popen([os.path.join(BUILD, "gateway", "flowguard"), "-c", config], stderr=log)
    try:
        for p in backends + [port, admin]:
            wait_port(p)
        url = f"http://127.0.0.1:{port}/whoami"
        quiet = loadgen(url, args.duration, args.connections, os.path.join(work, "quiet.json"))

        stop = threading.Event()
        durations = []

        def reloader():
            variant = False
            stop.wait(args.every)  # the load generator's connections are up first
            while not stop.is_set():
                variant = not variant
                generation = admin_get(admin, "/config_dump")["generation"]
                tmp = config + ".tmp"
                with open(tmp, "w") as f:
                    f.write(config_yaml(port, admin, backends, variant))
                os.rename(tmp, config)
                deadline = time.time() + 5
                while time.time() < deadline:
                    dump = admin_get(admin, "/config_dump")
                    if dump["generation"] > generation:
                        durations.append(dump["last_reload"]["duration_ms"])
                        break
                    time.sleep(0.01)
                stop.wait(args.every)

        thread = threading.Thread(target=reloader)
        thread.start()
        busy = loadgen(url, args.duration, args.connections, os.path.join(work, "busy.json"))
        stop.set()
        thread.join()
        dump = admin_get(admin, "/config_dump")

        print(summary("no reloads", quiet))
        print(summary(f"{len(durations)} reloads", busy))
        print(f"p99 with reloads / without: {busy['latency']['p99_us'] / max(1, quiet['latency']['p99_us']):.2f}; "
              f"req/s ratio {busy['requests_per_sec'] / quiet['requests_per_sec']:.2f}")
        if durations:
            durations.sort()
            print(f"reload apply time: median {durations[len(durations) // 2]:.2f} ms, max {durations[-1]:.2f} ms; "
                  f"reloads ok {dump['reloads']['ok']}, failed {dump['reloads']['failed']}")
        failed = sum(n for s, n in busy["status"].items() if not s.startswith("2")) + busy["errors"]["total"]
        print("failed requests during reloads:", failed)
        return 0 if failed == 0 else 1
    finally:
        gateway.terminate()
        gateway.wait(timeout=20)
        for p in procs:
            p.terminate()
            p.wait()


if __name__ == "__main__":
    sys.exit(main())
