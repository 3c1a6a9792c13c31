#!/usr/bin/env bash
# fleetsymd with a real debuginfod (Debian's) on 127.0.0.1 that alone has the debug info of
# stripped fixtures: answers match the engine and eu-addr2line, as addresses and as file
# offsets; 16 concurrent requests for one build ID cost exactly one fetch (our metrics and
# debuginfod's own); a tiny --cache-size evicts and refetches; a debuginfod that never answers
# gives "pending" within --request-timeout without delaying other build IDs; once debuginfod is
# stopped, cached build IDs still answer and an unseen one is unknown within the timeout.
set -uo pipefail
. "$(dirname "$0")/lib/service.sh"
need debuginfod eu-addr2line eu-strip
CHECK="python3 $TESTS/lib/svc_check.py --sym $BUILD/bin/fleetsym-symbolize"

cd "$T"
mkdir -p di empty
for v in 0 1 2 3 4; do
	gcc -O2 -g -DVARIANT=$v -o fx$v "$TESTS/data/src/inline_c.c"
	eu-strip -f di/fx$v.debug -o fx$v.stripped fx$v
	declare "BID$v=$(build_id fx$v)"
done
# fx4's debug file is not served: it stays unknown everywhere
rm di/fx4.debug
start_debuginfod "$T/di" "$BID0"
di_requests() { curl -s "$DI_URL/metrics" | awk '$1 == "http_requests_total{type=\"debuginfo\"}" { print $2 }'; }

start_fleetsymd main --data-dir "$T/data" --debug-dir "$T/empty" \
	--debuginfod-urls "$DI_URL" --request-timeout 10s --threads 8
MAIN=$URL MAIN_PID=$FSD_PID

echo "== symbolize a stripped fixture whose debug info only debuginfod has"
$CHECK --url "$MAIN" --elf fx0 --build-id "$BID0" -n 400 --seed 1 || fail "fx0 vaddr answers"
$CHECK --url "$MAIN" --elf fx0 --build-id "$BID0" -n 400 --seed 2 --kind offset ||
	fail "fx0 offset answers"
[ "$(metric "$MAIN" fleetsymd_debuginfod_fetches_total)" = 1 ] || fail "fx0: fetches != 1"
code=$(http_code GET "$MAIN/api/v1/debuginfo/$BID0")
grep -q '"source":"debuginfod"' "$T/body" && [ "$code" = 200 ] || fail "status of fx0: $code $(cat "$T/body")"
ok "fx0 from debuginfod: $(cat "$T/body")"

echo "== 16 concurrent requests for one unseen build ID"
before_ours=$(metric "$MAIN" fleetsymd_debuginfod_fetches_total)
before_di=$(di_requests)
cpids=()
for i in $(seq 16); do
	curl -s -m 30 -o "$T/c$i.json" -X POST \
		-d "{\"build_id\":\"$BID1\",\"addresses\":[\"0x1200\"]}" "$MAIN/api/v1/symbolize" &
	cpids+=($!)
done
wait_rc=0
for j in "${cpids[@]}"; do wait "$j" || wait_rc=1; done
[ "$wait_rc" = 0 ] || fail "a concurrent curl failed"
found=$(grep -l '"status":"found"' "$T"/c*.json | wc -l)
ours=$(($(metric "$MAIN" fleetsymd_debuginfod_fetches_total) - before_ours))
theirs=$(($(di_requests) - before_di))
[ "$found" = 16 ] || fail "only $found of 16 concurrent answers found the symbols"
[ "$ours" = 1 ] || fail "16 concurrent requests made $ours fetches (want 1)"
[ "$theirs" = 1 ] || fail "debuginfod saw $theirs debuginfo requests (want 1)"
ok "16 concurrent requests: $found found, fleetsymd fetches $ours, debuginfod requests $theirs"

echo "== eviction under a tiny --cache-size"
size0=$(stat -c %s di/fx0.debug)
start_fleetsymd tiny --data-dir "$T/data-tiny" --debug-dir "$T/empty" \
	--debuginfod-urls "$DI_URL" --cache-size $((size0 * 3 / 2)) --request-timeout 10s
