#!/usr/bin/env python3
"""A debuginfod that hangs mid-body, as a fault injector (tests/run-service-debuginfod-hang.sh).

  debuginfod_stall.py PORT_FILE LOG STALL_BUILD_ID TRICKLE_BUILD_ID HEAL_FILE FILE...

Serves GET /buildid/ID/debuginfo for each FILE (keyed by its GNU build ID). For
STALL_BUILD_ID, while HEAL_FILE does not exist: the headers with the full Content-Length and
half of the body, then nothing, until the client closes the connection (at most 120 s).
TRICKLE_BUILD_ID gets its body at 1 KB/s (ten times curl's low-speed floor that libdebuginfod
sets, so only a deadline on the whole fetch stops it), again until the client hangs up.
Once HEAL_FILE exists both are served whole like the others. LOG gets one line per event:
"get ID", "stall ID", "closed ID SECONDS" (the client hung up SECONDS after the stall began).
"""
import os
import select
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def build_id(path):
    data = open(path, "rb").read()
    i = data.find(b"\x04\x00\x00\x00\x14\x00\x00\x00\x03\x00\x00\x00GNU\x00")
    if i < 0:
        raise SystemExit("%s: no GNU build ID" % path)
    return data[i + 16:i + 36].hex()


port_file, log_path, stall_id, trickle_id, heal = sys.argv[1:6]
files = {build_id(p): p for p in sys.argv[6:]}
lock = threading.Lock()


def log(line):
    with lock, open(log_path, "a") as f:
        f.write(line + "\n")


class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def do_GET(self):
        parts = self.path.split("/")
        if len(parts) != 4 or parts[1] != "buildid" or parts[3] != "debuginfo" or \
                parts[2] not in files:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        bid = parts[2]
        data = open(files[bid], "rb").read()
        log("get " + bid)
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if bid not in (stall_id, trickle_id) or os.path.exists(heal):
            self.wfile.write(data)
            return
        sent = len(data) // 2 if bid == stall_id else 512
        self.wfile.write(data[:sent])
        self.wfile.flush()
        log("stall " + bid)
        t0 = time.time()
        sock = self.connection
        while time.time() - t0 < 120:
            if bid == trickle_id and sent < len(data) - 1:
                try:  # never the last byte: the file stays incomplete
                    self.wfile.write(data[sent:min(sent + 512, len(data) - 1)])
                    self.wfile.flush()
                except OSError:
                    break
                sent = min(sent + 512, len(data) - 1)
            r, _, _ = select.select([sock], [], [], 0.5)
            if r:
                try:
                    if sock.recv(1, socket.MSG_PEEK) == b"":
                        break
                except OSError:
                    break
        log("closed %s %.2f" % (bid, time.time() - t0))
        self.close_connection = True


srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
srv.daemon_threads = True
open(port_file + ".tmp", "w").write(str(srv.server_address[1]))
os.rename(port_file + ".tmp", port_file)
srv.serve_forever()
