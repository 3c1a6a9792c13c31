#!/usr/bin/env bash
# bench/service.sh - fleetsymd over loopback HTTP on glibc's libc.so.6 with its debug file from
# libc6-dbg. Not part of `make check`; run directly (or `make bench` if wired there).
#
#   bench/service.sh           (env: SECONDS_RUN=10 BATCH=1000 CONNS=2 REQUESTS=2000)
#
# 1. cold: a real debuginfod (Debian's) on 127.0.0.1 serves libc's debug file; a fresh
#    fleetsymd (empty data dir, no local debug dirs) gets one symbolize request for libc:
#    time to the first answer = debuginfod fetch + store install (decompressing the sections)
#    + answer from DWARF; then the background index build time (from /metrics) and the time
#    until the build ID is answered from its index.
# 2. warm throughput: batches of BATCH random addresses inside libc's functions, CONNS keep-
#    alive connections (one client process each), for SECONDS_RUN s: addresses/s.
# 3. warm latency: one address per request on one connection, REQUESTS requests: p50/p99.
# The client is python3 (bench/service_client.py); on this 2-core machine it shares the CPUs
# with the server, so the numbers are a floor for the server.
set -euo pipefail
export LC_ALL=C
unset DEBUGINFOD_URLS DEBUGINFOD_CACHE_PATH
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
FSD=${FSD:-$ROOT/build/bin/fleetsymd}
CLIENT="$ROOT/bench/service_client.py"
SECONDS_RUN=${SECONDS_RUN:-10}
BATCH=${BATCH:-1000}
CONNS=${CONNS:-2}
REQUESTS=${REQUESTS:-2000}
LIBC=$(readlink -f /lib/x86_64-linux-gnu/libc.so.6)
BID=$(readelf -n "$LIBC" | sed -n 's/^ *Build ID: *\([0-9a-f]*\)$/\1/p')
DEBUG=/usr/lib/debug/.build-id/${BID:0:2}/${BID:2}.debug
[ -x "$FSD" ] || make -C "$ROOT" build/bin/fleetsymd
[ -r "$DEBUG" ] || { echo "bench/service.sh: needs libc6-dbg ($DEBUG)"; exit 1; }
command -v debuginfod >/dev/null || { echo "bench/service.sh: needs debuginfod"; exit 1; }

W=$(mktemp -d /tmp/fleetsym-bench-service.XXXXXX)
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$W"
}
trap cleanup EXIT
mkdir -p "$W/di" "$W/empty" "$ROOT/build/bench"
OUT="$ROOT/build/bench/service-$(date +%Y%m%d-%H%M%S).txt"
now() { python3 -c 'import time; print(time.time())'; }
metric() { curl -s "$1/metrics" | awk -v n="$2" '$1 == n { v = $2 } END { print v + 0 }'; }

# random addresses inside libc's FUNC symbols
readelf -sW "$DEBUG" 2>/dev/null | awk '$4 == "FUNC" && $7 != "UND" && $3 > 0 { print $2, $3 }' |
	python3 -c '
import random, sys
r = random.Random(1)
syms = [(int(a, 16), int(s, 0)) for a, s in (l.split() for l in sys.stdin)]
for _ in range(20000):
    a, s = r.choice(syms)
    print(hex(a + r.randrange(s)))' >"$W/addrs.txt"

cp "$DEBUG" "$W/di/libc.debug"
for _ in 1 2 3 4 5; do
	port=$((20000 + RANDOM % 30000))
	debuginfod -F -p "$port" -d "$W/di.sqlite" -t 0 -g 0 -c 1 "$W/di" >"$W/debuginfod.log" 2>&1 &
	DI=$!
	for _ in $(seq 200); do
		curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/buildid/$BID/debuginfo" |
			grep -q 200 && break
		kill -0 "$DI" 2>/dev/null || break
		sleep 0.1
	done
	kill -0 "$DI" 2>/dev/null && { PIDS+=("$DI"); break; }
done
DI_URL="http://127.0.0.1:$port"

"$FSD" --listen 127.0.0.1:0 --port-file "$W/port" --data-dir "$W/data" --debug-dir "$W/empty" \
	--debuginfod-urls "$DI_URL" --request-timeout 60s --log-level warn 2>"$W/fleetsymd.log" &
PIDS+=($!)
for _ in $(seq 100); do [ -s "$W/port" ] && break; sleep 0.05; done
URL="http://127.0.0.1:$(cat "$W/port")"

{
	echo "fleetsymd service benchmark, $(date -u +%FT%TZ), $(nproc) CPUs"
	echo "libc: $LIBC, build ID $BID, debug file $(stat -c %s "$DEBUG") bytes (libc6-dbg)"
	t0=$(now)
	first=$(curl -s -X POST -w ' %{time_total}' \
		-d "{\"build_id\":\"$BID\",\"addresses\":[\"$(head -1 "$W/addrs.txt")\"]}" "$URL/api/v1/symbolize")
	echo "$first" | grep -q '"status":"found"' || { echo "cold request failed: $first"; exit 1; }
	for _ in $(seq 600); do
		[ "$(metric "$URL" fleetsymd_symcache_indexed)" = 1 ] && break
		sleep 0.1
	done
	t_indexed=$(python3 -c "print(f'{$(now) - $t0:.2f}')")
	echo "cold: first answer (debuginfod fetch + install + DWARF answer): ${first##* } s"
	echo "cold: index build $(metric "$URL" fleetsymd_index_build_duration_seconds_sum) s;" \
		"answered from the index ${t_indexed} s after the first request"
	echo "store: $(metric "$URL" fleetsymd_store_bytes) bytes stored (decompressed)," \
		"fetch time $(metric "$URL" fleetsymd_debuginfod_fetch_seconds_total) s"
	python3 "$CLIENT" throughput "$URL" "$BID" "$W/addrs.txt" --batch "$BATCH" --conns "$CONNS" \
		--seconds "$SECONDS_RUN"
	python3 "$CLIENT" latency "$URL" "$BID" "$W/addrs.txt" --requests "$REQUESTS"
	echo "server: $(grep -c . "$W/fleetsymd.log") warning lines; RSS $(awk '/VmHWM/ { print $2, $3 }' "/proc/${PIDS[1]}/status") peak"
} | tee "$OUT"
echo "written to $OUT"
