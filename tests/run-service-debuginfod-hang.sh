#!/usr/bin/env bash
# A debuginfod that hangs mid-body (issue 13): tests/lib/debuginfod_stall.py sends the headers
# and half of one debug file, then nothing. fleetsymd (--fetch-timeout 5s, --max-fetches 1,
# --negative-ttl 8s) must:
#  - answer "pending" and keep serving other requests meanwhile (an uploaded build ID, /metrics);
#  - give the fetch up at its deadline (not 120 s later) and hang up on the server;
#  - install nothing of the half file and leave no temp or partial file behind;
#  - free the slot: with one fetch slot, another build ID is then fetched from the same server;
#  - stop a fetch that trickles (1 KB/s, above curl's low-speed floor) at the same deadline;
#  - keep the build ID missing until the negative TTL has passed, and once the server is good
#    and the TTL has passed, fetch it whole (served byte-identical).
set -uo pipefail
. "$(dirname "$0")/lib/service.sh"
need eu-strip
export PYTHONDONTWRITEBYTECODE=1

cd "$T"
mkdir -p di empty
for v in 0 1 2 3; do
	gcc -O2 -g -DVARIANT=$v -o fx$v "$TESTS/data/src/inline_c.c" || { echo "FAILED: gcc"; exit 1; }
	eu-strip -f di/fx$v.debug -o fx$v.stripped fx$v
	declare "BID$v=$(build_id fx$v)"
done
BAD=$BID0 GOOD=$BID1 UP=$BID2 SLOW=$BID3
python3 "$TESTS/lib/debuginfod_stall.py" "$T/di.port" "$T/di.log" "$BAD" "$SLOW" "$T/heal" \
	di/fx0.debug di/fx1.debug di/fx3.debug &
PIDS+=($!)
for _ in $(seq 100); do [ -s "$T/di.port" ] && break; sleep 0.1; done
[ -s "$T/di.port" ] || { echo "FAILED: the stalling server did not start"; exit 1; }
touch "$T/di.log"

FETCH_S=5 TTL_S=8
start_fleetsymd hang --data-dir "$T/data" --debug-dir "$T/empty" \
	--debuginfod-urls "http://127.0.0.1:$(cat "$T/di.port")" --fetch-timeout ${FETCH_S}s \
	--max-fetches 1 --negative-ttl ${TTL_S}s --request-timeout 1s --threads 4
now() { date +%s.%N; }
since() { python3 -c "import sys; print('%.2f' % (float(sys.argv[2]) - float(sys.argv[1])))" "$1" "$(now)"; }
sym() { # sym BID: POST one address; the answer in $T/body, its status on stdout
	curl -s -m 30 -o "$T/body" -X POST -d "{\"build_id\":\"$1\",\"addresses\":[\"0x1200\"]}" \
		"$URL/api/v1/symbolize"
	python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["status"])' "$T/body" 2>/dev/null
}
# wait_found BID SECONDS: ask until "found"; fails otherwise
wait_found() {
	local end=$(($(date +%s) + $2)) st=
	while [ "$(date +%s)" -lt "$end" ]; do
		st=$(sym "$1")
		[ "$st" = found ] && return 0
		sleep 0.3
	done
	echo "last answer: $(head -c 300 "$T/body")"
	return 1
}

echo "== the fetch hangs mid-body"
t0=$(now)
st=$(sym "$BAD")
[ "$st" = pending ] && ok "first ask: pending in $(since "$t0") s" || fail "first ask: $st $(head -c 300 "$T/body")"
for _ in $(seq 100); do grep -q "^stall $BAD" "$T/di.log" && break; sleep 0.1; done
grep -q "^stall $BAD" "$T/di.log" && ok "the server sent headers and half the body, then stalled" ||
	fail "the server never stalled: $(cat "$T/di.log")"
[ "$(metric "$URL" fleetsymd_debuginfod_fetches_in_flight)" = 1 ] || fail "no fetch in flight during the stall"

echo "== other requests meanwhile"
code=$(http_code PUT "$URL/api/v1/debuginfo/$UP" --data-binary @di/fx2.debug)
case "$code" in 200 | 201) ok "upload during the stall: $code" ;; *) fail "upload: $code $(cat "$T/body")" ;; esac
t1=$(now)
st=$(sym "$UP")
[ "$st" = found ] && ok "uploaded build ID symbolized during the stall in $(since "$t1") s" ||
	fail "uploaded build ID during the stall: $st $(head -c 300 "$T/body")"
t1=$(now)
[ "$(curl -s -m 10 -o /dev/null -w '%{http_code}' "$URL/metrics")" = 200 ] &&
	ok "/metrics during the stall in $(since "$t1") s" || fail "/metrics during the stall"
code=$(http_code GET "$URL/buildid/$BAD/debuginfo")
case "$code" in
404 | 503) ok "nothing of the half file served mid-fetch: $code $(head -c 120 "$T/body")" ;;
*) fail "mid-fetch GET /buildid/BAD/debuginfo: $code $(head -c 200 "$T/body")" ;;
esac

echo "== the fetch gives up at its deadline"
gave_up=
for _ in $(seq 300); do # 30 s, far past --fetch-timeout
	if [ "$(metric "$URL" fleetsymd_debuginfod_fetches_in_flight)" = 0 ]; then
		gave_up=$(since "$t0")
		break
	fi
	sleep 0.1
