#!/usr/bin/env bash
# run alone
# fleetsym-agent's shipping path against a stand-in receiver on 127.0.0.1 (fleetsymd's ingest
# endpoint comes later): gzip'd pprof POSTed to /api/v1/ingest with the series labels in the
# query and the bearer token; the receiver stopped mid-run (the agent keeps sampling, queues,
# and ships the backlog when it returns, losing nothing); --queue-size 1 with no server
# (drops counted, oldest first, the agent runs to the end); a 400 answer (dropped, counted);
# two --server URLs with the first receiver killed mid-run (the agent moves on to the second,
# nothing it counted as sent is lost).
set -u
. "$(dirname "$0")/lib/agent_common.sh"
cd "$T"
build_fixture
RECV="$TESTS/lib/agent_receiver.py"
fail=0
free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
# wait_for N DIR SECS: until DIR holds N bodies, at most SECS seconds
wait_for() {
	local i
	for ((i = 0; i < $3 * 10; i++)); do
		[ "$(ls "$2"/*.body 2>/dev/null | wc -l)" -ge "$1" ] && return 0
		sleep 0.1
	done
	return 1
}
receiver() { # PORT DIR [STATUS [FAIL_FIRST]]
	bg python3 "$RECV" --port "$1" --dir "$2" --status "${3:-200}" --fail-first "${4:-0}"
	for ((i = 0; i < 50; i++)); do [ -e "$2/ready" ] && return 0; sleep 0.1; done
	echo "FAIL: receiver did not start"
	exit 1
}

bg ./agent_work burn 50
work=$BG
echo "s3cret-token" >token
port=$(free_port)

# 1. up, down for ~4 s, up again
receiver "$port" up1
recv1=$BG
bg timeout 40 "$AGENT" --server "http://127.0.0.1:$port/" --token-file token \
	--label service=fixture --label env=test --interval 1s --frequency 99 --pid "$work" \
	--duration 13 -v 2>agent1.err
agent=$BG
wait_for 2 up1 10 || { echo "FAIL: no profile within 10 s"; fail=1; }
kill "$recv1"
wait "$recv1" 2>/dev/null
t_down=$(date +%s%N)
echo "receiver stopped after $(ls up1/*.body | wc -l) profiles"
sleep 4
kill -0 "$agent" 2>/dev/null && echo "ok   agent still running with the receiver away" ||
	{ echo "FAIL: agent gone while the receiver was away"; fail=1; }
t_up=$(date +%s%N)
receiver "$port" up2
wait "$agent" 2>/dev/null
rc=$?
[ "$rc" = 0 ] || { echo "FAIL: agent exited with $rc"; fail=1; }
python3 "$CHECK" ship up1 --expect-label service=fixture --expect-label env=test \
	--expect-label host="$(hostname)" --token s3cret-token --min 2 || fail=1
python3 "$CHECK" ship up2 --expect-label service=fixture --expect-label env=test \
	--token s3cret-token --min 3 || fail=1
python3 - up1 up2 "$t_down" "$t_up" <<'PY' || fail=1
import json, sys
a, b = (json.load(open(d + "/summary.json")) for d in sys.argv[1:3])
t_down, t_up = int(sys.argv[3]), int(sys.argv[4])
during = [t for t, d, r in b["times"] if t + d <= t_up and t + d > t_down]
late = [t for t, d, r in b["times"] if r > t_up]
print("after the receiver came back: %d profiles, %d of them sampled while it was away"
      % (len(b["times"]), len(during)))
ok = len(during) >= 2
print("%s profiles from the outage were shipped when it returned" % ("ok  " if ok else "FAIL"))
open("received_samples", "w").write(str(a["samples"] + b["samples"]))
sys.exit(0 if ok else 1)
PY
cat agent1.err
pushed=$(stat_field agent1.err pushed) sent=$(stat_field agent1.err sent)
samples=$(stat_field agent1.err profile_samples)
echo "agent: pushed=$pushed sent=$sent attempts_failed=$(stat_field agent1.err attempts_failed)" \
	"dropped_full=$(stat_field agent1.err dropped_full) samples=$samples," \
	"received samples=$(cat received_samples)"
[ "$pushed" = "$sent" ] && [ "$(stat_field agent1.err dropped_full)" = 0 ] &&
	[ "$(stat_field agent1.err dropped_exit)" = 0 ] || { echo "FAIL: profiles lost"; fail=1; }
[ "$(stat_field agent1.err attempts_failed)" -ge 1 ] || { echo "FAIL: no failed attempt counted"; fail=1; }
[ "$samples" = "$(cat received_samples)" ] && echo "ok   every sample arrived" ||
	{ echo "FAIL: $samples samples taken, $(cat received_samples) received"; fail=1; }

