#!/usr/bin/env python3
"""A fixture server for working on the web UI without a store: serves symbolizer/webui/ at /
and /ui/* straight from the source tree (edit, reload) and hand-written answers in the shapes
symbolizer/query/render.c writes for /api/v1/query (json, top), /diff, /missing, /labels, /types.

  python3 tests/webui/devserver.py [PORT]      then open http://127.0.0.1:PORT/

The real thing is fleetsymd; tests/run-webui.sh drives the UI against it.
"""
import json
import os
import sys
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

WEBUI = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "symbolizer", "webui")
BID_APP = "5f1c0e9a7b3d2c41"
BID_LIB = "a0b1c2d3e4f5061728394a5b6c7d8e9f00112233"
MS = 10_101_010  # one sample at 99 Hz, in ns


def fr(name, self=0, file="/src/demo/work.c", line=1, inlined=False, kids=(), unresolved=None):
    n = {"name": name, "self": self * MS, "file": file, "line": line, "inlined": inlined,
         "children": list(kids)}
    if unresolved:
        n.update(file=None, line=0, unresolved=True, build_id=unresolved[0], mapping=unresolved[1])
    n["total"] = n["self"] + sum(k["total"] for k in n["children"])
    return n


def tree(scale=1.0):
    s = lambda v: int(v * scale)
    return fr("root", 0, None, 0, kids=[
        fr("_start", 0, line=0, kids=[fr("__libc_start_main", 0, "../csu/libc-start.c", 392, kids=[
            fr("main", 2, line=80, kids=[
                fr("serve", 0, line=60, inlined=True, kids=[
                    fr("hash_block", 40, line=30, kids=[
                        fr("mix", s(900), line=22, inlined=True),
                        fr("rotl", 120, line=18, inlined=True),
                    ]),
                    fr("parse_request", 60, line=44, kids=[
                        fr("memchr", 35, "../sysdeps/x86_64/multiarch/memchr-avx2.S", 70),
                    ]),
                    fr("compress_reply", 20, line=52, kids=[
                        fr("libz.so.1+0x7a10", 140, unresolved=(BID_LIB, "libz.so.1")),
                        fr("libz.so.1+0x7b52", 60, unresolved=(BID_LIB, "libz.so.1")),
                    ]),
                ]),
                fr("log_line", 5, line=70, kids=[
                    fr("__vfprintf_internal", 30, "stdio-common/vfprintf-internal.c", 1522),
                    fr("write", 4, "../sysdeps/unix/sysv/linux/write.c", 26, kids=[
                        fr("entry_SYSCALL_64_after_hwframe", 0, None, 0, kids=[
                            fr("ksys_write", 25, None, 0)])]),
                ]),
            ]),
        ])]),
    ])


def meta(t, prefix="", q="{}"):
    return {prefix + "query": q, prefix + "from": 0, prefix + "to": 0, prefix + "profiles": 6,
            prefix + "type": "cpu", prefix + "unit": "nanoseconds", prefix + "total": t["total"],
            prefix + "partial": False, prefix + "unknown_locations": 2, prefix + "locations": 40,
            prefix + "build_ids": []}


def diff_tree(b, c, bt, ct):
    kids = {k["name"]: k for k in b["children"]}
    n = {"name": c["name"], "self": c["self"], "total": c["total"],
         "base_self": kids and 0, "base_total": 0}
    n.update(base_self=b["self"] if b else 0, base_total=b["total"] if b else 0)
    n["share"] = c["total"] / ct
    n["base_share"] = n["base_total"] / bt
    n["delta"] = n["share"] - n["base_share"]
    for k in ("file", "line", "inlined", "unresolved", "build_id", "mapping"):
        if k in c:
            n[k] = c[k]
    n["children"] = [diff_tree(kids.get(k["name"], {"children": [], "self": 0, "total": 0}), k, bt, ct)
                     for k in c["children"]]
    return n


