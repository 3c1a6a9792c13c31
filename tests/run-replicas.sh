#!/usr/bin/env bash
# run alone
# Two fleetsymd replicas, A and B, on one real clickhouse-server, each --peer of the other:
#  1. debug info uploaded to B symbolizes what A answers (A fetches it from B); profiles
#     ingested into A are answered by B byte for byte (folded, top, json);
#  2. A is killed (-9) in the middle of a stream of ingests carrying idempotency keys; the
#     client resends to B whatever A did not acknowledge, with the same keys. Every
#     acknowledged profile is in ClickHouse and in B's answers; a profile stored by A whose
#     answer was lost is not stored twice once A wrote its key; at most the one ingest in flight
#     when A died can be there twice (its profile row, or all of it when A died between its
#     samples and its key: ClickHouse has no transactions);
#  then the real fleetsym-agent ships with --server A2 --server B and A2 (a new A) is killed
#     -9 once it acknowledged two: the agent moves on to B, and pushed = sent = rows (+1 in flight);
#  3. the real fleetsym-agent ships to B while ClickHouse is killed and restarted: B answers 503
#     with Retry-After, the agent holds its profiles and retries, and once ClickHouse is back
#     every profile the agent counted as sent is in ClickHouse; none dropped.
set -uo pipefail
. "$(dirname "$0")/lib/service.sh"
. "$(dirname "$0")/lib/clickhouse.sh"
need clickhouse-server curl python3 gcc eu-strip nm
export TESTS

cd "$T"
mkdir -p empty
gcc -O2 -g -o fx "$TESTS/data/src/inline_c.c" || exit 1
eu-strip -f fx.debug -o fx.stripped fx
BID=$(build_id fx)
echo "replica-token-$RANDOM" >token
AUTH=(-H "Authorization: Bearer $(cat token)")

start_clickhouse
STORE="clickhouse://127.0.0.1:$CH_HTTP/fleetsym_rep"
ok "clickhouse-server $(ch_query 'SELECT version()') on 127.0.0.1:$CH_HTTP"

read -r PA PB < <(python3 -c '
import socket
ss = [socket.socket() for _ in range(2)]
for s in ss:
    s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in ss])')
UA=http://127.0.0.1:$PA UB=http://127.0.0.1:$PB
COMMON=(--debug-dir "$T/empty" --token-file token --store "$STORE" --store-auth-file "$T/ch/auth"
	--request-timeout 5s --log-level info)
start_fleetsymd a --data-dir "$T/a" --listen "127.0.0.1:$PA" "${COMMON[@]}" --peer "$UB"
PID_A=$FSD_PID
start_fleetsymd b --data-dir "$T/b" --listen "127.0.0.1:$PB" "${COMMON[@]}" --peer "$UA"
PID_B=$FSD_PID

code=$(http_code PUT "$UB/api/v1/debuginfo/$BID" --data-binary @fx.debug "${AUTH[@]}")
[ "$code" = 201 ] && ok "fx.debug uploaded to B" || fail "upload to B: $code $(head -c 200 body)"

echo "== 1. one store, two replicas"
# the profiles: fx's functions at their entries (file offsets = addresses in this small PIE)
nm --defined-only fx | awk '$2 ~ /^[tT]$/ && $3 !~ /^_/ {print $1, $3}' >funcs
python3 - "$UA" "$(cat token)" "$BID" 0 60 >phase1.out <<'PY' || fail "phase 1: $(tail -3 phase1.out)"
import gzip, os, sys, time, urllib.request
sys.path.insert(0, os.environ["TESTS"] + "/lib")
import mkpprof
url, token, bid, first, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
funcs = [int(l.split()[0], 16) for l in open("funcs")]
now = int(time.time() * 1e9)
for i in range(first, first + n):
    f = [funcs[(i + k) % len(funcs)] for k in range(3)]
    prof = {"type": ["cpu", "nanoseconds"], "period": 10000000, "time_ns": now - (300 - i % 300) * 10**9,
            "duration_ns": 10**10, "mappings": [{"build_id": bid, "filename": "/opt/fx"}],
            "samples": [{"frames": [[0, a] for a in f], "value": i + 1}]}
    req = urllib.request.Request(url + "/api/v1/ingest?service=rep&shard=%d" % (i % 4),
                                 data=gzip.compress(mkpprof.encode(prof)), method="POST",
                                 headers={"Authorization": "Bearer " + token,
                                          "Idempotency-Key": "rep-%d" % i})
    urllib.request.urlopen(req, timeout=30).read()
