#!/usr/bin/env bash
# run alone
# Limits on what one client's requests may cost fleetsymd (issue 13), with real sockets on
# loopback; each prints its figure (time, peak RSS of fleetsymd, status codes):
#  - a client that trickles one header line a second (below the 10 s idle timeout) is closed
#    at --header-timeout, counted in /metrics; a kept-alive connection still serves requests;
#  - a symbolize body of 16 MiB holding ~8M values is refused with 413 as its values are
#    counted, and fleetsymd's peak RSS stays small (jansson parsed it whole before);
#  - a 64 KB gzip'd pprof that unpacks past the decode budget is refused with 413 inside
#    --ingest-memory; concurrent ingests past the shared budget get 503 + Retry-After, never
#    500, and once retried every profile is stored exactly once; ingest bodies held in memory
#    at once are capped the same way (503 before the body is sent);
#  - against a debuginfod that accepts and never answers, one client's 120 random build IDs
#    get 200 "pending" (never 500) and cannot take the resolver slots from a second client;
#  - at most --max-heavy-queries queries run at once (503 + Retry-After), and a query past
#    --query-timeout is stopped with 503.
set -uo pipefail
. "$(dirname "$0")/lib/service.sh"
need curl python3
python3 -c 'import socket; socket.socket().bind(("127.0.0.2", 0))' 2>/dev/null || skip "no 127.0.0.2 on loopback"
export PYTHONDONTWRITEBYTECODE=1
hwm_mb() { awk '/^VmHWM/ { print int($2 / 1024) }' "/proc/$1/status"; }

echo "== header deadline"
start_fleetsymd hdr --data-dir "$T/hdr" --header-timeout 3s
python3 - "${URL##*:}" <<'PY' && ok "trickling client closed at the header deadline" || fail "trickle"
import socket, sys, time
port = int(sys.argv[1])
s = socket.create_connection(("127.0.0.1", port), timeout=5)
s.sendall(b"GET /api/v1/labels HTTP/1.1\r\nHost: x\r\n")
t0 = time.time()
closed = None
for i in range(20):  # one header line a second for up to 20 s: never 10 s idle
    time.sleep(1)
    try:
        s.sendall(b"X-Slow-%d: 1\r\n" % i)
        s.setblocking(False)
        if s.recv(1) == b"":
            closed = time.time() - t0
            break
    except BlockingIOError:
        pass
    except OSError:
        closed = time.time() - t0
        break
    finally:
        s.setblocking(True)
print("a header line a second, --header-timeout 3s: closed after %s s"
      % (None if closed is None else round(closed, 1)))
assert closed is not None and 2 <= closed < 10, closed
PY
n=$(metric "$URL" fleetsymd_http_header_timeouts_total)
[ "$n" -ge 1 ] && ok "fleetsymd_http_header_timeouts_total $n" || fail "header timeouts metric: $n"
python3 - "${URL##*:}" <<'PY' && ok "a kept-alive connection serves 5 requests in a row" || fail "keep-alive"
import http.client, sys
c = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]), timeout=10)
for i in range(5):
    c.request("GET", "/api/v1/labels")
    r = c.getresponse()
    r.read()
    assert r.status == 200, r.status
PY

