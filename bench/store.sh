#!/usr/bin/env bash
# bench/store.sh - the profile store at fleet scale (issue 5): ingest rate on one core, bytes on
# disk per sample, and flame-graph query latency over one hour of 100 series. Not part of
# `make check`; run directly. Results also go to build/bench/store-<date>.txt.
#
#   bench/store.sh     (env: EVENTS=600 CONNS=4 STACKS=3000 NSERIES=100 PROFILES=360
#                       SYMS=1 PERF=1 KEEP=0 SERVER_CPU=0 CLIENT_CPU=1 BACKEND=sqlite DATA=)
#
# BACKEND=both runs sqlite, then clickhouse, on the same generated files; DATA=DIR keeps the
# files in DIR and reuses them when a run before left them there.
#
# BACKEND=clickhouse: the same run against a clickhouse-server started here (its data in the
# temp dir; on CLIENT_CPU during the ingest, off fleetsymd's, then on every CPU), fleetsymd --store clickhouse://...; disk is system.parts'
# data_compressed_bytes; cold queries also drop ClickHouse's mark and uncompressed caches and
# its files from the page cache; and the bare `SELECT stack, sum(value) ... GROUP BY stack` of
# the same hour is timed beside the queries.
#
# Data (bench/store_load.c, built by make as build/bench/store_load): 6 real ELF files built
# here from generated C (4 service executables, 2 shared libraries: the build IDs), a fixed
# pool of 1,000 offsets inside each one's functions; per service STACKS/4 distinct stacks of
# 20-60 frames grown as a call tree, a Zipf mix of them; NSERIES series (service, host); one
# agent-like profile per series every 10 s of simulated time (time_nanos), PROFILES per
# series, so the hour [T0, T0+1h) holds 360 profiles per series; each profile EVENTS x the
# host's load (0.5-1.5) x a +-20% wave stack events at 19 Hz aggregated into distinct
# (stack, pid, comm) samples, gzip'd like the agent's. All bodies are made before anything is
# timed (in parallel, one shard per CPU).
#
# Ingest: fleetsymd pinned to CPU SERVER_CPU (taskset), the client (CONNS keep-alive
# connections, one thread each) on CLIENT_CPU; samples/s and profiles/s by the wall clock and
# per CPU-second of the server (utime + stime: the number other load on this machine does not
# move), and how busy the server's CPU was. Every ingest is one synchronous=FULL transaction.
#
# Disk: profiles.db + WAL after PRAGMA wal_checkpoint(TRUNCATE), divided by the samples stored;
# per-table bytes from dbstat.
#
# Queries (format=json, the flame graph; curl's time_total; the server's log splits it into
# store / symbolize / render): the hour across all series, and one series. Cold: fleetsymd
# restarted and profiles.db dropped from the page cache (posix_fadvise DONTNEED on our files
# only), first query, median of 5. Warm: the same query again, median of 7. First without
# debug info (frames stay file+0xoff), then (SYMS=1) with the 6 ELFs uploaded: the first query
# after the upload (DWARF, index builds) and warm again.
#
# PERF=1: a perf profile (DWARF call graphs; inclusive and self time per function) of the server
# during a separate, short ingest (a scratch store, so the timed numbers are not perturbed) and
# during warm all-series queries.
set -euo pipefail
export LC_ALL=C
unset DEBUGINFOD_URLS DEBUGINFOD_CACHE_PATH
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
FSD=${FSD:-$ROOT/build/bin/fleetsymd}
export EVENTS=${EVENTS:-600} STACKS=${STACKS:-3000} NSERIES=${NSERIES:-100}
export PROFILES=${PROFILES:-360} NSERVICES=4 PIDS=${PIDS:-4}
CONNS=${CONNS:-4}
SYMS=${SYMS:-1}
PERF=${PERF:-1}
KEEP=${KEEP:-0}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
BACKEND=${BACKEND:-sqlite}
# BACKEND=both: the sqlite run, then the ClickHouse run on the very same files (DATA)
if [ "$BACKEND" = both ]; then
	D=$(mktemp -d /tmp/fleetsym-bench-data.XXXXXX)
	trap 'rm -rf "$D"' EXIT
	BACKEND=sqlite DATA=$D bash "$0" && BACKEND=clickhouse DATA=$D bash "$0"
	exit
