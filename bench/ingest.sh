#!/usr/bin/env bash
# bench/ingest.sh - POST /api/v1/ingest rate of fleetsymd for agent-like profiles. Not part of
# `make check`; run directly.
#
#   bench/ingest.sh            (env: PROFILES=500 SAMPLES=1000 CLIENTS=1,4)
#
# tests/lib/ingest_bench.py makes 40 distinct profiles like the agent's (unsymbolized frames of
# 8 build IDs, 3,000 distinct stacks of 20-60 frames sharing callers, Zipf-like mix, pid/comm
# labels, gzip'd, ~SAMPLES samples each) and posts them, 100 series, sequentially and from
# several clients. It prints profiles/s and samples/s as the client sees them and per
# CPU-second of fleetsymd (utime + stime), the number independent of the python client that
# shares this machine's CPUs. Every ingest is one transaction fsynced with synchronous=FULL,
# so the wall-clock rate of one client is bounded by the disk's fsync latency. Ends with the
# bytes on disk per stored sample.
set -euo pipefail
export LC_ALL=C
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
FSD=${FSD:-$ROOT/build/bin/fleetsymd}
PROFILES=${PROFILES:-500}
SAMPLES=${SAMPLES:-1000}
CLIENTS=${CLIENTS:-1,4}
[ -x "$FSD" ] || make -C "$ROOT" build/bin/fleetsymd
T=$(mktemp -d /tmp/fleetsym-bench-ingest.XXXXXX)
trap 'kill "$PID" 2>/dev/null; wait "$PID" 2>/dev/null; rm -rf "$T"' EXIT
"$FSD" --listen 127.0.0.1:0 --port-file "$T/port" --data-dir "$T/data" --log-level warn &
PID=$!
for _ in $(seq 100); do [ -s "$T/port" ] && break; sleep 0.05; done
URL="http://127.0.0.1:$(cat "$T/port")"
python3 "$ROOT/tests/lib/ingest_bench.py" "$URL" "$PID" --profiles "$PROFILES" \
	--samples "$SAMPLES" --clients "$CLIENTS"
samples=$(curl -s "$URL/metrics" | awk '$1 == "fleetsymd_ingest_samples_total" {print $2}')
sqlite3 "$T/data/profiles.db" "PRAGMA wal_checkpoint(TRUNCATE);" >/dev/null
bytes=$(du -sb "$T/data/profiles.db" | cut -f1)
echo "store: $bytes bytes for $samples samples: $(python3 -c "print('%.1f' % ($bytes / $samples))") bytes per sample (profiles.db after a checkpoint)"