echo "== symbolize: values counted while the body arrives"
start_fleetsymd sym --data-dir "$T/sym"
python3 -c '
import sys
n = (16 << 20) - 200
body = b"{\"build_id\":\"00112233445566778899aabbccddeeff00112233\",\"addresses\":[" + b"0," * ((n - 80) // 2) + b"0]}"
open(sys.argv[1], "wb").write(body)' "$T/sym.json"
t0=$(date +%s%N)
code=$(curl -s -o "$T/body" -w '%{http_code}' -X POST --data-binary @"$T/sym.json" "$URL/api/v1/symbolize")
ms=$((($(date +%s%N) - t0) / 1000000))
rss=$(hwm_mb "$FSD_PID")
if [ "$code" = 413 ] && [ "$rss" -lt 100 ] && grep -q "at most 100000" "$T/body"; then
	ok "16 MiB body of $(($(stat -c %s "$T/sym.json") / 2)) values: 413 in $ms ms, fleetsymd peak RSS $rss MB"
else
	fail "maximal symbolize body: $code, peak RSS $rss MB: $(head -c 300 "$T/body")"
fi
code=$(curl -s -o "$T/body" -w '%{http_code}' -X POST \
	-d '{"build_id":"00112233445566778899aabbccddeeff00112233","addresses":["0x1000",4096]}' \
	"$URL/api/v1/symbolize")
[ "$code" = 200 ] && ok "a small symbolize request still answers 200" || fail "small symbolize: $code"

echo "== ingest: a shared decode budget"
python3 -c '
import gzip, sys
raw = b"\x12\x00" * ((32 << 20) - 8)   # 64 MiB of empty samples
open(sys.argv[1], "wb").write(gzip.compress(raw, 9))' "$T/bomb.pb.gz"
start_fleetsymd ing --data-dir "$T/ing" --ingest-memory 64M
code=$(curl -s -o "$T/body" -w '%{http_code}' -H 'Content-Encoding: gzip' \
	--data-binary @"$T/bomb.pb.gz" "$URL/api/v1/ingest?service=bomb")
rss=$(hwm_mb "$FSD_PID")
if [ "$code" = 413 ] && [ "$rss" -lt 250 ] && grep -q "ingest-memory" "$T/body"; then
	ok "$(stat -c %s "$T/bomb.pb.gz")-byte gzip'd profile: 413, fleetsymd peak RSS $rss MB with --ingest-memory 64M"
else
	fail "ingest bomb: $code, peak RSS $rss MB: $(head -c 300 "$T/body")"
fi
start_fleetsymd ing2 --data-dir "$T/ing2" --ingest-memory 40M --threads 16
python3 - "$URL" "$TESTS/lib" <<'PY' && ok "concurrent ingests past the budget: 503 + Retry-After, all stored once after retries" || fail "ingest budget"
import concurrent.futures, gzip, sys, time, urllib.error, urllib.request
sys.path.insert(0, sys.argv[2])
import mkpprof
url = sys.argv[1]
spec = {"mappings": [{"build_id": "ab" * 20, "filename": "/opt/fx"}],
        "samples": [{"frames": [[0, 0x1000 + 16 * (i % 4000)], [0, 0x9000 + i]], "value": 1,
                     "labels": {"comm": "fx"}} for i in range(40000)]}
body = gzip.compress(mkpprof.encode(spec), 1)
codes = {}
def one(i):
    seen = []
    for attempt in range(200):
        req = urllib.request.Request(url + "/api/v1/ingest?service=budget&i=%d" % i, data=body,
                                     method="POST")
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                seen.append(r.status)
                return seen
        except urllib.error.HTTPError as e:
            seen.append(e.code)
            if e.code != 503 or e.headers.get("Retry-After") is None:
                return seen
            time.sleep(0.05)
    return seen
t0 = time.time()
with concurrent.futures.ThreadPoolExecutor(12) as ex:
    runs = list(ex.map(one, range(24)))
for s in runs:
    for c in s:
        codes[c] = codes.get(c, 0) + 1
print("24 ingests (each ~26 MB to decode) from 12 threads, --ingest-memory 40M: status counts %s in %.1f s"
      % (codes, time.time() - t0))
assert all(s[-1] == 200 for s in runs), runs
assert set(codes) <= {200, 503}, codes
assert codes.get(503, 0) >= 1, "no ingest met the budget: %s" % codes
m = urllib.request.urlopen(url + "/metrics", timeout=10).read().decode()
stored = [l for l in m.splitlines() if l.startswith("fleetsymd_ingest_profiles_total ")]
print(stored[0])
assert stored[0].split()[1] == "24", stored
PY
rss=$(hwm_mb "$FSD_PID")
ok "fleetsymd peak RSS under the concurrent ingests: $rss MB"
start_fleetsymd ing3 --data-dir "$T/ing3" --ingest-memory 4M --max-ingest-size 3M
python3 - "${URL##*:}" <<'PY' && ok "ingest bodies held at once are capped: 503 + Retry-After before the body" || fail "ingest body budget"
import socket, subprocess, sys, time
port = int(sys.argv[1])
def post(n):
    out = subprocess.run(["curl", "-s", "-m", "20", "-D", "-", "-o", "/dev/null", "-X", "POST",
                          "--data-binary", "@-", "http://127.0.0.1:%d/api/v1/ingest?service=b" % port],
                         input=b"\xff" * n, capture_output=True).stdout.decode()
    last = out[out.rfind("HTTP/"):]  # past any "100 Continue"
    return int(last.split()[1]), "retry-after" in last.lower()
s = socket.create_connection(("127.0.0.1", port), timeout=10)
s.sendall(b"POST /api/v1/ingest?service=a HTTP/1.1\r\nHost: x\r\nContent-Length: 3000000\r\n\r\n" + b"x" * 100)
time.sleep(0.5)
t0 = time.time()
code, ra = post(2000000)
dt = time.time() - t0
print("a 3 MB ingest body in progress, --ingest-memory 4M: a 2 MB one gets %d (Retry-After: %s) in %.2f s" % (code, ra, dt))
assert code == 503 and ra, (code, ra)
s.close()
for _ in range(50):  # the first one's share comes back when it ends
    code, _ = post(2000000)
    if code != 503:
        break
    time.sleep(0.1)
print("once it went away: %d" % code)
assert code == 400, code  # garbage, but taken and read
PY

echo "== resolver slots: a stalled debuginfod, random build IDs"
python3 - "$T/hole.port" <<'PY' &
import os, socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(512)
open(sys.argv[1] + ".tmp", "w").write(str(s.getsockname()[1])); os.rename(sys.argv[1] + ".tmp", sys.argv[1])
held = []
end = time.time() + 120
while time.time() < end:
    s.settimeout(1)
    try:
        c, _ = s.accept()
        held.append(c)  # never answers
    except socket.timeout:
        pass
PY
PIDS+=($!)
for _ in $(seq 100); do [ -s "$T/hole.port" ] && break; sleep 0.05; done
mkdir -p "$T/empty"
start_fleetsymd res --data-dir "$T/res" --debug-dir "$T/empty" --threads 8 \
	--debuginfod-urls "http://127.0.0.1:$(cat "$T/hole.port")" --request-timeout 300ms \
	--fetch-timeout 60s
python3 - "${URL##*:}" <<'PY' && ok "random build IDs: pending, never 500; another client still gets a slot" || fail "resolver slots"
import concurrent.futures, json, os, subprocess, sys, time
port = int(sys.argv[1])
def sym(bid, iface):
    out = subprocess.run(["curl", "-s", "-m", "20", "--interface", iface, "-w", "\n%{http_code}",
                          "-X", "POST", "-d",
                          json.dumps({"build_id": bid, "addresses": ["0x1000"]}),
                          "http://127.0.0.1:%d/api/v1/symbolize" % port],
                         capture_output=True, text=True).stdout
    body, _, code = out.rpartition("\n")
    return code, body
t0 = time.time()
with concurrent.futures.ThreadPoolExecutor(8) as ex:
    res = list(ex.map(lambda i: sym(os.urandom(20).hex(), "127.0.0.1"), range(120)))
codes = {}
for c, _ in res:
    codes[c] = codes.get(c, 0) + 1
busy = sum("too many build IDs" in b for _, b in res)
print("120 random build IDs from 127.0.0.1: status counts %s, %d of them told the client "
      "has too many lookups, in %.1f s" % (codes, busy, time.time() - t0))
assert set(codes) == {"200"}, codes
assert all(json.loads(b)["status"] == "pending" for _, b in res), res[:3]
assert busy >= 1, "the client's share was never reached"
t1 = time.time()
c, b = sym(os.urandom(20).hex(), "127.0.0.2")
d = json.loads(b)
print("then a new build ID from 127.0.0.2: %s %s (%s) in %.2f s"
      % (c, d["status"], d.get("reason"), time.time() - t1))
assert c == "200" and d["status"] == "pending" and "too many" not in d.get("reason", ""), (c, b)
PY
n=$(metric "$URL" fleetsymd_resolve_busy_total)
[ "$n" -ge 1 ] && ok "fleetsymd_resolve_busy_total $n" || fail "resolve busy metric: $n"

echo "== heavy queries: a bound and a deadline"
start_fleetsymd q --data-dir "$T/q" --threads 16
python3 - "$URL" "$TESTS/lib" <<'PY' || fail "loading the query store"
import gzip, sys, urllib.request
sys.path.insert(0, sys.argv[2])
import mkpprof
url = sys.argv[1]
for p in range(40):
    spec = {"mappings": [{"build_id": "cd" * 20, "filename": "/opt/q"}],
            "samples": [{"frames": [[0, 0x1000 + 16 * ((i * 7 + p * 13) % 30000)],
                                    [0, 0x90000 + 16 * (i % 5000)], [0, 0xa0000 + p]],
                         "value": 1 + i % 5} for i in range(20000)]}
    req = urllib.request.Request(url + "/api/v1/ingest?service=q&host=h%d" % (p % 4),
                                 data=gzip.compress(mkpprof.encode(spec), 1), method="POST")
    urllib.request.urlopen(req, timeout=60).read()
PY
t0=$(date +%s%N)
code=$(curl -s -o /dev/null -w '%{http_code}' "$URL/api/v1/query?query=%7Bservice%3D%22q%22%7D&from=now-1h&format=folded")
qms=$((($(date +%s%N) - t0) / 1000000))
ok "one query over 40 profiles of 20000 samples: $code in $qms ms"
stop_pid "$FSD_PID"
start_fleetsymd q2 --data-dir "$T/q" --threads 16 --max-heavy-queries 1
python3 - "$URL" <<'PY' && ok "--max-heavy-queries 1: the others get 503 + Retry-After, never 500" || fail "heavy bound"
import concurrent.futures, sys, time, urllib.error, urllib.request
url = sys.argv[1] + "/api/v1/query?query=%7Bservice%3D%22q%22%7D&from=now-1h&format=folded"
def one(i):
    try:
        with urllib.request.urlopen(url, timeout=60) as r:
            r.read()
            return (r.status, None)
    except urllib.error.HTTPError as e:
        return (e.code, e.headers.get("Retry-After"))
t0 = time.time()
with concurrent.futures.ThreadPoolExecutor(8) as ex:
    res = list(ex.map(one, range(8)))
codes = {}
for c, _ in res:
    codes[c] = codes.get(c, 0) + 1
print("8 concurrent queries: status counts %s in %.2f s" % (codes, time.time() - t0))
assert set(codes) <= {200, 503} and codes.get(200, 0) >= 1, codes
assert codes.get(503, 0) >= 1, codes
assert all(ra for c, ra in res if c == 503), res
PY
stop_pid "$FSD_PID"
# a tenth of what the same query took above (the flag's floor is 100 ms)
qto=$((qms / 10 > 100 ? qms / 10 : 100))
start_fleetsymd q3 --data-dir "$T/q" --query-timeout "${qto}ms"
code=$(curl -s -D "$T/hdrs" -o "$T/body" -w '%{http_code}' "$URL/api/v1/query?query=%7Bservice%3D%22q%22%7D&from=now-1h&format=folded")
[ "$code" = 503 ] && grep -q "query-timeout" "$T/body" && grep -qi '^retry-after' "$T/hdrs" &&
	ok "a query that takes $qms ms, with --query-timeout ${qto}ms: 503 $(head -c 160 "$T/body")" ||
	fail "query deadline ($qms ms without one): $code $(head -c 300 "$T/body")"
finish
