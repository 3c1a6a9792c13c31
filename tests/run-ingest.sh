#!/usr/bin/env bash
# POST /api/v1/ingest and the store's listings against a real fleetsymd: a Go runtime/pprof CPU
# profile (built and run here, with a pprof label) is ingested and /types, /labels,
# /labels/NAME/values, /series and /timeline answer with its labels and exact totals (checked
# against `go tool pprof -raw` of the same file); an acknowledged ingest survives kill -9;
# the token is required; garbage, truncated gzip, a gzip bomb, bad references, bad selectors,
# bad times and bodies over --max-ingest-size (declared or chunked) get 400/413 with a JSON
# message and store nothing; the ingest counters move. Ends with the ingest rate for
# agent-like profiles of ~1,000 samples (tests/lib/ingest_bench.py; bench/ingest.sh runs more).
set -uo pipefail
. "$(dirname "$0")/lib/service.sh"
need go sqlite3

cd "$T"
export GOCACHE="$T/gocache" GOPATH="$T/gopath" GOFLAGS= GO111MODULE=off GOTOOLCHAIN=local
mkdir -p burn
cat >burn/main.go <<'EOF'
package main

import (
	"context"
	"os"
	"runtime/pprof"
	"time"
)

var sink uint64

//go:noinline
func mix(x uint64) uint64 { return x*6364136223846793005 + 1442695040888963407 }

//go:noinline
func burnLabeled(d time.Duration) {
	for end := time.Now().Add(d); time.Now().Before(end); {
		for i := 0; i < 10000; i++ {
			sink = mix(sink)
		}
	}
}

//go:noinline
func burnPlain(d time.Duration) {
	for end := time.Now().Add(d); time.Now().Before(end); {
		for i := 0; i < 10000; i++ {
			sink = mix(sink) ^ 1
		}
	}
}