# 2. no server at all, --queue-size 1: runs to the end, drops the oldest, counts them
port2=$(free_port)
start=$(date +%s%N)
timeout 30 "$AGENT" --server "http://127.0.0.1:$port2" --queue-size 1 --interval 0.5s \
	--frequency 99 --pid "$work" --duration 4 2>agent2.err
rc=$?
secs=$(( ($(date +%s%N) - start) / 1000000 ))
cat agent2.err
pushed=$(stat_field agent2.err pushed) dropped=$(stat_field agent2.err dropped_full)
echo "queue-size 1, no server: rc=$rc after ${secs} ms, pushed=$pushed dropped_full=$dropped" \
	"dropped_exit=$(stat_field agent2.err dropped_exit) sent=$(stat_field agent2.err sent)"
[ "$rc" = 0 ] && [ "$secs" -ge 4000 ] || { echo "FAIL: the agent did not run to the end"; fail=1; }
[ "$pushed" -ge 5 ] && [ "$dropped" -ge $((pushed - 2)) ] && [ "$(stat_field agent2.err sent)" = 0 ] &&
	echo "ok   drops counted" || { echo "FAIL: drops not counted as expected"; fail=1; }
[ "$(stat_field agent2.err profile_samples)" -gt 0 ] || { echo "FAIL: stopped sampling"; fail=1; }

# 3. the server refuses (400): dropped at once, counted, not retried
port3=$(free_port)
receiver "$port3" refuse 400
timeout 30 "$AGENT" --server "http://127.0.0.1:$port3" --interval 0.5s --frequency 99 \
	--pid "$work" --duration 2 2>agent3.err
rc=$?
rej=$(stat_field agent3.err rejected) pushed=$(stat_field agent3.err pushed)
echo "HTTP 400: rc=$rc pushed=$pushed rejected=$rej attempts_failed=$(stat_field agent3.err attempts_failed)" \
	"received=$(ls refuse/*.body | wc -l)"
[ "$rc" = 0 ] && [ "$rej" = "$pushed" ] && [ "$(ls refuse/*.body | wc -l)" = "$pushed" ] &&
	echo "ok   refused profiles dropped without retries" || { echo "FAIL: 400 handling"; fail=1; }

# 4. failover: --server A --server B, A killed mid-run; B gets the rest at once (no backoff
# wait: a failed send moves on to the next URL), nothing acknowledged is lost
portA=$(free_port) portB=$(free_port)
receiver "$portA" failA
recvA=$BG
receiver "$portB" failB
bg timeout 40 "$AGENT" --server "http://127.0.0.1:$portA" --server "http://127.0.0.1:$portB" \
	--interval 0.5s --frequency 99 --pid "$work" --duration 6 2>agent4.err
agent=$BG
wait_for 2 failA 10 || { echo "FAIL: A got no profile within 10 s"; fail=1; }
kill "$recvA"
wait "$recvA" 2>/dev/null
wait "$agent" 2>/dev/null
rc=$?
nA=$(ls failA/*.body | wc -l) nB=$(ls failB/*.body 2>/dev/null | wc -l)
sent=$(stat_field agent4.err sent) pushed=$(stat_field agent4.err pushed)
echo "failover: rc=$rc pushed=$pushed sent=$sent received A=$nA B=$nB" \
	"attempts_failed=$(stat_field agent4.err attempts_failed)"
[ "$rc" = 0 ] && [ "$nB" -ge 2 ] && [ "$sent" = "$pushed" ] && [ $((nA + nB)) -ge "$sent" ] &&
	echo "ok   moved on to the second server, nothing lost" ||
	{ echo "FAIL: failover"; fail=1; }
# 5. idempotency keys: the first 3 answers are lost (stored, then 503): the retries carry the
# same key as their first attempt, and every profile has its own key, so that fleetsymd stores
# each once however often it was sent
port5=$(free_port)
receiver "$port5" idem 200 3
timeout 30 "$AGENT" --server "http://127.0.0.1:$port5" --interval 0.5s --frequency 99 \
	--pid "$work" --duration 3 2>agent5.err
python3 - idem <<'PY' && echo "ok   retries keep their profile's key, profiles have their own" ||
import glob, hashlib, json, sys
keys = {}  # body digest -> keys it was sent with
for j in sorted(glob.glob(sys.argv[1] + "/*.json")):
    body = open(j[:-5] + ".body", "rb").read()
    keys.setdefault(hashlib.sha256(body).hexdigest(), []).append(json.load(open(j))["idempotency_key"])
retried = [k for k in keys.values() if len(k) > 1]
print("%d profiles, %d sent more than once; keys %s" % (len(keys), len(retried), retried[:2]))
assert retried and all(len(set(k)) == 1 and k[0] and len(k[0]) == 32 for k in keys.values())
assert len({k[0] for k in keys.values()}) == len(keys)
PY
	{ echo "FAIL: idempotency keys"; fail=1; }
exit $fail
