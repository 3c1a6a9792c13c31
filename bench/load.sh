#!/usr/bin/env bash
# bench/load.sh - fleetsymd under mixed load while 1,000 slow clients hold connections; all on
# loopback, bounded in time. Not part of `make check`; run directly:
#
#   bench/load.sh              (env: DURATION=60 SLOW=1000 FSD=build/bin/fleetsymd)
#
# For DURATION s, well-behaved clients from 127.0.0.1 ingest (2 threads), query, symbolize
# batches of 1,000 addresses and upload debug files, while SLOW clients from 127.0.0.10..
# trickle request headers (bench/load_client.py). Prints per kind requests, errors, p50/p99,
# fleetsymd's peak RSS, and checks that nothing acknowledged is lost: profiles stored =
# ingests acknowledged. Exits 1 on any error of a well-behaved client or a lost profile.
set -euo pipefail
export LC_ALL=C
unset DEBUGINFOD_URLS DEBUGINFOD_CACHE_PATH
export PYTHONDONTWRITEBYTECODE=1
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
FSD=${FSD:-$ROOT/build/bin/fleetsymd}
DURATION=${DURATION:-60}
SLOW=${SLOW:-1000}
[ -x "$FSD" ] || make -C "$ROOT" build/bin/fleetsymd
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

W=$(mktemp -d /tmp/fleetsym-bench-load.XXXXXX)
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$W"
}
trap cleanup EXIT
mkdir -p "$ROOT/build/bench" "$W/empty"
OUT="$ROOT/build/bench/load-$(date +%Y%m%d-%H%M%S).txt"
build_id() { readelf -n "$1" | sed -n 's/^ *Build ID: *\([0-9a-f]*\)$/\1/p' | head -1; }
metric() { curl -s "$1/metrics" | awk -v n="$2" '$1 == n { v = $2 } END { print v + 0 }'; }

# fixtures: one program to symbolize, four more to upload
for v in 0 1 2 3 4; do
	gcc -O2 -g -DVARIANT=$v -o "$W/fx$v" "$ROOT/tests/data/src/inline_c.c"
done
python3 - "$W" <<'PY'
import json, subprocess, sys
w = sys.argv[1]
def bid(p):
    out = subprocess.run(["readelf", "-n", p], capture_output=True, text=True).stdout
    return [l.split()[-1] for l in out.splitlines() if "Build ID" in l][0]
syms = subprocess.run(["nm", "-S", "--defined-only", w + "/fx0"], capture_output=True,
                      text=True).stdout
addrs = []
for l in syms.splitlines():
    f = l.split()
    if len(f) == 4 and f[2] in "tT":
        a, s = int(f[0], 16), int(f[1], 16)
        addrs += [a + k for k in range(0, s, 4)]
json.dump({"symbolize": {"build_id": bid(w + "/fx0"), "addrs": addrs},
           "uploads": [{"build_id": bid(w + "/fx%d" % v), "path": w + "/fx%d" % v}
                       for v in range(1, 5)]}, open(w + "/fixtures.json", "w"))
PY

"$FSD" --listen 127.0.0.1:0 --port-file "$W/port" --data-dir "$W/data" --debug-dir "$W/empty" \
	--log-level warn >"$W/fleetsymd.log" 2>&1 &
FSD_PID=$!
PIDS+=("$FSD_PID")
for _ in $(seq 100); do [ -s "$W/port" ] && break; sleep 0.05; done
URL="http://127.0.0.1:$(cat "$W/port")"
curl -sf -o /dev/null -X PUT --data-binary @"$W/fx0" "$URL/api/v1/debuginfo/$(build_id "$W/fx0")"

# fleetsymd's peak RSS over the run (VmHWM), and its connections, sampled every second
(
	while kill -0 "$FSD_PID" 2>/dev/null; do
		c=$(metric "$URL" fleetsymd_http_connections_open)
		echo "$c" >>"$W/conns"
		sleep 1
	done
) &
PIDS+=($!)

{
	echo "bench/load.sh: $DURATION s, $SLOW slow clients, fleetsymd $("$FSD" --version | head -1)"
	python3 "$ROOT/bench/load_client.py" "$URL" "$W" "$DURATION" "$SLOW"
	acked=$(cat "$W/acked")
	peak=$(awk '/^VmHWM/ { print int($2 / 1024) }' "/proc/$FSD_PID/status")
	maxc=$(sort -n "$W/conns" | tail -1)
	echo "fleetsymd peak RSS $peak MB; at most $maxc connections open at once (its metric)"
	echo "header deadline closed $(metric "$URL" fleetsymd_http_header_timeouts_total) slow connections"
	# what is in the database once fleetsymd has stopped: one profile row per ingest
	kill -TERM "$FSD_PID"
	wait "$FSD_PID" 2>/dev/null || true
	stored=$(python3 -c 'import sqlite3, sys
print(sqlite3.connect(sys.argv[1]).execute(
    "SELECT count(*) FROM profiles p JOIN series s ON s.id = p.series_id").fetchone()[0])' \
		"$W/data/profiles.db")
	echo "ingests acknowledged $acked, profiles in the store after shutdown $stored"
	errors=$(cat "$W/errors")
	if [ "$errors" = 0 ] && [ "$acked" = "$stored" ]; then
		echo "PASS: 0 errors for well-behaved clients, nothing acknowledged lost"
	else
		echo "FAIL: $errors errors, acknowledged $acked, stored $stored"
	fi
} | tee "$OUT"
echo "(saved in $OUT)"
grep -q '^PASS' "$OUT"