done
tg=$(now)
if [ -n "$gave_up" ] && python3 -c "import sys; sys.exit(0 if $FETCH_S - 0.5 < $gave_up < $FETCH_S + 10 else 1)"; then
	ok "fetch given up ${gave_up} s after the first ask (--fetch-timeout ${FETCH_S}s)"
else
	fail "fetch not given up near --fetch-timeout: ${gave_up:-still in flight after 30 s}"
fi
[ "$(metric "$URL" fleetsymd_debuginfod_fetch_failures_total)" = 1 ] || fail "fetch failures: $(metric "$URL" fleetsymd_debuginfod_fetch_failures_total)"
# at once, well within the negative TTL
n_get=$(grep -c "^get $BAD" "$T/di.log")
st=$(sym "$BAD")
[ "$st" = missing ] && [ "$(grep -c "^get $BAD" "$T/di.log")" = "$n_get" ] &&
	ok "asked again within the negative TTL: missing ($(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["reason"])' "$T/body")), debuginfod not asked" ||
	fail "after the deadline: $st $(head -c 300 "$T/body"), debuginfod asked $(grep -c "^get $BAD" "$T/di.log") times (was $n_get)"
for _ in $(seq 100); do grep -q "^closed $BAD" "$T/di.log" && break; sleep 0.1; done
grep -q "^closed $BAD" "$T/di.log" && ok "fleetsymd hung up on the server $(awk -v b="$BAD" '$1 == "closed" && $2 == b { print $3 }' "$T/di.log") s into the stall" ||
	fail "the stalled connection is still open"
[ "$(http_code GET "$URL/buildid/$BAD/debuginfo")" = 404 ] && ok "nothing installed" ||
	fail "GET /buildid/BAD/debuginfo after the deadline: $(head -c 200 "$T/body")"
[ "$(http_code GET "$URL/api/v1/debuginfo/$BAD")" = 404 ] || fail "the store lists the half file: $(head -c 300 "$T/body")"
left=$(find "$T/data/tmp" -mindepth 1 | wc -l)
partial=$(find "$T/data" -path "$T/data/tmp" -prune -o -type f -size +0 -print | grep -c "$BAD")
if [ "$left" = 0 ] && [ "$partial" = 0 ]; then
	ok "no temp file and no partial file of $BAD in the data dir"
else
	fail "left behind: $left in tmp, $partial files naming $BAD: $(find "$T/data" -type f | grep -e "$BAD" -e /tmp/ | head -5)"
fi

echo "== the slot is free"
t1=$(now)
wait_found "$GOOD" 20 && ok "another build ID fetched through the one slot in $(since "$t1") s" ||
	fail "$GOOD was not fetched after the stall"

echo "== a fetch that trickles"
t2=$(now)
st=$(sym "$SLOW")
[ "$st" = pending ] || fail "trickled build ID: $st $(head -c 300 "$T/body")"
slow_done=
for _ in $(seq 300); do
	sleep 0.1
	[ "$(metric "$URL" fleetsymd_debuginfod_fetches_in_flight)" = 0 ] && { slow_done=$(since "$t2"); break; }
done
for _ in $(seq 100); do grep -q "^closed $SLOW" "$T/di.log" && break; sleep 0.1; done
got=$(awk -v b="$SLOW" '$1 == "closed" && $2 == b { print $3 }' "$T/di.log")
if [ -n "$slow_done" ] && [ -n "$got" ] && python3 -c "import sys; sys.exit(0 if $FETCH_S - 0.5 < $slow_done < $FETCH_S + 10 else 1)"; then
	ok "trickling fetch stopped ${slow_done} s after the ask (hung up ${got} s into the body, ~$(python3 -c "print(int(512 + 1024 * $got) >> 10)") KiB of $(($(stat -c %s di/fx3.debug) >> 10)) sent)"
else
	fail "trickling fetch: in flight until ${slow_done:-past 30 s}, server saw the close: ${got:-no}"
fi
[ "$(sym "$SLOW")" = missing ] || fail "trickled build ID after the deadline: $(head -c 300 "$T/body")"
partial=$(find "$T/data" -type f -size +0 | grep -c "$SLOW")
[ "$partial" = 0 ] && [ "$(find "$T/data/tmp" -mindepth 1 | wc -l)" = 0 ] && ok "no partial file of the trickled one" ||
	fail "partial files: $(find "$T/data" -type f | grep -e "$SLOW" -e /tmp/)"

echo "== the build ID again, after the negative TTL"
touch "$T/heal"
# wait out the TTL from the moment the fetch gave up
sleep "$(python3 -c "import sys; print(max(0.0, $TTL_S + 0.5 - (float(sys.argv[2]) - float(sys.argv[1]))))" "$tg" "$(now)")"
wait_found "$BAD" 20 && ok "after the TTL, from the healed server: found ($(grep -c "^get $BAD" "$T/di.log") GETs in all)" ||
	fail "$BAD not fetched after the TTL"
[ "$(http_code GET "$URL/buildid/$BAD/debuginfo")" = 200 ] && cmp -s "$T/body" di/fx0.debug &&
	ok "served byte-identical to the server's file" || fail "served file differs from di/fx0.debug"
[ "$(find "$T/data/tmp" -mindepth 1 | wc -l)" = 0 ] || fail "temp files at the end: $(ls "$T/data/tmp")"
finish