func main() {
	f, err := os.Create(os.Args[1])
	if err != nil {
		panic(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		panic(err)
	}
	pprof.Do(context.Background(), pprof.Labels("span_id", "abc123"), func(context.Context) {
		burnLabeled(700 * time.Millisecond)
	})
	burnPlain(400 * time.Millisecond)
	pprof.StopCPUProfile()
	f.Close()
}
EOF
(cd burn && go build -o ../burn-bin main.go) || { echo "FAILED: go build"; exit 1; }
./burn-bin cpu.pprof || { echo "FAILED: the Go program did not run"; exit 1; }
go tool pprof -raw cpu.pprof >raw.txt 2>/dev/null || { echo "FAILED: go tool pprof -raw"; exit 1; }
# -raw: "PeriodType: ...", "Samples:", "samples/count cpu/nanoseconds", then "  N  NS: ids" lines
read -r GO_COUNT GO_NS <<<"$(awk '/^Samples:/ {s = 1; next} s && /^ *[0-9]+ +[0-9]+: / {c += $1; n += $2 + 0} /^Locations/ {s = 0} END {print c, n}' raw.txt)"
[ "${GO_COUNT:-0}" -gt 0 ] || { echo "FAILED: the Go profile has no samples"; cat raw.txt | head; exit 1; }
ok "Go CPU profile: $GO_COUNT samples, $GO_NS ns ($(stat -c %s cpu.pprof) bytes gzip'd)"

echo "t0ken-$RANDOM" >token
start_fleetsymd ingest --data-dir "$T/data" --token-file token --log-level info
AUTH=(-H "Authorization: Bearer $(cat token)")
DB="$T/data/profiles.db"
rows() { sqlite3 "file:$DB?mode=ro" "SELECT count(*) FROM $1"; }

Q='query=%7Bservice%3D%22burn%22%7D' # {service="burn"}

# ---- ingest the Go profile ----
expect "no token" 401 POST "/api/v1/ingest?service=burn" --data-binary @cpu.pprof
expect "wrong token" 401 POST "/api/v1/ingest?service=burn" --data-binary @cpu.pprof \
	-H "Authorization: Bearer nope"
expect "ingest Go profile" 200 POST "/api/v1/ingest?service=burn&host=h1&version=v2.4.1" \
	--data-binary @cpu.pprof "${AUTH[@]}" -H "Content-Type: application/octet-stream"
check "2 profile rows (samples/count, cpu/nanoseconds)" 'd["profiles"] == 2 and d["samples"] > 0'
[ "$(rows profiles)" = 2 ] && ok "2 rows in profiles" || fail "rows: $(rows profiles)"

expect types 200 GET /api/v1/types
check "types: cpu/nanoseconds and samples/count" \
	'sorted((t["name"], t["unit"]) for t in d["types"]) == [("cpu", "nanoseconds"), ("samples", "count")]'
expect labels 200 GET /api/v1/labels
check "labels: series and sample labels" 'd["labels"] == ["host", "service", "span_id", "version"]'
expect "label values" 200 GET /api/v1/labels/service/values
check "service values" 'd["values"] == ["burn"]'
expect "sample label values" 200 GET /api/v1/labels/span_id/values
check "span_id values" 'd["values"] == ["abc123"]'
expect "values of an unknown label" 200 GET /api/v1/labels/nope/values
check "no values" 'd["values"] == []'
expect series 200 GET "/api/v1/series?$Q&from=now-10m&to=now%2B1m"
check "one series with its labels" \
	'len(d["series"]) == 1 and d["series"][0]["labels"] == {"host": "h1", "service": "burn", "version": "v2.4.1"}'
expect "series by regex" 200 GET "/api/v1/series?query=%7Bversion%3D~%22v2.*%22%7D&from=now-10m"
check "regex selects it" 'len(d["series"]) == 1'
expect "series by an anchored regex" 200 GET "/api/v1/series?query=%7Bversion%3D~%22v2%22%7D&from=now-10m"
check "v2 does not match v2.4.1" 'd["series"] == []'
expect "series of another service" 200 GET "/api/v1/series?query=%7Bservice%3D%22x%22%7D&from=now-10m"
check "none" 'd["series"] == []'
expect "series in an old window" 200 GET "/api/v1/series?$Q&from=now-3h&to=now-2h"
check "none in that window" 'd["series"] == []'

expect timeline 200 GET "/api/v1/timeline?$Q&from=now-10m&to=now%2B1m&step=1m&type=cpu"
check "timeline cpu total = go tool pprof -raw total ($GO_NS ns)" \
	"sum(v for t, v in d['points']) == $GO_NS and len(d['points']) == 11 and d['step'] == 60"
expect "timeline of samples" 200 GET "/api/v1/timeline?$Q&from=now-10m&to=now%2B1m&step=1m&type=samples"
check "timeline samples total = $GO_COUNT" "sum(v for t, v in d['points']) == $GO_COUNT"
expect "timeline by a sample label" 200 GET \
	"/api/v1/timeline?query=%7Bspan_id%3D%22abc123%22%7D&from=now-10m&to=now%2B1m&step=1m&type=cpu"
check "labelled part: > 0 and < total" \
	"0 < sum(v for t, v in d['points']) < $GO_NS"
LABELLED=$(python3 -c "import json; print(sum(v for t, v in json.load(open('$T/body'))['points']))")
expect "timeline without the label" 200 GET \
	"/api/v1/timeline?query=%7Bspan_id%21%3D%22abc123%22%7D&from=now-10m&to=now%2B1m&step=1m&type=cpu"
check "labelled + unlabelled = total" "sum(v for t, v in d['points']) + $LABELLED == $GO_NS"
expect "timeline default step and type" 200 GET "/api/v1/timeline?$Q"
check "10 s steps over the last hour, cpu" \
	"len(d['points']) == 360 and sum(v for t, v in d['points']) == $GO_NS"

# a pprof answer over a 2 h window keeps the profile's own time: go tool pprof prints the same
# "Duration: ..., Total samples = ... (N%)" header for the answer as for the original
expect "pprof answer over 2 h" 200 GET "/api/v1/query?$Q&from=now-2h&to=now%2B1m&format=pprof"
cp "$T/body" answer.pb.gz
header() { PPROF_TMPDIR=$T HOME=$T go tool pprof -top -nodecount=1 "$1" 2>/dev/null | grep '^Duration:'; }
H_GO=$(header cpu.pprof) H_FS=$(header answer.pb.gz)
if [ -n "$H_GO" ] && [ "$H_GO" = "$H_FS" ]; then
	ok "go tool pprof -top on the answer: $H_FS (the original says the same)"
else
	fail "go tool pprof -top header: answer '$H_FS', original '$H_GO'"
fi

# ---- bad parameters ----
expect "bad selector" 400 GET "/api/v1/series?query=%7Bservice%3Dburn%7D"
check "message with position" '"position 10" in d["error"]'
expect "bad regex" 400 GET "/api/v1/timeline?query=%7Ba%3D~%22(%22%7D"
expect "bad time" 400 GET "/api/v1/series?from=yesterday"
expect "from after to" 400 GET "/api/v1/timeline?from=now&to=now-1h"
check "says so" '"must be before" in d["error"]'
expect "bad step" 400 GET "/api/v1/timeline?step=fast"
expect "too many points" 400 GET "/api/v1/timeline?from=now-7d&step=1s"
expect "POST on a listing" 405 POST /api/v1/labels
expect "GET on ingest" 405 GET /api/v1/ingest

# ---- garbage: 400, nothing stored ----
P0=$(rows profiles) S0=$(rows stacks) L0=$(rows locations)
head -c 4000 /dev/urandom >junk
expect "garbage body" 400 POST "/api/v1/ingest?service=junk" --data-binary @junk "${AUTH[@]}"
check "says it is not pprof" '"not a pprof profile" in d["error"]'
head -c 300 cpu.pprof >trunc.gz
expect "truncated gzip" 400 POST "/api/v1/ingest?service=junk" --data-binary @trunc.gz "${AUTH[@]}"
check "says truncated" '"truncated gzip" in d["error"]'
gzip -dc cpu.pprof >plain.pb
head -c $(($(stat -c %s plain.pb) - 7)) plain.pb >trunc.pb
expect "truncated pprof" 400 POST "/api/v1/ingest?service=junk" --data-binary @trunc.pb "${AUTH[@]}"
expect "gzip header, plain body" 400 POST "/api/v1/ingest?service=junk" --data-binary @trunc.pb \
	"${AUTH[@]}" -H "Content-Encoding: gzip"
expect "empty body" 400 POST "/api/v1/ingest?service=junk" --data-binary '' "${AUTH[@]}"
python3 - "$TESTS/lib" <<'PY'
import sys
sys.path.insert(0, sys.argv[1])
import mkpprof
body = mkpprof.encode({"mappings": [{"build_id": "ab" * 20, "filename": "/x"}],
                       "samples": [{"frames": [[0, 0x10]], "value": 1}]})
# a sample pointing at location id 99: patch the packed location id 1 -> 99 in the sample
i = body.index(b"\x12")  # field 2 (sample), first occurrence after the sample type
open("badref.pb", "wb").write(body.replace(b"\x0a\x01\x01\x12\x01\x01", b"\x0a\x01\x63\x12\x01\x01", 1))
PY
expect "reference out of range" 400 POST "/api/v1/ingest?service=junk" --data-binary @badref.pb "${AUTH[@]}"
check "names the location" '"location id 99" in d["error"]'
expect "bad series label name" 400 POST "/api/v1/ingest?1x=y" --data-binary @cpu.pprof "${AUTH[@]}"
if [ "$(rows profiles)" = "$P0" ] && [ "$(rows stacks)" = "$S0" ] && [ "$(rows locations)" = "$L0" ]; then
	ok "nothing stored by the refused ingests ($P0 profiles, $S0 stacks, $L0 locations)"
else
	fail "refused ingests stored rows: $(rows profiles) profiles, $(rows stacks) stacks"
fi

# ---- durable: kill -9 right after the 200 ----
expect "second ingest" 200 POST "/api/v1/ingest?service=burn&host=h1&version=v2.4.1" \
	--data-binary @cpu.pprof "${AUTH[@]}"
kill -9 "$FSD_PID"
wait "$FSD_PID" 2>/dev/null
start_fleetsymd ingest2 --data-dir "$T/data" --token-file token
expect "timeline after kill -9 and restart" 200 GET "/api/v1/timeline?$Q&from=now-10m&to=now%2B1m&step=1m&type=cpu"
check "both profiles there: 2 x $GO_NS" "sum(v for t, v in d['points']) == 2 * $GO_NS"

# ---- size caps: declared, chunked, gzip bomb ----
stop_pid "$FSD_PID" || fail "fleetsymd did not exit cleanly (rc $?; sanitizer report in its log?)"
start_fleetsymd small --data-dir "$T/data" --max-ingest-size 100k
P0=$(rows profiles)
head -c 200000 /dev/zero >big
expect "over --max-ingest-size (Content-Length)" 413 POST "/api/v1/ingest?service=big" --data-binary @big
expect "over --max-ingest-size (chunked)" 413 POST "/api/v1/ingest?service=big" \
	-H "Transfer-Encoding: chunked" --data-binary @big
head -c 50000000 /dev/zero | gzip -9 >bomb.gz
expect "gzip bomb ($(stat -c %s bomb.gz) bytes -> 50 MB)" 413 POST "/api/v1/ingest?service=big" \
	--data-binary @bomb.gz
check "says decompressed" '"decompresses to more than" in d["error"]'
[ "$(rows profiles)" = "$P0" ] && ok "nothing stored" || fail "oversized ingests stored rows"
expect "under the cap still fine (no token configured)" 200 POST "/api/v1/ingest?service=small" \
	--data-binary @cpu.pprof
curl -s "$URL/metrics" >metrics.txt
for m in 'fleetsymd_ingest_profiles_total 1' 'fleetsymd_ingest_errors_total{reason="too_big"} 3' \
	'fleetsymd_http_requests_total{endpoint="ingest",status="413"} 3' \
	'fleetsymd_http_requests_total{endpoint="ingest",status="200"} 1'; do
	grep -qF "$m" metrics.txt && ok "metric: $m" || fail "metric missing: $m ($(grep ingest metrics.txt | head -20))"
done
grep -q '^fleetsymd_ingest_samples_total [1-9]' metrics.txt && ok "samples counted" || fail "samples not counted"

# ---- idempotency: a retry with the same key is stored once ----
before=$(rows profiles)
expect "ingest with a key" 200 POST "/api/v1/ingest?service=idem" --data-binary @cpu.pprof \
	"${AUTH[@]}" -H "Idempotency-Key: run-ingest:1"
check "first: stored" '"duplicate" not in d and d["profiles"] == 2'
expect "the same key again" 200 POST "/api/v1/ingest?service=idem" --data-binary @cpu.pprof \
	"${AUTH[@]}" -H "Idempotency-Key: run-ingest:1"
check "again: a duplicate, nothing stored" 'd.get("duplicate") is True and d["profiles"] == 0'
expect "a bad key" 400 POST "/api/v1/ingest?service=idem" --data-binary @cpu.pprof \
	"${AUTH[@]}" -H "Idempotency-Key: no spaces"
[ "$(rows profiles)" = $((before + 2)) ] && ok "stored once: $before -> $(rows profiles) rows" ||
	fail "rows $before -> $(rows profiles)"

# ---- throughput: agent-like profiles of ~1,000 samples ----
stop_pid "$FSD_PID" || fail "fleetsymd did not exit cleanly (rc $?; sanitizer report in its log?)"
start_fleetsymd bench --data-dir "$T/bench" --log-level warn
python3 "$TESTS/lib/ingest_bench.py" "$URL" "$FSD_PID" --profiles 100 --clients 1,4
[ $? = 0 ] || fail "ingest benchmark"
curl -s "$URL/metrics" | grep -E '^fleetsymd_ingest_(profiles|samples)_total'
du -k "$T/bench" | tail -1 | awk '{print "ok   store size after the benchmark: " $1 " KiB"}'
finish