def top_text(t):
    rows = {}

    def walk(n, path):
        if n["name"] != "root":
            r = rows.setdefault(n["name"], [0, 0, n.get("file") or ""])
            r[0] += n["self"]
            if n["name"] not in path:
                r[1] += n["total"]
        for k in n["children"]:
            walk(k, path | {n["name"]})
    walk(t, set())
    total = t["total"]
    out = ["Type: cpu (nanoseconds), 6 profiles, total %d" % total,
           "Showing %d of %d functions" % (len(rows), len(rows)),
           "%14s %7s %7s %14s %7s  %s" % ("flat", "flat%", "sum%", "cum", "cum%", "function")]
    s = 0
    for name, (flat, cum, f) in sorted(rows.items(), key=lambda kv: -kv[1][0]):
        s += flat
        out.append("%14d %6.2f%% %6.2f%% %14d %6.2f%%  %s%s" % (
            flat, 100 * flat / total, 100 * s / total, cum, 100 * cum / total, name,
            " " + f if f else ""))
    return "\n".join(out) + "\n"


class H(BaseHTTPRequestHandler):
    def send(self, code, body, ctype="application/json"):
        if not isinstance(body, bytes):
            body = (json.dumps(body) if ctype == "application/json" else body).encode()
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        u = urllib.parse.urlparse(self.path)
        q = dict(urllib.parse.parse_qsl(u.query))
        p = u.path
        if p in ("/", "/index.html"):
            p = "/ui/index.html"
        if p.startswith("/ui/"):
            f = os.path.join(WEBUI, os.path.basename(p))
            if not os.path.isfile(f):
                return self.send(404, {"error": "no such file"})
            ext = os.path.splitext(f)[1]
            ct = {".html": "text/html", ".js": "text/javascript", ".css": "text/css",
                  ".svg": "image/svg+xml"}.get(ext, "application/octet-stream")
            return self.send(200, open(f, "rb").read(), ct)
        if p == "/api/v1/labels":
            return self.send(200, ["comm", "host", "service", "version"])
        if p.startswith("/api/v1/labels/"):
            name = p.split("/")[4]
            vals = {"service": ["checkout", "demo"], "host": ["web-1", "web-2"],
                    "version": ["v1", "v2"], "comm": ["demo-workload"]}.get(name, [])
            return self.send(200, vals)
        if p == "/api/v1/types":
            return self.send(200, [{"name": "cpu", "unit": "nanoseconds"}])
        if p == "/api/v1/query":
            t = tree()
            if q.get("format") == "top":
                return self.send(200, top_text(t), "text/plain")
            return self.send(200, dict(meta(t, q=q.get("query", "{}")), nodes=20, pruned=0, root=t))
        if p == "/api/v1/diff":
            b, c = tree(0.6), tree(1.0)
            body = dict(meta(b, "base_"), **meta(c))
            body.update(nodes=20, pruned=0, root=diff_tree(b, c, b["total"], c["total"]))
            return self.send(200, body)
        if p == "/api/v1/timeline":
            import math, time
            now = int(time.time())
            step = int(q.get("step", "60s").rstrip("s"))
            frm = now - 3600 if q.get("from", "now-1h").startswith("now") else now - 3600
            pts = [[t, int(1e9 * (3 + math.sin(t / 300.0) + (2 if (t // 600) % 3 == 0 else 0)))]
                   for t in range(frm - frm % step, now, step)]
            return self.send(200, {"points": pts, "from": frm, "to": now, "step": float(step)})
        if p == "/api/v1/missing":
            t = tree()
            srv = "http://%s" % self.headers.get("Host")
            return self.send(200, dict(meta(t), unsymbolized=200 * MS,
                                       unsymbolized_share=200 * MS / t["total"], missing=[{
                "build_id": BID_LIB, "files": ["/usr/lib/x86_64-linux-gnu/libz.so.1.2.13"],
                "samples": 200 * MS, "share": 200 * MS / t["total"], "status": "missing",
                "reason": "no debug info in the store, the debug dirs or debuginfod",
                "locations": 2, "unknown_locations": 2,
                "fix": "fleetsym-upload --server %s /usr/lib/x86_64-linux-gnu/libz.so.1.2.13" % srv}]))
        return self.send(404, {"error": "no such endpoint"})

    def log_message(self, fmt, *args):
        pass


if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 7071
    ThreadingHTTPServer(("127.0.0.1", port), H).serve_forever()
