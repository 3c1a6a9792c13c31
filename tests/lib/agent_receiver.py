#!/usr/bin/env python3
"""A stand-in for fleetsymd's ingest endpoint in the agent's tests (loopback only).

  agent_receiver.py --port P --dir D [--status CODE] [--fail-first N]

Stores every POST as D/NNNN.body plus D/NNNN.json (path with query, Authorization and
Idempotency-Key headers, Content-Type, receive time) and answers CODE (default 200). Writes D/ready once listening.
With --fail-first N the first N POSTs are stored but answered 503 (as when the answer of a
stored profile is lost): the agent sends them again. Runs until killed.
"""
import argparse
import http.server
import json
import os
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--dir", required=True)
    ap.add_argument("--status", type=int, default=200)
    ap.add_argument("--fail-first", type=int, default=0)
    a = ap.parse_args()
    os.makedirs(a.dir, exist_ok=True)
    seq = [0]

    class H(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            n = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(n) if 0 < n <= 64 << 20 else b""
            seq[0] += 1
            base = os.path.join(a.dir, "%04d" % seq[0])
            with open(base + ".tmp", "wb") as f:
                f.write(body)
            with open(base + ".json", "w") as f:
                json.dump({"path": self.path, "authorization": self.headers.get("Authorization"),
                           "idempotency_key": self.headers.get("Idempotency-Key"),
                           "content_type": self.headers.get("Content-Type"),
                           "t_recv": time.time_ns(), "length": n}, f)
            os.rename(base + ".tmp", base + ".body")
            self.send_response(503 if seq[0] <= a.fail_first else a.status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, fmt, *args):
            pass

    srv = http.server.HTTPServer(("127.0.0.1", a.port), H)
    open(os.path.join(a.dir, "ready"), "w").close()
    srv.serve_forever()


if __name__ == "__main__":
    main()
