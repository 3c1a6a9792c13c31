#!/usr/bin/env python3
"""Load client for bench/service.sh: POST /api/v1/symbolize over keep-alive HTTP/1.1.

  service_client.py throughput URL BUILD_ID ADDRS_FILE --batch 1000 --conns 2 --seconds 10
  service_client.py latency URL BUILD_ID ADDRS_FILE --requests 2000

ADDRS_FILE holds one hex address per line. throughput: CONNS processes (no GIL between them),
each with one connection, send pre-encoded batches of BATCH addresses back to back for SECONDS
and read each answer whole (the first answer of each process is parsed and checked); prints
addresses/s. latency: one connection, one address per request, sequential; prints p50/p90/p99.
"""
import argparse
import http.client
import json
import multiprocessing
import random
import sys
import time
import urllib.parse


def conn_for(url):
    u = urllib.parse.urlparse(url)
    return http.client.HTTPConnection(u.hostname, u.port, timeout=120)


def post(c, body):
    c.request("POST", "/api/v1/symbolize", body=body, headers={"Content-Type": "application/json"})
    r = c.getresponse()
    data = r.read()
    if r.status != 200:
        raise SystemExit(f"status {r.status}: {data[:200]!r}")
    return data


def worker(args):
    url, bid, addrs, batch, seconds, seed = args
    rnd = random.Random(seed)
    bodies = [json.dumps({"build_id": bid, "addresses": rnd.sample(addrs, min(batch, len(addrs)))}).encode()
              for _ in range(16)]
    c = conn_for(url)
    first = json.loads(post(c, bodies[0]))
    assert first["status"] == "found" and len(first["results"]) == batch, first.get("status")
    n = 0
    nbytes = 0
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        nbytes += len(post(c, bodies[n % len(bodies)]))
        n += 1
    return n * batch, time.perf_counter() - t0, nbytes


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["throughput", "latency"])
    ap.add_argument("url")
    ap.add_argument("build_id")
    ap.add_argument("addrs")
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--conns", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--requests", type=int, default=2000)
    a = ap.parse_args()
    addrs = [l.strip() for l in open(a.addrs) if l.strip()]

    if a.mode == "throughput":
        with multiprocessing.Pool(a.conns) as p:
            res = p.map(worker, [(a.url, a.build_id, addrs, a.batch, a.seconds, i) for i in range(a.conns)])
        total = sum(r[0] for r in res)
        secs = max(r[1] for r in res)
        mb = sum(r[2] for r in res) / 1e6
        print(f"throughput: {total / secs:,.0f} addresses/s ({a.conns} connections, batches of "
              f"{a.batch}, {secs:.1f}s, {total:,} addresses, {mb:.0f} MB of JSON answers)")
        return 0
    rnd = random.Random(7)
    c = conn_for(a.url)
    bodies = [json.dumps({"build_id": a.build_id, "addresses": [rnd.choice(addrs)]}).encode()
              for _ in range(a.requests)]
    post(c, bodies[0])
    lat = []
    for b in bodies:
        t0 = time.perf_counter()
        post(c, b)
        lat.append(time.perf_counter() - t0)
    lat.sort()
    pct = lambda p: lat[min(len(lat) - 1, int(p / 100 * len(lat)))] * 1e3
    print(f"latency, one address per request ({a.requests} requests, 1 connection): "
          f"p50 {pct(50):.3f} ms, p90 {pct(90):.3f} ms, p99 {pct(99):.3f} ms, max {lat[-1] * 1e3:.3f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
