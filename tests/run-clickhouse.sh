#!/usr/bin/env bash
# The ClickHouse profile store against a real clickhouse-server (Debian 12's 18.16; config and
# data in the temp dir, 127.0.0.1 only, user and password from --store-auth-file): one
# fleetsymd on sqlite and one on ClickHouse take the same ingests, and folded, top, json,
# diff, missing, labels, series, types and timeline answers are compared byte for byte
# (tests/lib/store_compare.py). Then ClickHouse is stopped: ingest answers 503 with
# Retry-After, a query 503 with a message; started again, the held profile is taken and
# counted. Then it hangs (SIGSTOP): the ingest in flight gets 503 at its deadline, later ones
# 503 at once, /metrics answers; resumed, ingest works and nothing was stored twice.
set -uo pipefail
. "$(dirname "$0")/lib/service.sh"
. "$(dirname "$0")/lib/clickhouse.sh"
need clickhouse-server curl python3

cd "$T"
mkdir -p empty
start_clickhouse
ok "clickhouse-server $(curl -s -u fleetsym:s3cret "http://127.0.0.1:$CH_HTTP/?query=SELECT%20version()") on 127.0.0.1:$CH_HTTP"
STORE="clickhouse://127.0.0.1:$CH_HTTP/fleetsym_test"

start_fleetsymd sq --data-dir "$T/sq" --debug-dir "$T/empty"
URL_SQ=$URL
start_fleetsymd ch --data-dir "$T/chd" --debug-dir "$T/empty" --store "$STORE" \
	--store-auth-file "$T/ch/auth"
URL_CH=$URL
FSD_CH=$FSD_PID
has s3cret ps -o args= -p "$FSD_CH" && fail "the password is on the command line"

python3 "$TESTS/lib/store_compare.py" --a "$URL_SQ" --b "$URL_CH" || fail "answers differ"
n=$(curl -s -u fleetsym:s3cret "http://127.0.0.1:$CH_HTTP/" \
	--data-binary "SELECT count() FROM fleetsym_test.profiles")
[ "$n" = 96 ] && ok "96 profile rows in ClickHouse" || fail "profile rows in ClickHouse: '$n', want 96"

# a wrong password: fleetsymd refuses to start, and says why
echo 'fleetsym:wrong' >ch/badauth
"$FSD" --listen 127.0.0.1:0 --data-dir "$T/bad" --store "$STORE" --store-auth-file "$T/ch/badauth" \
	>bad.log 2>&1 && fail "fleetsymd started with a wrong ClickHouse password"
grep -q "profile store clickhouse://" bad.log && ok "wrong password: $(tail -1 bad.log)" ||
	fail "no error for a wrong password: $(cat bad.log)"

echo "== ClickHouse stopped: 503s; started again: ingest works"
python3 - "$TESTS" "$T/held.pb.gz" <<'PY'
import gzip, sys, time
sys.path.insert(0, sys.argv[1] + "/lib")
import mkpprof
t = time.time_ns() - 60 * 10**9
p = {"type": ["cpu", "nanoseconds"], "period": 10, "time_ns": t, "duration_ns": 10**10,
     "mappings": [{"build_id": "ef" * 20, "filename": "/opt/held"}],
     "samples": [{"frames": [[0, 0x1234]], "value": 70}]}
open(sys.argv[2], "wb").write(gzip.compress(mkpprof.encode(p)))
PY
# ingest_retried SERVICE: held.pb.gz under service=SERVICE, retried as a producer would until
# 200 (at most 10 s); the last status in $code, its body in ing.body
ingest_retried() {
	code=000
	for _ in $(seq 50); do
		code=$(curl -s -o ing.body -w '%{http_code}' --data-binary @held.pb.gz \
			"$URL_CH/api/v1/ingest?service=$1")
		[ "$code" = 200 ] && break
		sleep 0.2
	done
}
kill -TERM "$CH_PID"
for _ in $(seq 200); do kill -0 "$CH_PID" 2>/dev/null || break; sleep 0.1; done
kill -9 "$CH_PID" 2>/dev/null
wait "$CH_PID" 2>/dev/null
t0=$(date +%s%N)
code=$(curl -s -o ing.body -D ing.hdr -w '%{http_code}' --data-binary @held.pb.gz \
	"$URL_CH/api/v1/ingest?service=held")
