#!/usr/bin/env bash
# The query side against a real fleetsymd (tests/lib/query_test.py says what is checked):
# unsymbolized agent-like profiles of an -O2 -g fixture ingested before its debug info exists
# (fixture+0x... frames, /missing ranks it), then the debug info uploaded with curl: names,
# file:line and inline chains equal fleetsym-symbolize's, go tool pprof reads the pprof answer,
# folded sums to the total, a diff of two windows, and query latency for 100 profiles x 1,000
# samples, cold and warm.
set -uo pipefail
. "$(dirname "$0")/lib/service.sh"
need objcopy objdump nm go
export GOCACHE="$T/gocache" GOPATH="$T/gopath" GOFLAGS=-mod=mod HOME="$T"

cd "$T"
mkdir -p empty
gcc -O2 -g -no-pie -o fx "$TESTS/data/src/inline_c.c"
objcopy --only-keep-debug fx fx.debug
gcc -O2 -g -DVARIANT=3 -o other "$TESTS/data/src/inline_c.c"
gcc -O2 -g -DVARIANT=4 -o bench "$TESTS/data/src/inline_c.c"
objcopy --only-keep-debug bench bench.debug

start_fleetsymd query --data-dir "$T/data" --debug-dir "$T/empty" --request-timeout 2s
[ "$(http_code POST "$URL/api/v1/ingest")" = 404 ] && skip "this fleetsymd has no POST /api/v1/ingest"
python3 "$TESTS/lib/query_test.py" --url "$URL" --dir "$T" --sym "$BUILD/bin/fleetsym-symbolize" ${QUERY_TEST_ARGS:-} ||
	fail "query_test.py"
grep -q 'path=/api/v1/query status=200 .*symbolized=' "$T/query.log" ||
	fail "no key=value log line for a query"
[ "$(metric "$URL" fleetsymd_query_cache_hits_total)" -gt 0 ] || fail "no results-cache hits counted"
[ "$(metric "$URL" fleetsymd_query_locations_symbolized_total)" -gt 0 ] || fail "no symbolized locations counted"
curl -s "$URL/metrics" >metrics.txt
grep -q 'fleetsymd_query_duration_seconds_count{endpoint="query"} [1-9]' metrics.txt ||
	fail "no query latency histogram"
ok "metrics: $(metric "$URL" fleetsymd_query_locations_symbolized_total) locations symbolized, $(metric "$URL" fleetsymd_query_cache_hits_total) results-cache hits"
# the build, as Prometheus exporters name it: version, commit and the libraries' versions
bi=$(grep '^fleetsym_build_info{' metrics.txt)
v=$("$FSD" --version | head -1)
case "$bi" in
*"version=\"${v#fleetsymd }\""*"sqlite="*"} 1") ok "metrics: $bi" ;;
*) fail "fleetsym_build_info: '$bi' for '$v'" ;;
esac
stop_pid "$FSD_PID" || fail "fleetsymd exit status"

echo "== a debuginfod that accepts and never answers: bounded wait, partial answers"
start_hole "$T/hole.port"
start_fleetsymd hole --data-dir "$T/data-hole" --debug-dir "$T/empty" \
	--debuginfod-urls "http://127.0.0.1:$(cat "$T/hole.port")" --request-timeout 1s
python3 "$TESTS/lib/query_test.py" --url "$URL" --dir "$T" --sym "$BUILD/bin/fleetsym-symbolize" --pending 1 ||
	fail "pending"
stop_pid "$FSD_PID" || fail "fleetsymd (hole) exit status"
finish