print("sent", n)
PY
t0=$(($(date +%s) - 3600)) t1=$(($(date +%s) + 3600)) # one window for both replicas
for fmt in folded top json; do
	q="/api/v1/query?query=%7Bservice%3D%22rep%22%7D&from=$t0&to=$t1&format=$fmt"
	curl -s -o "a.$fmt" "$UA$q"
	curl -s -o "b.$fmt" "$UB$q"
	[ -s "a.$fmt" ] && cmp -s "a.$fmt" "b.$fmt" && ok "$fmt: A and B answer byte for byte ($(wc -c <"a.$fmt") bytes)" ||
		fail "$fmt differs between A and B: $(diff <(head -c 600 "a.$fmt") <(head -c 600 "b.$fmt") | head -5)"
done
named=$(awk '$2 != "main" {print $2}' funcs | while read -r f; do grep -c ";$f\b\|^$f\b" a.folded; done |
	awk '{s += $1} END {print s + 0}')
[ "$named" -gt 0 ] && ! grep -q "$BID" a.folded &&
	ok "A names fx's functions from the debug info uploaded to B ($named stack lines)" ||
	fail "A's answer is not symbolized: $(head -3 a.folded)"
URL=$UA expect "A's debug info for fx" 200 GET "/api/v1/debuginfo/$BID"
check "A stored it from its peer B" "d['source'] == 'peer' and d['present']"

echo "== 2. A killed mid-stream; the rest resent to B with the same keys"
python3 - "$UA" "$UB" "$(cat token)" "$BID" "$PID_A" >phase2.out 2>&1 <<'PY' || fail "phase 2: $(tail -5 phase2.out)"
import gzip, os, signal, sys, threading, time, urllib.request
sys.path.insert(0, os.environ["TESTS"] + "/lib")
import mkpprof
ua, ub, token, bid, pid_a = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
funcs = [int(l.split()[0], 16) for l in open("funcs")]
now = int(time.time() * 1e9)
def body(i):
    f = [funcs[(i + k) % len(funcs)] for k in range(3)]
    return gzip.compress(mkpprof.encode(
        {"type": ["cpu", "nanoseconds"], "period": 10000000, "time_ns": now - (300 - i % 300) * 10**9,
         "duration_ns": 10**10, "mappings": [{"build_id": bid, "filename": "/opt/fx"}],
         "samples": [{"frames": [[0, a] for a in f], "value": i + 1}]}))
def send(url, i):
    req = urllib.request.Request(url + "/api/v1/ingest?service=rep&shard=%d" % (i % 4), data=body(i),
                                 method="POST", headers={"Authorization": "Bearer " + token,
                                                         "Idempotency-Key": "rep-%d" % i})
    return urllib.request.urlopen(req, timeout=30).read()
acked, lost = [], []
killer = None
for i in range(60, 260):
    if len(acked) == 40 and killer is None:  # kill A while the next requests are on their way
        killer = threading.Timer(0.005, os.kill, (pid_a, signal.SIGKILL))
        killer.start()
    try:
        send(ua, i)
        acked.append(i)
    except Exception as e:
        lost.append(i)
dup = 0
for i in lost:  # the client's retry, to the other replica
    if b'"duplicate":true' in send(ub, i):
        dup += 1
# a profile A acknowledged, sent again to B with its key: B knows the key (ClickHouse has it)
again = sum(b'"duplicate":true' in send(ub, i) for i in acked[:10])
print("acked_by_A %d not_acked %d resent_to_B %d of_which_B_knew %d; 10 acked ones resent to B: "
      "%d known" % (len(acked), len(lost), len(lost), dup, again))
if again != 10:
    sys.exit("B stored again profiles A had acknowledged: their keys were not shared")