TINY=$URL
$CHECK --url "$TINY" --elf fx0 --build-id "$BID0" -n 50 --seed 3 >/dev/null || fail "tiny: fx0"
$CHECK --url "$TINY" --elf fx2 --build-id "$BID2" -n 50 --seed 4 >/dev/null || fail "tiny: fx2"
ev=$(metric "$TINY" fleetsymd_store_evictions_total)
code=$(http_code GET "$TINY/api/v1/debuginfo/$BID0")
[ "$ev" -ge 1 ] && [ "$code" = 404 ] || fail "no eviction: evictions=$ev, fx0 status $code"
ls "$T/data-tiny/debuginfo" >"$T/tiny-files.txt" 2>&1
grep -q "$BID0" "$T/tiny-files.txt" && fail "fx0's files (or index) left after eviction: $(cat "$T/tiny-files.txt")"
$CHECK --url "$TINY" --elf fx0 --build-id "$BID0" -n 50 --seed 5 >/dev/null || fail "tiny: fx0 refetch"
f=$(metric "$TINY" fleetsymd_debuginfod_fetches_total)
cached=$(metric "$TINY" fleetsymd_store_cached_bytes)
[ "$f" = 3 ] && [ "$cached" -le $((size0 * 3 / 2)) ] || fail "tiny: fetches=$f cached_bytes=$cached"
ok "tiny cache (cap $((size0 * 3 / 2)) B): evictions=$ev, evicted fx0 answered again after refetch, fetches=$f, cached_bytes=$cached"

echo "== a debuginfod that accepts and never answers"
start_hole "$T/hole.port"
start_fleetsymd hole --data-dir "$T/data-hole" --debug-dir "$T/empty" \
	--debuginfod-urls "http://127.0.0.1:$(cat "$T/hole.port")" --request-timeout 1s --threads 4
HOLE=$URL
# an upload into this instance must not wait behind the stuck fetch
curl -s -o /dev/null -X PUT --data-binary @di/fx2.debug "$HOLE/api/v1/debuginfo/$BID2"
# timed_symbolize URL BID ADDR : curl's total time for one request; the answer in $T/body
timed_symbolize() {
	curl -s -m 30 -o "$T/body" -w '%{time_total}' -X POST \
		-d "{\"build_id\":\"$2\",\"addresses\":[\"$3\"]}" "$1/api/v1/symbolize"
}
$CHECK --url "$HOLE" --elf fx3 --build-id "$BID3" -n 20 --seed 6 --expect-pending || fail "pending"
t1=$(timed_symbolize "$HOLE" "$BID3" 0x1200)
grep -q '"pending":true' "$T/body" || fail "second ask for fx3 not pending: $(cat "$T/body")"
# 12 requests parked on the stuck fetch (more than the 4 HTTP threads) must not hold up others
hpids=()
for i in $(seq 12); do
	curl -s -m 10 -o "$T/h$i.json" -X POST -d "{\"build_id\":\"$BID3\",\"addresses\":[\"0x1\"]}" \
		"$HOLE/api/v1/symbolize" &
	hpids+=($!)
done
sleep 0.3
t2=$(timed_symbolize "$HOLE" "$BID2" 0x1200)
grep -q '"status":"found"' "$T/body" || fail "fx2 behind a stuck fetch: $(cat "$T/body")"
for j in "${hpids[@]}"; do wait "$j" || fail "a parked request failed"; done
[ "$(grep -l '"pending":true' "$T"/h*.json | wc -l)" = 12 ] || fail "not all 12 parked requests answered pending"
# The promises, not this host's speed: "pending" only after --request-timeout (1 s) and long
# before the stuck fetch could end (never); fx2 "found" (checked above) says it did not wait
# behind the stuck fetch, which would have made it "pending" too.
python3 -c "import sys; sys.exit(0 if 0.9 < $t1 < 10 else 1)" ||
	fail "pending took ${t1}s (want --request-timeout, 1 s)"
ok "stuck debuginfod: pending answer in ${t1}s (--request-timeout 1s); with 12 requests parked on it (4 HTTP threads), an uploaded build ID answered in ${t2}s"

echo "== debuginfod stopped"
stop_pid "$DI_PID"
$CHECK --url "$MAIN" --elf fx0 --build-id "$BID0" -n 200 --seed 8 || fail "cached fx0 after stop"
t3=$(timed_symbolize "$MAIN" "$BID4" 0x1200)
ans=$(cat "$T/body")
echo "$ans" | python3 -c '
import json, sys
a = json.load(sys.stdin)
r = a["results"][0]
assert a["status"] in ("missing", "pending"), a
assert r["frames"][0]["unknown"].endswith("+0x1200"), r
assert a["reason"], a
print("unseen:", a["status"], "-", a["reason"])' || fail "unseen build ID after stop: $ans"
# within --request-timeout (10 s), with room for a loaded machine
python3 -c "import sys; sys.exit(0 if $t3 < 15 else 1)" || fail "unseen build ID took ${t3}s"
ok "debuginfod down: cached fx0 answers; unseen build ID unknown in ${t3}s"

stop_pid "$MAIN_PID" || fail "fleetsymd did not exit 0 on SIGTERM"
grep -q 'event=stopping' "$T/main.log" || fail "no clean stop in the log"
finish
