#!/usr/bin/env bash
# bench/query.sh - query latency of fleetsymd's /api/v1/query over loopback HTTP, with stacks
# over glibc's libc.so.6 and its debug file from libc6-dbg (objcopy --only-keep-debug: the
# offsets go through rebuilt program headers). Not part of `make check`.
#
#   bench/query.sh            (env: PROFILES=100 SAMPLES=1000 STACKS=4000)
#
# PROFILES agent-like profiles of SAMPLES samples each (a Zipf-like mix of STACKS distinct
# stacks 8-30 frames deep, walks down a random call tree over libc's functions, so stacks
# share prefixes) are ingested unsymbolized; then libc's debug file is uploaded and the window
# is queried: cold (results cache empty, libc's symbols never opened: DWARF, then the
# background index) and warm (median of 5; pprof and folded median of 3). The server's log
# line of each query splits the time into store (select + merge), symbolize and render.
# The client (tests/lib/query_test.py) shares the CPUs with the server.
set -euo pipefail
export LC_ALL=C
unset DEBUGINFOD_URLS DEBUGINFOD_CACHE_PATH
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
FSD=${FSD:-$ROOT/build/bin/fleetsymd}
PROFILES=${PROFILES:-100}
SAMPLES=${SAMPLES:-1000}
STACKS=${STACKS:-4000}
LIBC=$(readlink -f /lib/x86_64-linux-gnu/libc.so.6)
BID=$(readelf -n "$LIBC" | sed -n 's/^ *Build ID: *\([0-9a-f]*\)$/\1/p')
DEBUG=/usr/lib/debug/.build-id/${BID:0:2}/${BID:2}.debug
[ -x "$FSD" ] || make -C "$ROOT" build/bin/fleetsymd
[ -r "$DEBUG" ] || { echo "bench/query.sh: needs libc6-dbg ($DEBUG)"; exit 1; }

W=$(mktemp -d /tmp/fleetsym-bench-query.XXXXXX)
PID=
cleanup() {
	[ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
	rm -rf "$W"
}
trap cleanup EXIT
mkdir -p "$W/empty"
"$FSD" --listen 127.0.0.1:0 --port-file "$W/port" --data-dir "$W/data" --debug-dir "$W/empty" \
	>"$W/fleetsymd.log" 2>&1 &
PID=$!
for _ in $(seq 100); do [ -s "$W/port" ] && break; sleep 0.05; done
URL="http://127.0.0.1:$(cat "$W/port")"
echo "bench/query.sh: $(nproc) CPUs, libc $BID, $PROFILES profiles x $SAMPLES samples, $STACKS stacks"
python3 - "$URL" "$LIBC" "$DEBUG" "$PROFILES" "$SAMPLES" "$STACKS" <<PY
import sys
sys.path.insert(0, "$ROOT/tests/lib")
import query_test
url, elf, debug, p, s, n = sys.argv[1:]
j = query_test.bench(url, elf, debug, int(p), int(s), int(n), service="libc")
sys.exit(1 if query_test.failed or not j else 0)
PY
echo "server log lines of the queries (cold first):"
grep 'path=/api/v1/query' "$W/fleetsymd.log" | sed 's/^.*status=/  status=/' | cut -c1-230
