#!/usr/bin/env python3
"""Two fleetsymd with different profile stores take the same ingests; their answers must be
byte for byte equal.

  store_compare.py --a URL --b URL [--t0 NS]

The profiles: 3 series (two services, one with a second host), 2 sample types (cpu and
alloc_space), raw frames of two build IDs, named frames (Go-like and kernel), sample labels
(comm, span), a stack deeper than the store's 1024-frame cap. Then folded, top, json and
pprof-less answers of /query, /diff, /missing, /labels, /labels/NAME/values, /types, /series
and /timeline are fetched from both and compared.
"""
import argparse
import gzip
import os
import random
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mkpprof  # noqa: E402

BID_A = "ab" * 20
BID_B = "cd" * 20
PERIOD = 10101010


def http(url, data=None, method=None):
    req = urllib.request.Request(url, data=data, method=method)
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def profiles(t0):
    rnd = random.Random(7)
    maps = [{"build_id": BID_A, "filename": "/opt/app/fx"},
            {"build_id": BID_B, "filename": "/usr/lib/libother.so"}]
    stacks = []
    for i in range(40):
        depth = rnd.randint(1, 12)
        st = [[rnd.randint(0, 1), 0x1000 + 0x10 * rnd.randint(0, 60)] for _ in range(depth)]
        if i % 7 == 0:
            st.append([0, 0x99, "runtime.main"])
        if i % 11 == 0:
            st.insert(0, [0, 0x77, "do_syscall_64"])
        stacks.append(st)
    stacks.append([[0, 0x2000 + k] for k in range(1100)])  # cut at the depth cap
    out = []
    series = [{"service": "fx", "host": "h1"}, {"service": "fx", "host": "h2"},
              {"service": "db", "host": "h1"}]
    for i in range(24):
        for si, lab in enumerate(series):
            for typ in (["cpu", "nanoseconds"], ["alloc_space", "bytes"]):
                if typ[0] == "alloc_space" and si != 2:
                    continue
                samples = []
                for _ in range(60):
                    k = rnd.randrange(len(stacks))
                    labels = {"comm": rnd.choice(["fx", "worker"])}
                    if rnd.random() < 0.3:
                        labels["span"] = str(rnd.randint(1, 3))
                    v = PERIOD * rnd.randint(1, 5) if typ[0] == "cpu" else rnd.randint(1, 10**6)
                    samples.append({"frames": stacks[k], "value": v, "labels": labels})
                out.append((lab, {"type": typ, "period": PERIOD if typ[0] == "cpu" else 0,
                                  "time_ns": t0 + i * 10_000_000_000 + si,
                                  "duration_ns": 10_000_000_000,
                                  "mappings": maps, "samples": samples}))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--a", required=True)
    ap.add_argument("--b", required=True)
    ap.add_argument("--t0", type=int, default=0)
    a = ap.parse_args()
    t0 = a.t0 or (time.time_ns() - 3600 * 10**9) // 10**9 * 10**9
    profs = profiles(t0)
    for lab, p in profs:
        body = gzip.compress(mkpprof.encode(p))
        for url in (a.a, a.b):
            st, _, b = http(url + "/api/v1/ingest?" + urllib.parse.urlencode(lab), body, "POST")
            if st not in (200, 201, 202, 204):
                print("FAILED: ingest into %s: %d %s" % (url, st, b[:300]))
                return 1
    print("ok   %d profiles ingested into both" % len(profs))
    s = t0 // 10**9
    win = {"from": s, "to": s + 240}
    half = {"from": s + 120, "to": s + 240}
    checks = [
        ("/api/v1/query", dict(win, format="folded")),
        ("/api/v1/query", dict(win, format="top")),
        ("/api/v1/query", dict(win, format="json")),
        ("/api/v1/query", dict(win, format="folded", query='{service="fx"}')),
        ("/api/v1/query", dict(win, format="folded", query='{host="h1",comm="worker"}')),
        ("/api/v1/query", dict(win, format="folded", query='{span=~"1|2"}')),
        ("/api/v1/query", dict(win, format="folded", type="alloc_space")),
        ("/api/v1/query", dict(win, format="top", type="alloc_space:bytes", max_nodes=5)),
        ("/api/v1/query", dict(half, format="folded", query='{service!="db"}')),
        ("/api/v1/diff", dict(half, format="folded")),
        ("/api/v1/diff", dict(half, format="json", query='{host="h2"}')),
        ("/api/v1/missing", dict(win)),
        ("/api/v1/labels", {}),
        ("/api/v1/labels/host/values", {}),
        ("/api/v1/labels/comm/values", {}),
        ("/api/v1/types", {}),
        ("/api/v1/series", dict(win)),
        ("/api/v1/series", dict(win, query='{span="3"}')),
        ("/api/v1/timeline", dict(win, step="30s")),
        ("/api/v1/timeline", dict(win, step="20s", query='{comm="fx"}', type="alloc_space")),
    ]
    bad = 0
    for path, params in checks:
        q = path + "?" + urllib.parse.urlencode(params)
        sa, ha, ba = http(a.a + q)
        sb, hb, bb = http(a.b + q)
        # answers name their own server (the upload hint): the one allowed difference
        ba = ba.replace(a.a.encode(), b"SERVER")
        bb = bb.replace(a.b.encode(), b"SERVER")
        if sa != 200 or sb != 200 or ba != bb:
            bad += 1
            print("FAILED: %s: %d/%d, %d/%d bytes differ" % (q, sa, sb, len(ba), len(bb)))
            for k, (x, y) in enumerate(zip(ba.splitlines(), bb.splitlines())):
                if x != y:
                    print("  first difference at line %d:\n  a: %.300s\n  b: %.300s" %
                          (k + 1, x, y))
                    break
        elif len(ba) < 20:
            bad += 1
            print("FAILED: %s: answer too short to mean anything: %r" % (q, ba))
        else:
            print("ok   %s: %d bytes, equal" % (q, len(ba)))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
