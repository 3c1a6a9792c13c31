#!/usr/bin/env python3
"""Ingest rate of fleetsymd for agent-like profiles (tests/run-ingest.sh, bench/ingest.sh).

  ingest_bench.py URL FSD_PID [--profiles N] [--clients 1,4] [--samples 1000]

Profiles as the agent sends them: unsymbolized frames (8 build IDs, file offsets), stacks of
20-60 frames that share their callers (each new stack copies a prefix of an earlier one and
grows its own tail), a Zipf-like mix of 3,000 distinct stacks, ~SAMPLES samples per profile
with pid/comm labels, gzip'd, one series per host. Prints profiles/s and samples/s as seen by
the client and per CPU-second of the server (utime + stime of FSD_PID), which is the number
that does not depend on this Python client.
"""
import argparse
import concurrent.futures
import gzip
import json
import os
import random
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mkpprof  # noqa: E402


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def make_bodies(nbodies, nsamples, seed=1):
    rnd = random.Random(seed)
    bids = ["%040x" % rnd.getrandbits(160) for _ in range(8)]
    # call sites: a pool the stacks draw from, so that stacks share frames as real ones do
    sites = [[rnd.randrange(8), rnd.randrange(1, 1 << 22) & ~3] for _ in range(6000)]
    stacks = []
    for i in range(3000):
        depth = rnd.randint(20, 60)
        if stacks:
            root = stacks[rnd.randrange(len(stacks))][::-1]  # root first
            keep = root[:rnd.randint(5, min(depth, len(root)) - 1)]
        else:
            keep = []
        tail = [sites[min(int(rnd.paretovariate(0.7)) - 1, len(sites) - 1) if rnd.random() < 0.5
                      else rnd.randrange(len(sites))] for _ in range(depth - len(keep))]
        stacks.append((keep + tail)[::-1])  # leaf first
    weights = [1.0 / (i + 1) for i in range(len(stacks))]
    now = time.time_ns()
    bodies, nlocs = [], []
    for k in range(nbodies):
        picked = set()
        while len(picked) < nsamples:
            picked.update(rnd.choices(range(len(stacks)), weights, k=nsamples))
        picked = sorted(picked)[:nsamples] if len(picked) > nsamples * 1.2 else picked
        samples = [{"frames": stacks[i], "value": rnd.randint(1, 20) * 52631578,
                    "labels": {"pid": 100 + i % 7, "comm": "w%d" % (i % 7)}} for i in picked]
        spec = {"type": ["cpu", "nanoseconds"], "period": 52631578,
                "time_ns": now - (nbodies - k) * 10 ** 10, "duration_ns": 10 ** 10,
                "mappings": [{"build_id": b, "filename": "/usr/lib/l%d.so" % j}
                             for j, b in enumerate(bids)],
                "samples": samples}
        bodies.append((gzip.compress(mkpprof.encode(spec), 6), len(samples)))
        locs = {tuple(f) for smp in samples for f in smp["frames"]}
        nlocs.append(len(locs))
    return bodies, sum(nlocs) / len(nlocs)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("url")
    ap.add_argument("pid", type=int)
    ap.add_argument("--profiles", type=int, default=200)
    ap.add_argument("--clients", default="1,4")
    ap.add_argument("--samples", type=int, default=1000)
    a = ap.parse_args()
    bodies, avg_locs = make_bodies(40, a.samples)
    avg_kib = sum(len(b) for b, _ in bodies) / len(bodies) / 1024

    def post(i):
        body, n = bodies[i % len(bodies)]
        req = urllib.request.Request(a.url + "/api/v1/ingest?service=bench&host=h%d" % (i % 100),
                                     data=body, method="POST",
                                     headers={"Content-Encoding": "gzip"})
        with urllib.request.urlopen(req, timeout=120) as r:
            d = json.load(r)
        if d.get("samples") != n:
            raise SystemExit("bad answer: %r" % d)
        return n

    for workers in [int(x) for x in a.clients.split(",")]:
        n = a.profiles * max(1, workers // 2)
        c0, t0 = cpu_seconds(a.pid), time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(workers) as ex:
            samples = sum(ex.map(post, range(n)))
        dt, cpu = time.perf_counter() - t0, cpu_seconds(a.pid) - c0
        print("ok   ingest, %d client%s: %d profiles of %d samples, %d locations (%.0f KiB gzip'd) in %.2f s: "
              "%.0f profiles/s, %.0f samples/s; server CPU %.2f s: %.0f profiles and %.0f "
              "samples per CPU-second" % (workers, "s" if workers > 1 else "", n, samples / n,
                                          avg_locs, avg_kib, dt, n / dt, samples / dt, cpu,
                                          n / max(cpu, 1e-9), samples / max(cpu, 1e-9)))


if __name__ == "__main__":
    main()
