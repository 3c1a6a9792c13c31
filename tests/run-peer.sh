#!/usr/bin/env bash
# fleetsymd replicas that --peer each other (A lists itself too, and a fake peer that records
# what it is sent): debug info uploaded to B symbolizes on A with B's answers, and A then
# serves the same bytes; an unknown build ID on A is answered within --request-timeout, each
# peer is asked once, no replica asks on (no loop), and a second ask is negatively cached;
# requests to peers carry the shared token and the peer mark; a stopped peer (SIGSTOP) does not
# hold A's answer past --request-timeout, is dropped after the stall bound and then left out.
set -uo pipefail
. "$(dirname "$0")/lib/service.sh"
need eu-strip

cd "$T"
mkdir -p empty
for v in 0 1; do
	gcc -O2 -g -DVARIANT=$v -o fx$v "$TESTS/data/src/inline_c.c"
	eu-strip -f fx$v.debug -o fx$v.stripped fx$v
	declare "BID$v=$(build_id fx$v)"
done
UNKNOWN=0123456789abcdef0123456789abcdef01234567
UNKNOWN2=89abcdef0123456789abcdef0123456789abcdef
echo "replica-token" >token
AUTH=(-H "Authorization: Bearer replica-token")

# Four free ports: A, B and C must know each other's before they start; D is the fake peer.
read -r PA PB PC PD < <(python3 -c '
import socket
ss = [socket.socket() for _ in range(4)]
for s in ss:
    s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in ss])')
UA=http://127.0.0.1:$PA UB=http://127.0.0.1:$PB UC=http://127.0.0.1:$PC UD=http://127.0.0.1:$PD

# D: answers 404 to everything and writes each request's path and headers to d.log
python3 - "$PD" "$T/d.log" <<'PY' &
import http.server, sys
port, log = int(sys.argv[1]), sys.argv[2]
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        with open(log, "a") as f:
            f.write("GET %s %s|%s\n" % (self.path, self.headers.get("Authorization"),
                                        self.headers.get("X-Fleetsym-Peer")))
        self.send_response(404)
        self.send_header("Content-Length", "0")
        self.end_headers()
    def log_message(self, *a):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", port), H).serve_forever()
PY
PIDS+=($!)
for _ in $(seq 100); do
	[ "$(curl -s -o /dev/null -w '%{http_code}' "$UD/ready")" = 404 ] && break
	sleep 0.1
done
[ "$(curl -s -o /dev/null -w '%{http_code}' "$UD/ready")" = 404 ] || { echo "FAILED: fake peer D"; exit 1; }

COMMON=(--debug-dir "$T/empty" --token-file token --request-timeout 3s --threads 4)
start_fleetsymd a --data-dir "$T/a" --listen "127.0.0.1:$PA" "${COMMON[@]}" \
	--peer "$UB" --peer "$UC" --peer "$UA" --peer "$UD"
PID_A=$FSD_PID
start_fleetsymd b --data-dir "$T/b" --listen "127.0.0.1:$PB" "${COMMON[@]}" --peer "$UA" --peer "$UC"
PID_B=$FSD_PID
start_fleetsymd c --data-dir "$T/c" --listen "127.0.0.1:$PC" "${COMMON[@]}" --peer "$UA" --peer "$UB"
PID_C=$FSD_PID
[ "$URL" = "$UC" ] || fail "C listens on $URL, not $UC"

