#!/usr/bin/env bash
# run alone
# Connection limits against slow and greedy clients, with real sockets on loopback:
#  - 400 connections from 127.0.0.1 that send half a request and stop: fleetsymd keeps at most
#    --max-connections-per-ip of them, and a normal request from another address (127.0.0.2)
#    is answered at once;
#  - once the headers are in, a body that pauses for 13 s is still taken (uploads and slow
#    clients get the long timeout).
# A client trickling its headers is closed by the header deadline: run-service-limits.sh.
set -uo pipefail
. "$(dirname "$0")/lib/service.sh"
need curl python3
python3 -c 'import socket; socket.socket().bind(("127.0.0.2", 0))' 2>/dev/null ||
	skip "no 127.0.0.2 on loopback"

start_fleetsymd conns --data-dir "$T/data" --max-connections-per-ip 50 --max-connections 1000
PORT=${URL##*:}

python3 - "$PORT" <<'PY' && ok "half-open flood from one address held to the per-IP cap" || fail "flood"
import socket, subprocess, sys, time
port = int(sys.argv[1])
socks = []
for i in range(400):
    s = socket.socket()
    s.settimeout(2)
    try:
        s.connect(("127.0.0.1", port))
        s.sendall(b"GET /api/v1/labels HTTP/1.1\r\nHost: x\r\n")  # no end of headers
        socks.append(s)
    except OSError:
        s.close()
time.sleep(1)
alive = 0
for s in socks:  # the server closes what it does not keep: a read sees EOF at once
    s.setblocking(False)
    try:
        alive += s.recv(1) != b""
    except BlockingIOError:
        alive += 1
    except OSError:
        pass
t0 = time.time()
out = subprocess.run(["curl", "-s", "-m", "10", "--interface", "127.0.0.2", "-o", "/dev/null",
                      "-w", "%{http_code}", "http://127.0.0.1:%d/api/v1/labels" % port],
                     capture_output=True, text=True).stdout
dt = time.time() - t0
print("400 half-open connections from 127.0.0.1: %d kept; a request from 127.0.0.2: %s in %.3f s"
      % (alive, out, dt))
assert alive <= 50, alive
assert out == "200" and dt < 3, (out, dt)
PY

python3 - "$PORT" <<'PY' && ok "a body that pauses 13 s after complete headers is taken" || fail "slow body"
import json, socket, sys, time
port = int(sys.argv[1])
body = b'{"build_id":"00112233445566778899aabbccddeeff00112233","addresses":["0x1000"]}'
s = socket.create_connection(("127.0.0.1", port), timeout=30)
s.sendall(b"POST /api/v1/symbolize HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
          b"Content-Length: %d\r\n\r\n" % len(body) + body[:10])
time.sleep(13)
s.sendall(body[10:])
resp = s.recv(65536).decode("latin-1")
print("status line after the pause:", resp.split("\r\n")[0])
assert resp.startswith("HTTP/1.1 200"), resp[:200]
PY

finish