open("phase2.acked", "w").write(" ".join(map(str, acked)))
PY
cat phase2.out
wait "$PID_A" 2>/dev/null
kill -0 "$PID_A" 2>/dev/null && fail "A is still running"
# 260 distinct profiles, values 1..260: their sum, and at most the one in flight counted twice
want=$((260 * 261 / 2))
rows=$(ch_query "SELECT count() FROM fleetsym_rep.profiles")
sum=$(ch_query "SELECT sum(value) FROM fleetsym_rep.samples")
echo "ClickHouse: $rows profile rows, sample values summing to $sum (want $want)"
python3 - "$rows" "$sum" "$want" <<'PY' && ok "nothing acknowledged lost, nothing stored twice but at most the ingest in flight at the kill" || fail "rows $rows, sum $sum, want $want"
import sys
rows, total, want = map(int, sys.argv[1:])
extra = total - want
# the ingest in flight at the kill may have left its profile row (its samples are sent after it)
# or all of it (its key is written last) before the resend stored it again: one row, one value
sys.exit(0 if 260 <= rows <= 261 and 0 <= extra <= 260 and (extra == 0 or rows == 261) else 1)
PY
curl -s -o b2.json "$UB/api/v1/query?query=%7Bservice%3D%22rep%22%7D&from=now-1h&to=now%2B1h&format=json"
python3 -c 'import json,sys; d=json.load(open("b2.json")); sys.exit(0 if d["total"] == int(sys.argv[1]) else 1)' "$sum" &&
	ok "B answers the same total as ClickHouse holds" || fail "B's total: $(head -c 200 b2.json)"

echo "== 3. the agent ships to B while ClickHouse is away"
AGENT="$BUILD/bin/fleetsym-agent"
if [ "$(id -u)" != 0 ] || [ ! -r /sys/kernel/btf/vmlinux ]; then
	skip "the agent part needs root and BTF (CI has both)"
fi
cat >burn.c <<'EOF'
int main(void) { volatile unsigned long x = 0; for (;;) x++; }
EOF
gcc -O1 -o burn burn.c
./burn &
BURN=$!
PIDS+=("$BURN")
b200=$(grep -c 'path=/api/v1/ingest status=200' b.log)

# the agent ships to A (restarted) with B as its second --server; A is killed -9 under it
start_fleetsymd a2 --data-dir "$T/a2" "${COMMON[@]}" --peer "$UB"
PID_A2=$FSD_PID UA2=$URL
before=$(ch_query "SELECT count() FROM fleetsym_rep.profiles")
timeout 60 "$AGENT" --server "$UA2" --server "$UB" --token-file token --label service=agentfail \
	--interval 1s --frequency 49 --pid "$BURN" --duration 10 -v >agentfail.out 2>agentfail.err &
AG=$!
PIDS+=("$AG")
for _ in $(seq 300); do # A has acknowledged two (bounded: 30 s), then it dies
	[ "$(grep -c 'path=/api/v1/ingest status=200' a2.log)" -ge 2 ] && break
	sleep 0.1
done
kill -9 "$PID_A2"
wait "$PID_A2" 2>/dev/null
wait "$AG"
rc=$?
stats=$(grep -o 'pushed=[0-9]* sent=[0-9]* attempts_failed=[0-9]*.*dropped_exit=[0-9]*' agentfail.err | tail -1)
echo "agent, A killed under it: $stats"
sent=$(sed -n 's/.* sent=\([0-9]*\).*/\1/p' <<<"$stats")
pushed=$(sed -n 's/.*pushed=\([0-9]*\).*/\1/p' <<<"$stats")
rows=$(($(ch_query "SELECT count() FROM fleetsym_rep.profiles") - before))
ina=$(grep -c 'path=/api/v1/ingest status=200' a2.log)
inb=$(($(grep -c 'path=/api/v1/ingest status=200' b.log) - ${b200:-0}))
echo "A acknowledged $ina, then B $inb; ClickHouse has $rows new profile rows"
[ "$rc" = 0 ] && [ -n "$sent" ] && [ "$sent" = "$pushed" ] && [ "$ina" -gt 0 ] && [ "$inb" -gt 0 ] &&
	[ "$rows" -ge "$sent" ] && [ "$rows" -le $((sent + 1)) ] &&
	ok "A killed under the agent: it moved on to B, pushed $pushed, sent $sent, in ClickHouse $rows" ||
	fail "agent with A killed: rc $rc, pushed ${pushed:-?}, sent ${sent:-?}, A $ina, B $inb, rows $rows: $(tail -3 agentfail.err)"