fi
COLD_N=5
WARM_N=7

# the tree as it is (others may be mid-edit: a failed build falls back to the last one)
timeout 900 make -C "$ROOT" build/bin/fleetsymd build/libfleetsym.a >/dev/null 2>"/tmp/fleetsym-store-make.$$" ||
	echo "bench/store.sh: warning: make failed ($(tail -1 "/tmp/fleetsym-store-make.$$")); using the last build"
rm -f "/tmp/fleetsym-store-make.$$"
[ -x "$FSD" ] && [ -f "$ROOT/build/libfleetsym.a" ] || { echo "bench/store.sh: no $FSD"; exit 1; }
for t in taskset sqlite3 curl gcc python3; do
	command -v $t >/dev/null || { echo "bench/store.sh: needs $t"; exit 1; }
done
[ "$PERF" = 1 ] && ! perf stat -e task-clock true >/dev/null 2>&1 && PERF=0

W=$(mktemp -d /tmp/fleetsym-bench-store.XXXXXX)
# the ELFs and profiles: made in DATA when it is set (kept there and reused by the next run
# with the same DATA), else in W
G=${DATA:-$W}
mkdir -p "$ROOT/build/bench" "$G/elf" "$W/empty"
OUT="$ROOT/build/bench/store-$(date +%Y%m%d-%H%M%S).txt"
PID=
PERFPID=
CHPID=
STORE_ARGS=()
stop_server() {
	if [ -n "$PID" ]; then
		kill "$PID" 2>/dev/null || true
		for _ in $(seq 100); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
		kill -9 "$PID" 2>/dev/null || true
		wait "$PID" 2>/dev/null || true
		PID=
	fi
}
cleanup() {
	[ -n "$PERFPID" ] && kill -INT "$PERFPID" 2>/dev/null
	stop_server
	[ -n "$CHPID" ] && { kill "$CHPID" 2>/dev/null; wait "$CHPID" 2>/dev/null || true; }
	if [ "$KEEP" = 1 ]; then echo "kept $W"; else rm -rf "$W"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
log() { echo "$*" | tee -a "$OUT"; }

# start_server DATA_DIR LOGFILE LOGLEVEL: fleetsymd on SERVER_CPU, loopback, port 0
start_server() {
	rm -f "$W/port"
	taskset -c "$SERVER_CPU" "$FSD" --listen 127.0.0.1:0 --port-file "$W/port" --data-dir "$1" \
		--debug-dir "$W/empty" --log-level "$3" "${STORE_ARGS[@]}" >>"$2" 2>&1 &
	PID=$!
	for _ in $(seq 300); do [ -s "$W/port" ] && break; sleep 0.05; done
	[ -s "$W/port" ] || { echo "fleetsymd did not start:"; tail -5 "$2"; exit 1; }
	PORT=$(cat "$W/port")
	URL="http://127.0.0.1:$PORT"
}
cpu_of() { awk '{print $14 + $15}' "/proc/$1/stat"; } # clock ticks
TCK=$(getconf CLK_TCK)
# busy and total jiffies of one CPU from /proc/stat
cpustat() { awk -v c="cpu$1" '$1 == c {print $2+$3+$4+$7+$8+$9, $2+$3+$4+$5+$6+$7+$8+$9}' /proc/stat; }
calc() { python3 -c "print($1)"; }

log "bench/store.sh $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(hostname): $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), $(($(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024)) MiB"
log "commit $(git -C "$ROOT" rev-parse --short HEAD)$(git -C "$ROOT" diff --quiet HEAD -- symbolizer lib 2>/dev/null || echo ' + uncommitted changes in symbolizer/ or lib/ (others at work)'); fleetsymd $(stat -c %y "$FSD" | cut -d. -f1)"
log "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"

# ---- the ELFs: 4 services' executables and 2 shared libraries, from generated C ----
if [ ! -s "$G/t0" ]; then
python3 - "$G/elf" <<'PY'
import random, sys
out = sys.argv[1]
verbs = ["parse", "encode", "decode", "hash", "lookup", "insert", "flush", "read", "write",
         "scan", "merge", "sort", "compress", "route", "render", "validate", "match", "alloc"]
nouns = ["header", "request", "row", "page", "token", "buffer", "record", "frame", "index",
         "entry", "block", "span", "query", "batch", "session", "field", "chunk", "key"]
def src(prefix, seed, nfn, main):
    r = random.Random(seed)
    names = ["%s_%s_%s_%d" % (prefix, r.choice(verbs), r.choice(nouns), i) for i in range(nfn)]
    o = ["#include <stdint.h>", "volatile uint64_t %s_sink;" % prefix,
         "static inline uint64_t %s_mix(uint64_t x) { x ^= x >> 31; x *= 0x9e3779b97f4a7c15ULL;"
         " return x ^ (x >> 29); }" % prefix,
         "static inline uint64_t %s_fold(uint64_t a, uint64_t b) { for (int i = 0; i < (int)(b & 7);"
         " i++) a = %s_mix(a + i); return a; }" % (prefix, prefix)]
    o += ["uint64_t %s(uint64_t);" % n for n in names]
    for i, n in enumerate(names):
        body = ["uint64_t a = %s_mix(x + %d);" % (prefix, i)]
        for _ in range(r.randint(1, 4)):
            if i and r.random() < 0.8:
                body.append("if (a & %d) a += %s(a >> %d);" % (1 << r.randint(0, 5),
                                                              names[r.randrange(i)], r.randint(1, 9)))
            body.append("a = %s_fold(a, x ^ %d);" % (prefix, r.randint(1, 1000)))
        body.append("%s_sink = a; return a;" % prefix)
        o.append("__attribute__((noinline)) uint64_t %s(uint64_t x) {\n\t%s\n}" % (n, "\n\t".join(body)))
    if main:
        o.append("int main(int argc, char **argv) { (void)argv; return (int)%s((uint64_t)argc) & 1; }"
                 % names[-1])
    return "\n".join(o) + "\n"
for k in range(4):
    open("%s/svc%d.c" % (out, k), "w").write(src("svc%d" % k, k, 400, True))
for k, name in enumerate(["libfxcore", "libfxnet"]):
    open("%s/%s.c" % (out, name), "w").write(src(name[3:], 100 + k, 400, False))
PY
for k in 0 1 2 3; do gcc -O2 -g -o "$G/elf/svc$k" "$G/elf/svc$k.c" & done
for l in libfxcore libfxnet; do gcc -O2 -g -fPIC -shared -o "$G/elf/$l.so" "$G/elf/$l.c" & done
wait
fi
ELFS=("$G/elf/svc0" "$G/elf/svc1" "$G/elf/svc2" "$G/elf/svc3" "$G/elf/libfxcore.so" "$G/elf/libfxnet.so")
make -s -C "$ROOT" build/bench/store_load # with the project's flags and warnings
cp "$ROOT/build/bench/store_load" "$W/store_load"

# ---- the profiles, made before anything is timed ----
NSH=$(nproc)
if [ -s "$G/t0" ]; then
	T0_NS=$(cat "$G/t0")
else
	T0_NS=$((($(date +%s) / 10 * 10 - 3900) * 1000000000))
fi
export T0_NS
FROM=$((T0_NS / 1000000000))
TO=$((FROM + 3600))
g0=$(date +%s.%N)
SHARDS=()
for s in $(seq 0 $((NSH - 1))); do
	SHARDS+=("$G/shard$s")
	[ -s "$G/t0" ] && continue
	timeout 1800 "$W/store_load" gen "$G/shard$s" "$s" "$NSH" "${ELFS[@]}" >"$G/gen$s.out" 2>"$G/gen$s.err" &
done
wait
[ -s "$G/t0" ] || echo "$T0_NS" >"$G/t0"
g1=$(date +%s.%N)
cat "$G/gen"*.err >&2 || true
gsum() { sed -n "s/.*\<$1=\([0-9]*\).*/\1/p" "$G/gen"*.out | awk '{s += $1} END {print s}'; }
GEN_SAMPLES=$(gsum samples)
GEN_PROFILES=$(gsum profiles)
GEN_BYTES=$(gsum bytes)
log "data: $GEN_PROFILES profiles ($NSERIES series x $PROFILES, one per 10 s from $(date -u -d @$FROM +%H:%M:%SZ)), $GEN_SAMPLES samples ($(calc "round($GEN_SAMPLES / $GEN_PROFILES)") per profile, EVENTS=$EVENTS events), $STACKS distinct stacks of 20-60 frames over 6 build IDs x 1000 offsets, pid/comm labels ($PIDS pids per host); $(calc "round($GEN_BYTES / 1048576)") MiB gzip'd ($(calc "round($GEN_BYTES / $GEN_PROFILES / 1024, 1)") KiB per profile); $([ -n "${DATA:-}" ] && [ "$(calc "$g1 - $g0 < 1")" = True ] && echo "the files of the run before (DATA)" || echo "generated in $(calc "round($g1 - $g0, 1)") s on $NSH CPUs")"

# ---- ClickHouse ----
chq() { curl -s --max-time 300 "http://127.0.0.1:$CH_HTTP/" --data-binary "$1"; }
if [ "$BACKEND" = clickhouse ]; then
	command -v clickhouse-server >/dev/null || { echo "bench/store.sh: needs clickhouse-server"; exit 1; }
	mkdir -p "$W/ch/data" "$W/ch/tmp"
	CH_HTTP=$((20000 + RANDOM % 30000))
	cat >"$W/ch/users.xml" <<'EOF'
<yandex><profiles><default></default></profiles>
<users><default><password></password><networks><ip>127.0.0.1</ip></networks><profile>default</profile><quota>default</quota></default></users>
<quotas><default></default></quotas></yandex>
EOF
	cat >"$W/ch/config.xml" <<EOF
<yandex><logger><level>warning</level><console>1</console></logger>
<http_port>$CH_HTTP</http_port><tcp_port>$((CH_HTTP + 1))</tcp_port><listen_host>127.0.0.1</listen_host>
<path>$W/ch/data/</path><tmp_path>$W/ch/tmp/</tmp_path><mark_cache_size>1073741824</mark_cache_size>
<users_config>$W/ch/users.xml</users_config></yandex>
EOF
	# on the client's CPU, so fleetsymd's pinned CPU measures fleetsymd alone
	taskset -c "$CLIENT_CPU" clickhouse-server --config-file="$W/ch/config.xml" >"$W/ch/server.log" 2>&1 &
	CHPID=$!
	for _ in $(seq 600); do [ "$(chq 'SELECT 1' 2>/dev/null)" = 1 ] && break; sleep 0.1; done
	[ "$(chq 'SELECT 1')" = 1 ] || { echo "clickhouse-server did not start"; tail "$W/ch/server.log"; exit 1; }
	STORE_ARGS=(--store "clickhouse://127.0.0.1:$CH_HTTP/bench")
	log "backend: ClickHouse $(chq 'SELECT version()') on 127.0.0.1:$CH_HTTP"
fi

# ---- ingest ----
start_server "$W/data" "$W/ingest.log" warn
l0=$(cut -d' ' -f1 /proc/loadavg)
c0=$(cpu_of "$PID")
read -r b0 t0 <<<"$(cpustat "$SERVER_CPU")"
timeout 3600 taskset -c "$CLIENT_CPU" "$W/store_load" post 127.0.0.1 "$PORT" "$CONNS" 0 "${SHARDS[@]}" >"$W/post.out"
read -r b1 t1 <<<"$(cpustat "$SERVER_CPU")"
c1=$(cpu_of "$PID")
COMMITS=$(curl -s "$URL/metrics" | awk '$1 == "fleetsymd_ingest_commits_total" {print $2}')
# queries: ClickHouse on every CPU again, as it runs in production (fleetsymd stays pinned)
[ -z "$CHPID" ] || taskset -a -p -c "0-$(($(nproc) - 1))" "$CHPID" >/dev/null
l1=$(cut -d' ' -f1 /proc/loadavg)
eval "$(tr ' ' '\n' <"$W/post.out" | sed 's/^/P_/')"
[ "$P_failed" = 0 ] && [ "$P_profiles" = "$GEN_PROFILES" ] || { echo "ingest failed"; cat "$W/post.out"; exit 1; }
SCPU=$(calc "($c1 - $c0) / $TCK")
ING_SPS=$(calc "round($P_samples / $P_wall_s)")
ING_PPS=$(calc "round($P_profiles / $P_wall_s)")
ING_SPC=$(calc "round($P_samples / max($SCPU, 1e-9))")
ING_PPC=$(calc "round($P_profiles / max($SCPU, 1e-9))")
BUSY=$(calc "round(100 * ($b1 - $b0) / max($t1 - $t0, 1))")
SHARE=$(calc "round(100 * $SCPU / $P_wall_s)")

# ---- disk ----
if [ "$BACKEND" = clickhouse ]; then
	STORED=$(curl -s --max-time 30 "$URL/metrics" | awk '$1 == "fleetsymd_ingest_samples_total" {print $2}')
	DB=$(chq "SELECT sum(data_compressed_bytes) FROM system.parts WHERE database = 'bench' AND active")
	WAL=0
	BPS=$(calc "round($DB / $STORED, 2)")
	TABLES=$(chq "SELECT table, sum(data_compressed_bytes), sum(rows), count() FROM system.parts WHERE database = 'bench' AND active GROUP BY table ORDER BY 2 DESC" |
		awk -F'\t' '{printf "%s%s %.1f MiB (%d rows, %d parts)", (NR > 1 ? ", " : ""), $1, $2 / 1048576, $3, $4}')
	NPROF_ROWS=$(chq "SELECT count() FROM bench.profiles")
	NSTACKS=$(chq "SELECT uniqExact(id) FROM bench.stacks")
	NLOCS=$(chq "SELECT uniqExact(id) FROM bench.locations")
else
sqlite3 "$W/data/profiles.db" "PRAGMA busy_timeout=10000; PRAGMA wal_checkpoint(TRUNCATE);" >/dev/null
STORED=$(curl -s --max-time 30 "$URL/metrics" | awk '$1 == "fleetsymd_ingest_samples_total" {print $2}')
DB=$(stat -c %s "$W/data/profiles.db")
WAL=$(stat -c %s "$W/data/profiles.db-wal" 2>/dev/null || echo 0)
BPS=$(calc "round(($DB + $WAL) / $STORED, 2)")
TABLES=$(sqlite3 "$W/data/profiles.db" "SELECT name, sum(pgsize) FROM dbstat GROUP BY name ORDER BY 2 DESC LIMIT 8" 2>/dev/null |
	awk -F'|' '{printf "%s%s %.1f MiB", (NR > 1 ? ", " : ""), $1, $2 / 1048576}') || TABLES="(no dbstat)"
NPROF_ROWS=$(sqlite3 "$W/data/profiles.db" "SELECT count(*) FROM profiles" 2>/dev/null || echo '?')
NSTACKS=$(sqlite3 "$W/data/profiles.db" "SELECT count(*) FROM stacks" 2>/dev/null || echo '?')
NLOCS=$(sqlite3 "$W/data/profiles.db" "SELECT count(*) FROM locations" 2>/dev/null || echo '?')
fi

# ---- queries ----
ALL_Q='{}'
ONE_Q='{service="svc1",host="svc1-h03"}'
qurl() { printf '%s/api/v1/query?query=%s&from=%s&to=%s&format=json%s' "$URL" \
	"$(python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1]))' "$1")" "$FROM" "$TO" "${2:-}"; }
QLOG="$W/query.log"
: >"$QLOG"
# run_query SELECTOR [&MORE=PARAMS] -> "seconds ms_store ms_symbolize ms_render bytes"; answer
# kept in $W/answer.json
run_query() {
	local r n
	n=$(grep -c 'path=/api/v1/query' "$QLOG" || true)
	r=$(curl -s --max-time 300 -o "$W/answer.json" -w '%{http_code} %{time_total} %{size_download}' "$(qurl "$1" "${2:-}")")
	[ "${r%% *}" = 200 ] || { echo "query $1: HTTP ${r%% *}: $(head -c 300 "$W/answer.json")"; exit 1; }
	for _ in $(seq 50); do [ "$(grep -c 'path=/api/v1/query' "$QLOG" || true)" -gt "$n" ] && break; sleep 0.02; done
	local line
	line=$(grep 'path=/api/v1/query' "$QLOG" | tail -1)
	echo "$(echo "$r" | cut -d' ' -f2) $(sed -n 's/.*ms_store=\([0-9.]*\).*/\1/p' <<<"$line") $(sed -n 's/.*ms_symbolize=\([0-9.]*\).*/\1/p' <<<"$line") $(sed -n 's/.*ms_render=\([0-9.]*\).*/\1/p' <<<"$line") $(echo "$r" | cut -d' ' -f3)"
}
check_answer() { # EXPECTED_PROFILES
	python3 - "$W/answer.json" "$1" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
if d["profiles"] != int(sys.argv[2]):
    sys.exit("answer has %d profiles, expected %s" % (d["profiles"], sys.argv[2]))
print("%d profiles, total %d, %d locations (%d unknown), %d nodes" % (
    d["profiles"], d["total"], d["locations"], d["unknown_locations"], d["nodes"]))
PY
}
drop_cache() { python3 - "$W/data" "$W/ch/data" <<'PY'
import os, sys
def drop(p):
    fd = os.open(p, os.O_RDONLY)
    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    os.close(fd)
if os.path.isdir(sys.argv[1]):
    for f in os.listdir(sys.argv[1]):
        p = os.path.join(sys.argv[1], f)
        if f.startswith("profiles.db") and os.path.isfile(p):
            drop(p)
for root, _, files in os.walk(sys.argv[2]):  # ClickHouse's parts (BACKEND=clickhouse)
    for f in files:
        drop(os.path.join(root, f))
PY
	if [ "$BACKEND" = clickhouse ]; then
		chq "SYSTEM DROP MARK CACHE" >/dev/null
		chq "SYSTEM DROP UNCOMPRESSED CACHE" >/dev/null
	fi
}
# median of the lines on stdin, field by field: "s store sym render bytes"
median() { python3 -c '
import sys, statistics
rows = [[float(x) for x in l.split()] for l in sys.stdin if l.strip()]
cols = list(zip(*rows))
print(" ".join("%g" % statistics.median(c) for c in cols), "n=%d" % len(rows), "min=%g" % min(cols[0]), "max=%g" % max(cols[0]))'; }
fmt() { # "s store sym render bytes n= min= max=" -> text
	awk '{printf "%.0f ms (store %.0f, symbolize %.0f, render %.0f ms; %.1f MiB; %s, min %.0f, max %.0f ms)", $1*1000, $2, $3, $4, $5/1048576, $6, substr($7,5)*1000, substr($8,5)*1000}'; }
# cold SELECTOR: fleetsymd restarted and the store's files dropped from the page cache, one
# query; COLD_N times, into $W/times (not in a subshell: start_server sets PID and URL)
cold() {
	: >"$W/times"
	for _ in $(seq $COLD_N); do
		stop_server
		drop_cache
		start_server "$W/data" "$QLOG" info
		run_query "$1" >>"$W/times"
	done
}
warm() { # SELECTOR [&MORE=PARAMS]: WARM_N times on the running server (after one untimed query)
	: >"$W/times"
	run_query "$1" "${2:-}" >/dev/null
	for _ in $(seq $WARM_N); do run_query "$1" "${2:-}" >>"$W/times"; done
}
stop_server
cold "$ALL_Q"; ALL_COLD=$(median <"$W/times")
warm "$ALL_Q"; ALL_WARM=$(median <"$W/times")
ALL_INFO=$(check_answer "$((NSERIES * 360 < GEN_PROFILES ? NSERIES * 360 : GEN_PROFILES))")
UI='&max_nodes=6000' # what the web UI asks for (symbolizer/webui/app.js MAX_NODES)
warm "$ALL_Q" "$UI"; ALL_UI=$(median <"$W/times")
cold "$ONE_Q"; ONE_COLD=$(median <"$W/times")
warm "$ONE_Q"; ONE_WARM=$(median <"$W/times")
ONE_INFO=$(check_answer "$((360 < PROFILES ? 360 : PROFILES))")
l2=$(cut -d' ' -f1 /proc/loadavg)

# the bare merge in ClickHouse, the floor of the query's store part
BARE=
if [ "$BACKEND" = clickhouse ]; then
	TID=$(chq "SELECT id FROM bench.types WHERE name = lower(hex('cpu')) LIMIT 1")
	BQ="SELECT stack, sum(value) AS v FROM bench.samples WHERE type = $TID AND ts >= ${FROM}000000000 AND ts < ${TO}000000000 GROUP BY stack FORMAT Null"
	chq "$BQ" >/dev/null
	BARE=$(for _ in $(seq $WARM_N); do curl -s -o /dev/null -w '%{time_total}\n' "http://127.0.0.1:$CH_HTTP/" --data-binary "$BQ"; done |
		python3 -c 'import sys, statistics; print(round(1000 * statistics.median(float(x) for x in sys.stdin)))')
fi

PERF_ING= PERF_Q=
if [ "$PERF" = 1 ]; then
	perf_tree() { # DATA -> inclusive (children) and self share per function, DWARF call graphs
		timeout 300 perf report -i "$1" --children --sort symbol --percent-limit 2.5 --stdio -g none 2>/dev/null |
			grep -v '^#' | grep -v '^$' | grep -v '\] 0x[0-9a-f]* ' | sed 's/ *- *- *$//' | head -45 | sed 's/^/    /'
	}
	# warm all-series queries on the running server
	run_query "$ALL_Q" >/dev/null
	perf record -q -F 499 --call-graph dwarf,16384 -p "$PID" -o "$W/perf-query.data" >/dev/null 2>&1 &
	PERFPID=$!
	sleep 0.5
	for _ in 1 2 3; do run_query "$ALL_Q" >/dev/null; done
	kill -INT "$PERFPID"; wait "$PERFPID" 2>/dev/null || true; PERFPID=
	PERF_Q=$(perf_tree "$W/perf-query.data")
fi

SYM_FIRST= SYM_WARM= SYM_COLD= SYM_ONE= SYM_INFO= SYM_UI=
if [ "$SYMS" = 1 ]; then
	for e in "${ELFS[@]}"; do
		bid=$(readelf -n "$e" | sed -n 's/^ *Build ID: *\([0-9a-f]*\)$/\1/p')
		code=$(curl -s --max-time 60 -o /dev/null -w '%{http_code}' -X PUT --data-binary "@$e" "$URL/api/v1/debuginfo/$bid")
		[ "$code" = 201 ] || [ "$code" = 200 ] || { echo "upload of $e: HTTP $code"; exit 1; }
	done
	SYM_FIRST=$(run_query "$ALL_Q" | median)
	SYM_INFO=$(check_answer "$((NSERIES * 360 < GEN_PROFILES ? NSERIES * 360 : GEN_PROFILES))")
	sleep 2 # the background index builds
	warm "$ALL_Q"; SYM_WARM=$(median <"$W/times")
	warm "$ALL_Q" "$UI"; SYM_UI=$(median <"$W/times")
	warm "$ONE_Q"; SYM_ONE=$(median <"$W/times")
	cold "$ALL_Q"; SYM_COLD=$(median <"$W/times")
fi

if [ "$PERF" = 1 ]; then
	# a separate short ingest into a scratch store: the timed numbers above are unperturbed
	stop_server
	start_server "$W/data2" "$W/ingest2.log" warn
	perf record -q -F 299 --call-graph dwarf,16384 -p "$PID" -o "$W/perf-ingest.data" >/dev/null 2>&1 &
	PERFPID=$!
	sleep 0.5
	timeout 600 taskset -c "$CLIENT_CPU" "$W/store_load" post 127.0.0.1 "$PORT" "$CONNS" 2000 "${SHARDS[@]}" >"$W/post2.out"
	kill -INT "$PERFPID"; wait "$PERFPID" 2>/dev/null || true; PERFPID=
	PERF_ING=$(perf_tree "$W/perf-ingest.data")
fi
stop_server

# ---- report ----
verdict() { python3 -c "print('PASS' if $1 else 'FAIL')"; }
ms() { awk '{printf "%.0f", $1 * 1000}' <<<"$1"; }
log ""
log "ingest ($CONNS client connections on CPU $CLIENT_CPU, fleetsymd on CPU $SERVER_CPU): $P_profiles profiles, $P_samples samples, $(calc "round($P_bytes / 1048576)") MiB in $(calc "round($P_wall_s, 2)") s"
log "  wall clock:          $ING_SPS samples/s, $ING_PPS profiles/s"
log "  per server CPU-s:    $ING_SPC samples/s, $ING_PPC profiles/s ($(calc "round(1e6 * $SCPU / $P_samples, 2)") us per sample, $(calc "round(1e3 * $SCPU / $P_profiles, 2)") ms per profile; server CPU $(calc "round($SCPU, 2)") s = $SHARE% of the wall time; CPU $SERVER_CPU was $BUSY% busy in all; client CPU $P_client_cpu_s s)"
log "  group commit:        ${COMMITS:-?} commits ($(calc "round($P_profiles / max(${COMMITS:-0}, 1), 1)") profiles per commit; each is one transaction, or with ClickHouse one INSERT per table)"
log "  load average:        $l0 before, $l1 after ingest, $l2 after the queries"
if [ "$BACKEND" = clickhouse ]; then
	log "disk: ClickHouse system.parts data_compressed_bytes $DB, $STORED samples stored: $BPS bytes per sample"
else
	log "disk: profiles.db $DB + WAL $WAL bytes after a checkpoint, $STORED samples stored: $BPS bytes per sample"
fi
log "  profile rows $NPROF_ROWS, stacks $NSTACKS, locations $NLOCS; by table: $TABLES"
log "queries, format=json, window [$FROM, $TO) (1 h):"
log "  all $NSERIES series, no debug info: $ALL_INFO"
log "    cold  $(fmt <<<"$ALL_COLD")"
log "    warm  $(fmt <<<"$ALL_WARM")"
[ -n "$BARE" ] && log "    bare ClickHouse GROUP BY stack of the same hour (warm, median of $WARM_N): $BARE ms"
log "    warm, max_nodes=6000 (the web UI's request)  $(fmt <<<"$ALL_UI")"
log "  one series $ONE_Q: $ONE_INFO"
log "    cold  $(fmt <<<"$ONE_COLD")"
log "    warm  $(fmt <<<"$ONE_WARM")"
if [ "$SYMS" = 1 ]; then
	log "  with the 6 ELFs uploaded (debug info): $SYM_INFO"
	log "    all, first query after the upload  $(fmt <<<"$SYM_FIRST")"
	log "    all, warm                          $(fmt <<<"$SYM_WARM")"
	log "    all, warm, max_nodes=6000          $(fmt <<<"$SYM_UI")"
	log "    all, cold (restart, page cache dropped; symbol indexes on disk)  $(fmt <<<"$SYM_COLD")"
	log "    one series, warm                   $(fmt <<<"$SYM_ONE")"
fi
log ""
log "targets:"
if [ "$BACKEND" = clickhouse ]; then
	# the ClickHouse backend's own (issue 14): ingest per fleetsymd core, and the warm flame
	# graph within 1.5x of the bare GROUP BY plus our render time
	REND=$(awk '{printf "%.0f", $4}' <<<"$ALL_WARM")
	log "  ingest >= 500,000 samples/s per fleetsymd CPU-second: $(verdict "$ING_SPC >= 5e5") ($ING_SPC/s)"
	log "  warm flame graph <= 1.5 x (bare GROUP BY + render): $(verdict "$(ms "$ALL_WARM") <= 1.5 * ($BARE + $REND)") ($(ms "$ALL_WARM") ms against 1.5 x ($BARE + $REND) = $(calc "round(1.5 * ($BARE + $REND))") ms)"
else
	log "  ingest >= 1,000,000 samples/s per core:  $(verdict "$ING_SPS >= 1e6") by the wall clock on one pinned core ($ING_SPS/s); $(verdict "$ING_SPC >= 1e6") per server CPU-second ($ING_SPC/s)"
	log "  <= 2 bytes per sample on disk:           $(verdict "$BPS <= 2") ($BPS)"
fi
log "  1 h x $NSERIES series flame graph warm <= 200 ms: $(verdict "$(ms "$ALL_WARM") <= 200") ($(ms "$ALL_WARM") ms without debug info$([ "$SYMS" = 1 ] && echo ", $(ms "$SYM_WARM") ms symbolized"); the web UI's max_nodes=6000: $(ms "$ALL_UI") ms)"
if [ "$PERF" = 1 ]; then
	log ""
	log "perf of fleetsymd (children = inclusive, self; DWARF call graphs) during a 2,000-profile ingest into a scratch store:"
	log "$PERF_ING"
	log "perf of fleetsymd (children, self) during 3 warm all-series queries (no debug info):"
	log "$PERF_Q"
fi
echo "results in $OUT"