t1=$(date +%s%N)
[ "$code" = 503 ] && grep -qi '^Retry-After:' ing.hdr &&
	ok "ingest while ClickHouse is down: 503 with $(grep -i '^Retry-After:' ing.hdr | tr -d '\r') in $(((t1 - t0) / 1000000)) ms: $(head -c 200 ing.body)" ||
	fail "ingest while ClickHouse is down: $code $(cat ing.hdr ing.body)"
code=$(curl -s -o q.body -w '%{http_code}' "$URL_CH/api/v1/query?format=folded&from=now-2h&to=now")
[ "$code" = 503 ] && grep -q 'unreachable' q.body && ok "query while ClickHouse is down: 503: $(head -c 200 q.body)" ||
	fail "query while ClickHouse is down: $code $(cat q.body)"
code=$(curl -s -o l.body -w '%{http_code}' "$URL_CH/api/v1/labels")
[ "$code" = 503 ] && ok "labels while ClickHouse is down: 503" || fail "labels: $code $(cat l.body)"
# the server still answers what needs no store
[ "$(curl -s -o /dev/null -w '%{http_code}' "$URL_CH/metrics")" = 200 ] ||
	fail "/metrics while ClickHouse is down"

start_clickhouse "$CH_HTTP" "$CH_TCP"
ok "clickhouse-server started again"
ingest_retried held
[ "$code" = 200 ] && ok "the held profile is taken once ClickHouse is back" ||
	fail "ingest after the restart: $code $(cat ing.body)"
out=$(curl -s "$URL_CH/api/v1/query?format=folded&from=now-2h&to=now&query=%7Bservice%3D%22held%22%7D")
[ "$out" = "held+0x1234 70" ] && ok "and answered: '$out'" || fail "held profile: '$out'"
n=$(curl -s -u fleetsym:s3cret "http://127.0.0.1:$CH_HTTP/" \
	--data-binary "SELECT count() FROM fleetsym_test.profiles")
[ "$n" = 97 ] && ok "97 profile rows after the outage (96 + the held one, nothing doubled)" ||
	fail "profile rows after the outage: '$n', want 97"

echo "== ClickHouse hung (SIGSTOP): one ingest waits out the deadline, the rest get 503 at once"
kill -STOP "$CH_PID"
hung_ingest() { # NAME: code and milliseconds into NAME.res
	local t0 t1 code
	t0=$(date +%s%N)
	code=$(curl -s -o "$1.body" -D "$1.hdr" -w '%{http_code}' --max-time 60 \
		--data-binary @held.pb.gz "$URL_CH/api/v1/ingest?service=hung")
	t1=$(date +%s%N)
	echo "$code $(((t1 - t0) / 1000000))" >"$1.res"
}
hung_ingest h0 &
H0=$!
# once its send has run 2 s, fleetsymd takes ClickHouse as down (its gauge in /metrics)
down=0
for _ in $(seq 200); do
	has '^fleetsymd_store_unreachable 1$' curl -s --max-time 5 "$URL_CH/metrics" && { down=1; break; }
	sleep 0.1
done
[ "$down" = 1 ] && ok "/metrics: fleetsymd_store_unreachable 1 while the first ingest's send hangs" ||
	fail "fleetsymd_store_unreachable never became 1"
pids=()
for i in 1 2 3 4 5 6; do hung_ingest "h$i" & pids+=($!); done
wait "${pids[@]}"
t0=$(date +%s%N)
mc=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 "$URL_CH/metrics")
mt=$((($(date +%s%N) - t0) / 1000000))
[ "$mc" = 200 ] && ok "/metrics answered in $mt ms while ClickHouse hangs" ||
	fail "/metrics while ClickHouse hangs: $mc after $mt ms"