python3 -c '
import gzip, os, sys
sys.path.insert(0, os.environ["TESTS"] + "/lib")
import mkpprof
sys.stdout.buffer.write(gzip.compress(mkpprof.encode({"type": ["cpu", "nanoseconds"], "period": 10000000,
    "samples": [{"frames": [[0, 0x1000]], "value": 1}], "mappings": [{"build_id": sys.argv[1]}]})))' "$BID" >one.pb.gz
before=$(ch_query "SELECT count() FROM fleetsym_rep.profiles")
timeout 60 "$AGENT" --server "$UB" --token-file token --label service=agentrep --interval 1s \
	--frequency 49 --pid "$BURN" --duration 16 -v >agent.out 2>agent.err &
AG=$!
PIDS+=("$AG")
sleep 3
kill -9 "$CH_PID" # ClickHouse gone mid-run
wait "$CH_PID" 2>/dev/null
t_stop=$(date +%s)
# a client's ingest and query meanwhile: 503, the ingest with Retry-After, the query with a message
code=$(http_code POST "$UB/api/v1/ingest?service=rep503" --data-binary @one.pb.gz -D down.hdr "${AUTH[@]}")
[ "$code" = 503 ] && grep -qi '^Retry-After: [0-9]' down.hdr &&
	ok "ingest to B while ClickHouse is down: 503, $(grep -i '^Retry-After' down.hdr | tr -d '\r')" ||
	fail "ingest while ClickHouse is down: $code $(tr -d '\r' <down.hdr | head -3)"
code=$(http_code GET "$UB/api/v1/query?query=%7Bservice%3D%22rep%22%7D&from=now-1h&to=now&format=folded")
[ "$code" = 503 ] && [ -s body ] && ok "query to B while ClickHouse is down: 503: $(head -c 120 body)" ||
	fail "query while ClickHouse is down: $code $(head -c 200 body)"
sleep 3
start_clickhouse "$CH_HTTP" "$CH_TCP"
echo "ClickHouse away for $(($(date +%s) - t_stop)) s"
wait "$AG"
rc=$?
kill "$BURN" 2>/dev/null
stats=$(grep -o 'pushed=[0-9]* sent=[0-9]* attempts_failed=[0-9]*.*dropped_exit=[0-9]*' agent.err | tail -1)
echo "agent: $stats"
sent=$(sed -n 's/.* sent=\([0-9]*\).*/\1/p' <<<"$stats")
retried=$(sed -n 's/.*attempts_failed=\([0-9]*\).*/\1/p' <<<"$stats")
pushed=$(sed -n 's/.*pushed=\([0-9]*\).*/\1/p' <<<"$stats")
n503=$(grep -c 'path=/api/v1/ingest status=503' b.log)
agentrows=$(ch_query "SELECT count() FROM fleetsym_rep.profiles") # one sample type a profile
agentrows=$((agentrows - before))
[ "$rc" = 0 ] && ok "agent exited 0" || fail "agent rc=$rc: $(tail -3 agent.err)"
[ "${retried:-0}" -gt 0 ] && [ "$n503" -gt 0 ] &&
	ok "ClickHouse away: B answered 503 $n503 times, the agent retried $retried attempts" ||
	fail "no 503s seen while ClickHouse was stopped (503s $n503, failed attempts ${retried:-?})"
[ -n "$sent" ] && [ "$sent" = "$pushed" ] && [ "$agentrows" -ge "$sent" ] && [ "$agentrows" -le $((sent + 1)) ] &&
	ok "every profile the agent made was delivered: pushed $pushed, sent $sent, in ClickHouse $agentrows" ||
	fail "agent pushed ${pushed:-?}, sent ${sent:-?}; ClickHouse has $agentrows of them"
stop_pid "$PID_B" || fail "B did not exit cleanly"
finish