served() { # served URL RESULT : peer requests URL answered with RESULT (found, missing)
	curl -s "$1/metrics" | awk -v k="fleetsymd_peer_served_total{result=\"$2\"}" \
		'$1 == k { v = $2 } END { print v + 0 }'
}
# symbolize_until URL BID STATUS: ask (every 0.2 s, at most 30 s) until the answer's status is
# STATUS; the answer in $T/body
symbolize_until() {
	for _ in $(seq 150); do
		curl -s -m 30 -o "$T/body" -X POST "$1/api/v1/symbolize" \
			-d "{\"build_id\":\"$2\",\"addresses\":$ADDRS}"
		grep -q "\"status\":\"$3\"" "$T/body" && return 0
		sleep 0.2
	done
	return 1
}
# every function symbol of fx0, and one byte into it
ADDRS=$(readelf -sW fx0 | python3 -c '
import json, sys
a = []
for l in sys.stdin:
    f = l.split()
    if len(f) >= 8 and f[3] == "FUNC" and f[6] != "UND" and int(f[2], 0) > 1:
        a += [hex(int(f[1], 16)), hex(int(f[1], 16) + 1)]
print(json.dumps(a))')

echo "== uploaded to B, symbolized on A"
code=$(http_code PUT "$UB/api/v1/debuginfo/$BID0" --data-binary @fx0.debug "${AUTH[@]}")
[ "$code" = 201 ] || fail "upload to B: $code $(cat "$T/body")"
symbolize_until "$UB" "$BID0" found || fail "B does not symbolize its own upload: $(cat "$T/body")"
cp "$T/body" b.json
symbolize_until "$UA" "$BID0" found || fail "A never found B's upload: $(cat "$T/body")"
cp "$T/body" a.json
python3 - a.json b.json <<'PY' || fail "A's answer differs from B's"
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
def frames(d):
    return [[(f.get("function"), f.get("file"), f.get("line"), f.get("column"), f.get("inlined"))
             for f in r["frames"]] for r in d["results"]]
fa, fb = frames(a), frames(b)
assert fa == fb, (fa, fb)
# crt code (_start and friends) has no line table: the rest must be named with file:line
named = [r[0] for r in fa if r and r[0][0] and r[0][1] and r[0][2]]
assert len(fa) >= 10 and len(named) * 4 >= len(fa) * 3, (len(fa), len(named))
print("ok   A answers %d addresses as B does, %d with function and file:line (e.g. %s %s:%s)" %
      (len(fa), len(named), *named[-1][:3]))
PY
code=$(http_code GET "$UA/api/v1/debuginfo/$BID0")
grep -q '"source":"peer"' "$T/body" && [ "$code" = 200 ] || fail "A's entry: $code $(cat "$T/body")"
curl -s -o a.debug "$UA/buildid/$BID0/debuginfo"
cmp -s a.debug fx0.debug || fail "A serves other bytes than were uploaded to B"
hits=$(metric "$UA" fleetsymd_peer_hits_total)
fetches=$(metric "$UA" fleetsymd_peer_fetches_total)
[ "$hits" = 1 ] && [ "$fetches" = 1 ] || fail "A: peer hits $hits, fetches $fetches (want 1, 1)"
ok "A took fx0 from B once (hits $hits, rounds $fetches), stored as source peer, serves B's bytes"

echo "== an unknown build ID on A: each peer asked once, nobody asks on"
for u in "$UA" "$UB" "$UC"; do
	declare "M_${u##*:}=$(served "$u" missing)"
done
t0=$(date +%s.%N)
symbolize_until "$UA" "$UNKNOWN" missing ||
	fail "unknown build ID not missing on A: $(cat "$T/body")"
t1=$(date +%s.%N)
grep -q '"reason":"not uploaded here or to any peer replica' "$T/body" ||
	fail "reason: $(cat "$T/body")"
secs=$(python3 -c "print(round($t1 - $t0, 2))")
python3 -c "import sys; sys.exit(0 if $secs < 10 else 1)" || fail "unknown took ${secs}s"
# ask again: the negative cache answers, no peer is asked
symbolize_until "$UA" "$UNKNOWN" missing || fail "second ask: $(cat "$T/body")"
for u in "$UA" "$UB" "$UC"; do
	before=M_${u##*:}
	n=$(($(served "$u" missing) - ${!before}))
	[ "$n" = 1 ] || fail "$u was asked $n times for the unknown build ID (want 1)"
done
[ "$(grep -c "/buildid/$UNKNOWN/debuginfo" d.log)" = 1 ] || fail "D: $(cat d.log)"
fb=$(metric "$UB" fleetsymd_peer_fetches_total)
fc=$(metric "$UC" fleetsymd_peer_fetches_total)
[ "$fb" = 0 ] && [ "$fc" = 0 ] || fail "B or C asked on for A's request: rounds $fb, $fc"
ok "unknown build ID missing on A in ${secs}s; A (itself), B, C, D each asked once; B and C asked nobody"

echo "== a request marked as from a peer never fetches"
code=$(http_code GET "$UB/buildid/$UNKNOWN2/debuginfo" -H "X-Fleetsym-Peer: 1")
[ "$code" = 404 ] || fail "peer-marked unknown on B: $code"
[ "$(metric "$UB" fleetsymd_peer_fetches_total)" = 0 ] || fail "B started a peer round"
ok "peer-marked request for an unknown build ID: 404 from B's store, no round"

echo "== what the peers are sent"
grep -q "^GET /buildid/$UNKNOWN/debuginfo Bearer replica-token|1$" d.log ||
	fail "D saw: $(cat d.log)"
ok "D saw: $(grep "$UNKNOWN" d.log)"

echo "== a stopped peer"
code=$(http_code PUT "$UC/api/v1/debuginfo/$BID1" --data-binary @fx1.debug "${AUTH[@]}")
[ "$code" = 201 ] || fail "upload to C: $code"
kill -STOP "$PID_C"
t=$(curl -s -m 30 -o "$T/body" -w '%{time_total}' -X POST "$UA/api/v1/symbolize" \
	-d "{\"build_id\":\"$BID1\",\"addresses\":[\"0x1200\"]}")
grep -q '"status":"pending"' "$T/body" || fail "fx1 with C stopped: $(cat "$T/body")"
# pending (checked above) says A did not wait for C's outcome; that it came at --request-timeout
# (3 s) and not much later, with room for a loaded host
python3 -c "import sys; sys.exit(0 if 2.9 < $t < 10 else 1)" || fail "pending after ${t}s"
# the round ends at the stall bound: C counted as failed, fx1 missing (C could not be asked)
for _ in $(seq 100); do
	[ "$(metric "$UA" fleetsymd_peer_errors_total)" -ge 1 ] && break
	sleep 0.2
done
errs=$(metric "$UA" fleetsymd_peer_errors_total)
[ "$errs" = 1 ] || fail "A's peer errors: $errs (want 1)"
symbolize_until "$UA" "$BID1" missing || fail "fx1 after the round: $(cat "$T/body")"
grep -q 'not every peer replica could be asked' "$T/body" || fail "reason: $(cat "$T/body")"
# next build ID: C is left out, so the answer does not wait for it
skipped0=$(metric "$UA" fleetsymd_peer_skipped_total)
t0=$(date +%s.%N)
symbolize_until "$UA" "$UNKNOWN2" missing || fail "unknown with C down: $(cat "$T/body")"
t2=$(python3 -c "print(round($(date +%s.%N) - $t0, 2))")
skipped=$(($(metric "$UA" fleetsymd_peer_skipped_total) - skipped0))
[ "$skipped" = 1 ] || fail "C not left out: skipped $skipped"
kill -CONT "$PID_C"
ok "C stopped: A pending in ${t}s (--request-timeout 3s), C dropped (errors $errs), then left out: next unknown missing in ${t2}s"

for p in "$PID_A" "$PID_B" "$PID_C"; do
	stop_pid "$p" || fail "fleetsymd $p did not exit 0 on SIGTERM"
done
finish