for i in 1 2 3 4 5 6; do
	read -r code ms <"h$i.res"
	[ "$code" = 503 ] && grep -qi '^Retry-After:' "h$i.hdr" && [ "$ms" -lt 5000 ] ||
		fail "ingest $i while ClickHouse hangs: $code after $ms ms: $(cat "h$i.body")"
done
ok "6 more ingests while the first waits: 503 with Retry-After, the slowest in $(sort -k2 -n h[1-6].res | tail -1 | cut -d' ' -f2) ms"
wait "$H0"
read -r code ms <h0.res
# CHSTORE_TIMEOUT_MS (15 s) per ClickHouse call
[ "$code" = 503 ] && [ "$ms" -lt 40000 ] && ok "the first ingest: 503 after $ms ms (the deadline)" ||
	fail "the ingest in flight when ClickHouse hung: $code after $ms ms: $(cat h0.body)"
kill -CONT "$CH_PID"
ingest_retried hung
[ "$code" = 200 ] && ok "ClickHouse resumed: the ingest is taken" || fail "after SIGCONT: $code $(cat ing.body)"
n=$(curl -s -u fleetsym:s3cret "http://127.0.0.1:$CH_HTTP/" \
	--data-binary "SELECT count() FROM fleetsym_test.profiles")
[ "$n" = 98 ] && ok "98 profile rows: the one acknowledged ingest after the hang, nothing from the 503s" ||
	fail "profile rows after the hang: '$n', want 98"

echo "== retention drops whole day partitions"
python3 - "$TESTS" "$T/old.pb.gz" <<'PY'
import gzip, sys, time
sys.path.insert(0, sys.argv[1] + "/lib")
import mkpprof
t = time.time_ns() - 3 * 86400 * 10**9
p = {"type": ["cpu", "nanoseconds"], "period": 10, "time_ns": t, "duration_ns": 10**10,
     "mappings": [{"build_id": "ef" * 20, "filename": "/opt/held"}],
     "samples": [{"frames": [[0, 0x1234]], "value": 30}]}
open(sys.argv[2], "wb").write(gzip.compress(mkpprof.encode(p)))
PY
code=$(curl -s -o old.body -w '%{http_code}' --data-binary @old.pb.gz "$URL_CH/api/v1/ingest?service=old")
[ "$code" = 200 ] || fail "ingest of a 3-day-old profile: $code $(cat old.body)"
chq() { curl -s -u fleetsym:s3cret "http://127.0.0.1:$CH_HTTP/" --data-binary "$1"; }
n=$(chq "SELECT count() FROM fleetsym_test.samples WHERE day < today() - 1")
[ "$n" = 1 ] || fail "the old profile's sample row: '$n'"
stop_pid "$FSD_CH" || fail "fleetsymd (clickhouse) exit status"
# retention runs once at start
start_fleetsymd ch2 --data-dir "$T/chd" --debug-dir "$T/empty" --store "$STORE" \
	--store-auth-file "$T/ch/auth" --retention 2d
for _ in $(seq 100); do
	[ "$(chq "SELECT count() FROM fleetsym_test.samples WHERE day < today() - 1")" = 0 ] && break
	sleep 0.1
done
old=$(chq "SELECT count() FROM fleetsym_test.samples WHERE day < today() - 1")
new=$(chq "SELECT count() FROM fleetsym_test.profiles")
[ "$old" = 0 ] && [ "$new" = 98 ] &&
	ok "--retention 2d: the 3-day-old day partition dropped, the 98 recent profile rows kept" ||
	fail "retention: $old old sample rows left, $new profile rows (want 0 and 98)"
stop_pid "$FSD_PID" || fail "fleetsymd (clickhouse, retention) exit status"
finish
