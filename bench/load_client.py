#!/usr/bin/env python3
"""bench/load.sh's clients, all on loopback, for DURATION seconds:

  load_client.py URL WORKDIR DURATION SLOW

- SLOW slow clients (asyncio, one process) spread over 127.0.0.10.. source addresses, at most
  200 per address (under --max-connections-per-ip): each connects, sends a request line and
  then one header byte every 2 s, and connects again when the server closes it, so SLOW
  connections stay held for the whole run.
- Well-behaved clients from 127.0.0.1, one thread each kind: ingest (x2), query, symbolize
  batches of 1,000 addresses, uploads. A 503 with Retry-After is waited out and retried, as
  the agent does; anything else that is not 2xx, or a transport error, is an error.

Prints one line per kind (requests, errors, p50/p99 ms), the slow clients' connections and
reconnects, and writes the acknowledged ingest count to WORKDIR/acked.
"""
import asyncio
import gzip
import json
import os
import random
import sys
import threading
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "lib"))
import mkpprof  # noqa: E402

URL, WORK, DURATION, SLOW = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
HOST, PORT = URL.split("//")[1].split(":")
PORT = int(PORT)
END = time.time() + DURATION
lock = threading.Lock()
stats = {}  # kind -> {"lat": [], "errors": 0, "retries": 0, "last_error": ""}


def record(kind, ms=None, error=None, retry=False):
    with lock:
        s = stats.setdefault(kind, {"lat": [], "errors": 0, "retries": 0, "last_error": ""})
        if ms is not None:
            s["lat"].append(ms)
        if error:
            s["errors"] += 1
            s["last_error"] = error
        if retry:
            s["retries"] += 1


def call(kind, method, path, data=None, headers=None, ok=(200, 201)):
    """One well-behaved request: waits out 503 + Retry-After (at most 30 s), then counts."""
    t0 = time.time()
    deadline = t0 + 30
    while True:
        req = urllib.request.Request(URL + path, data=data, method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                body = r.read()
                code = r.status
        except urllib.error.HTTPError as e:
            body, code = e.read(), e.code
            if code == 503 and e.headers.get("Retry-After") and time.time() < deadline:
                record(kind, retry=True)
                time.sleep(min(float(e.headers["Retry-After"]), 1.0) * random.uniform(0.3, 1))
                continue
        except Exception as e:  # transport errors are errors
            record(kind, error="%s: %s" % (path, e))
            return None
        if code not in ok:
            record(kind, error="%s: %d %s" % (path, code, body[:120]))
            return None
        record(kind, ms=(time.time() - t0) * 1e3)
        return body


def ingester(n):
    r = random.Random(n)
    acked = 0
    i = 0
    while time.time() < END:
        spec = {"mappings": [{"build_id": "ab" * 20, "filename": "/opt/load"}],
                "samples": [{"frames": [[0, 0x1000 + 16 * r.randrange(2000)],
                                        [0, 0x8000 + 16 * r.randrange(200)]],
                             "value": 1 + r.randrange(9), "labels": {"comm": "load"}}
                            for _ in range(300)]}
        body = gzip.compress(mkpprof.encode(spec), 1)
        if call("ingest", "POST", "/api/v1/ingest?service=load&host=h%d" % n,
                body, {"Content-Encoding": "gzip"}) is not None:
            acked += 1
        i += 1
    with lock:
        stats.setdefault("acked", 0)
        stats["acked"] += acked


def querier():
    q = "/api/v1/query?query=%7Bservice%3D%22load%22%7D&from=now-10m&format=folded"
    while time.time() < END:
        call("query", "GET", q)
        time.sleep(0.2)


def symbolizer(bid, addrs):
    r = random.Random(2)
    while time.time() < END:
        body = json.dumps({"build_id": bid,
                           "addresses": [hex(r.choice(addrs)) for _ in range(1000)]}).encode()
        call("symbolize", "POST", "/api/v1/symbolize", body,
             {"Content-Type": "application/json"})


def uploader(files):
    i = 0
    while time.time() < END:
        bid, path = files[i % len(files)]
        with open(path, "rb") as f:
            data = f.read()
        call("upload", "PUT", "/api/v1/debuginfo/" + bid, data)
        i += 1
        time.sleep(0.5)


slow_state = {"open": 0, "max_open": 0, "connects": 0, "refused": 0}


async def slow_client(i):
    src = "127.0.0.%d" % (10 + i // 200)
    while time.time() < END:
        try:
            reader, writer = await asyncio.open_connection(HOST, PORT, local_addr=(src, 0))
        except OSError:
            slow_state["refused"] += 1
            await asyncio.sleep(1)
            continue
        slow_state["connects"] += 1
        slow_state["open"] += 1
        slow_state["max_open"] = max(slow_state["max_open"], slow_state["open"])
        try:
            writer.write(b"GET /api/v1/labels HTTP/1.1\r\nHost: x\r\n")
            await writer.drain()
            while time.time() < END:
                try:
                    d = await asyncio.wait_for(reader.read(1), 2)
                    if d == b"":
                        break
                except asyncio.TimeoutError:
                    pass
                writer.write(b"X")  # one byte of a header line every 2 s
                await writer.drain()
        except OSError:
            pass
        finally:
            slow_state["open"] -= 1
            writer.close()


def slow_main():
    async def run():
        await asyncio.gather(*(slow_client(i) for i in range(SLOW)))
    asyncio.run(run())


def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(len(v) * p))] if v else float("nan")


def main():
    with open(os.path.join(WORK, "fixtures.json")) as f:
        fx = json.load(f)
    threads = [threading.Thread(target=slow_main)]
    threads[0].start()
    time.sleep(3)  # the slow clients connect first
    threads += [threading.Thread(target=ingester, args=(n,)) for n in range(2)]
    threads += [threading.Thread(target=querier),
                threading.Thread(target=symbolizer, args=(fx["symbolize"]["build_id"],
                                                          fx["symbolize"]["addrs"])),
                threading.Thread(target=uploader, args=([(u["build_id"], u["path"])
                                                         for u in fx["uploads"]],))]
    for t in threads[1:]:
        t.start()
    for t in threads:
        t.join()
    errors = 0
    for kind in ("ingest", "query", "symbolize", "upload"):
        s = stats.get(kind, {"lat": [], "errors": 0, "retries": 0, "last_error": ""})
        errors += s["errors"]
        print("%-9s requests %5d  errors %d  retried 503s %4d  p50 %7.1f ms  p99 %7.1f ms%s"
              % (kind, len(s["lat"]), s["errors"], s["retries"], pct(s["lat"], 0.5),
                 pct(s["lat"], 0.99), ("  last error: " + s["last_error"]) if s["errors"] else ""))
    print("slow clients: %d, at most %d connections open at once, %d connects, %d refused"
          % (SLOW, slow_state["max_open"], slow_state["connects"], slow_state["refused"]))
    with open(os.path.join(WORK, "acked"), "w") as f:
        f.write("%d\n" % stats.get("acked", 0))
    with open(os.path.join(WORK, "errors"), "w") as f:
        f.write("%d\n" % errors)


main()
