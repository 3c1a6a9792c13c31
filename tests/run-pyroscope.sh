#!/usr/bin/env bash
# run alone
# Pyroscope's POST /ingest against a real fleetsymd:
#   - the unchanged Pyroscope Node.js client (@pyroscope/nodejs, pinned in
#     tests/pyroscope/package-lock.json) profiles a program with a known hot function and pushes
#     to fleetsymd with basic auth (the token as password): top, the flame graph (folded) and a
#     diff show the function; the client's tags are labels one can select on;
#   - folded and lines bodies round-trip sample for sample through /api/v1/query?format=folded,
#     their units kept apart as sample types;
#   - pprof as multipart/form-data (profile + sample_type_config), as the Go SDK and Alloy send;
#   - tokens: bearer, basic with the token as password; anything else 401;
#   - bad input (unknown format, jfr, bad name, mismatched multipart, garbage folded lines)
#     gets a 4xx with a JSON message and stores nothing.
set -uo pipefail
. "$(dirname "$0")/lib/service.sh"
need node npm curl sqlite3 python3

top=$(cd "$TESTS/.." && pwd)
NODE_DIR=${PYROSCOPE_NODE_DIR:-$top/build/pyroscope-node}
npm_ci "$TESTS/pyroscope" "$NODE_DIR" @pyroscope/nodejs
cp "$TESTS/pyroscope/hot.js" "$NODE_DIR/hot.js"

cd "$T"
echo "pyr0-$RANDOM" >token
TOKEN=$(cat token)
start_fleetsymd pyro --data-dir "$T/data" --token-file token --log-level info
DB="$T/data/profiles.db"
rows() { sqlite3 "file:$DB?mode=ro" "SELECT count(*) FROM profiles" 2>/dev/null || echo 0; }
BEARER=(-H "Authorization: Bearer $TOKEN")

q() { python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$1"; }

# ---- bad input first: nothing may be stored ----
printf 'main;work 3\n' >ok.folded
expect "no token" 401 POST "/ingest?name=app&format=folded" --data-binary @ok.folded
expect "basic auth, wrong password" 401 POST "/ingest?name=app&format=folded" \
	--data-binary @ok.folded -u "user:nope"
expect "unknown format" 400 POST "/ingest?name=app&format=speedscope" --data-binary @ok.folded "${BEARER[@]}"
expect "jfr is refused clearly" 415 POST "/ingest?name=app&format=jfr" --data-binary @ok.folded "${BEARER[@]}"
expect "no name" 400 POST "/ingest?format=folded" --data-binary @ok.folded "${BEARER[@]}"
expect "bad name: unclosed labels" 400 POST "/ingest?name=$(q 'app{env=prod')&format=folded" \
	--data-binary @ok.folded "${BEARER[@]}"
expect "bad name: label without =" 400 POST "/ingest?name=$(q 'app{env}')&format=folded" \
	--data-binary @ok.folded "${BEARER[@]}"
expect "bad name: empty app" 400 POST "/ingest?name=$(q '{env=prod}')&format=folded" \
	--data-binary @ok.folded "${BEARER[@]}"
expect "bad units" 400 POST "/ingest?name=app&format=folded&units=furlongs" \
	--data-binary @ok.folded "${BEARER[@]}"
printf 'main;work 3\nthis line has no count\n' >garbage.folded
expect "garbage folded line" 400 POST "/ingest?name=app&format=folded" --data-binary @garbage.folded "${BEARER[@]}"
grep -q "line 2" body && ok "the message names the line" || fail "no line number: $(cat body)"
printf 'main;;work 3\n' >empty-frame.folded
expect "empty frame" 400 POST "/ingest?name=app&format=folded" --data-binary @empty-frame.folded "${BEARER[@]}"
printf 'main;work -3\n' >neg.folded
expect "negative count" 400 POST "/ingest?name=app&format=folded" --data-binary @neg.folded "${BEARER[@]}"
printf '\n\n' >blank.folded
expect "no stacks" 400 POST "/ingest?name=app&format=folded" --data-binary @blank.folded "${BEARER[@]}"
expect "multipart with another boundary" 400 POST "/ingest?name=app&format=pprof" \
	-H "Content-Type: multipart/form-data; boundary=XYZ" --data-binary @ok.folded "${BEARER[@]}"
printf -- '--XYZ\r\nContent-Disposition: form-data; name="profile"; filename="p"\r\n\r\nabc\r\n' >open.mp
expect "multipart never closed" 400 POST "/ingest?name=app&format=pprof" \
	-H "Content-Type: multipart/form-data; boundary=XYZ" --data-binary @open.mp "${BEARER[@]}"
printf -- '--XYZ\r\nContent-Disposition: form-data; name="other"\r\n\r\nabc\r\n--XYZ--\r\n' >noprof.mp
expect "multipart without a profile part" 400 POST "/ingest?name=app&format=pprof" \
	-H "Content-Type: multipart/form-data; boundary=XYZ" --data-binary @noprof.mp "${BEARER[@]}"
expect "multipart profile that is not pprof" 400 POST "/ingest?name=app&format=pprof" \
	-F "profile=@ok.folded" "${BEARER[@]}"
[ "$(rows)" = 0 ] && ok "nothing stored by the refusals" || fail "rows after refusals: $(rows)"

# ---- folded and lines round-trip sample for sample ----
cat >in.folded <<'EOF'
main;parse;lex 17
main;parse 5
main;render;draw;blit 40
main;render;draw 3
start_thread;worker;crunch 120
main;parse;lex 1
EOF
expect "folded ingest" 200 POST "/ingest?name=$(q 'folder.cpu{env=ci,otel.scope.name=x}')&format=folded&sampleRate=100&from=$(date +%s)&until=$(($(date +%s) + 10))&spyName=perf" \
	--data-binary @in.folded "${BEARER[@]}"
check "two sample types (samples, cpu)" 'd["profiles"] == 2'
expect "folded back" 200 GET "/api/v1/query?query=$(q '{service_name="folder"}')&from=now-1h&to=now%2B1h&type=samples&format=folded"
awk '{c[$1] += $2} END {for (k in c) print k, c[k]}' in.folded | sort >want.folded
sort body >got.folded
cmp -s want.folded got.folded && ok "folded equals the input, sample for sample ($(wc -l <want.folded) stacks)" ||
	fail "folded differs: $(diff want.folded got.folded | head)"
expect "cpu nanoseconds from sampleRate" 200 GET "/api/v1/query?query=$(q '{service_name="folder"}')&from=now-1h&to=now%2B1h&type=cpu&format=json"
check "cpu total = samples * 10ms" 'd["total"] == 186 * 10000000'
expect "labels from the name" 200 GET "/api/v1/series?query=$(q '{service_name="folder"}')&from=now-1h&to=now%2B1h"
check "service_name, env, otel_scope_name, pyroscope_spy" \
	'd["series"][0]["labels"] == {"service_name": "folder", "env": "ci", "otel_scope_name": "x", "pyroscope_spy": "perf"}'

printf 'main;alloc\nmain;alloc\nmain;other\n' >in.lines
expect "lines ingest, objects" 200 POST "/ingest?name=liner&format=lines&units=objects" \
	--data-binary @in.lines "${BEARER[@]}"
expect "lines back" 200 GET "/api/v1/query?query=$(q '{service_name="liner"}')&from=now-1h&to=now%2B1h&type=alloc_objects&format=folded"
[ "$(sort body | tr '\n' '|')" = "main;alloc 2|main;other 1|" ] && ok "lines counted once each" ||
	fail "lines: $(cat body)"
expect types 200 GET /api/v1/types
check "units kept apart as types" \
	'{"samples", "cpu", "alloc_objects"} <= {t["name"] for t in d["types"]}'

# ---- the real client ----
ROWS0=$(rows)
timeout 120 node "$NODE_DIR/hot.js" "$URL" "$TOKEN" 9 >node.log 2>&1 ||
	fail "the Node.js program failed: $(tail -5 node.log)"
[ "$(rows)" -gt "$ROWS0" ] && ok "the client pushed: $(($(rows) - ROWS0)) profile rows" ||
	fail "nothing stored from the client; fleetsymd: $(grep -i ingest "$T/pyro.log" | tail -3)"
grep '"/ingest"\|/ingest' "$T/pyro.log" | grep -v " 200 " | head -3
expect "types after the client" 200 GET /api/v1/types
check "the wall profiler's type wall (nanoseconds) and the heap profiler's inuse_space" \
	'{("wall", "nanoseconds"), ("inuse_space", "bytes")} <= {(t["name"], t["unit"]) for t in d["types"]}'
NODETYPE=wall
SEL=$(q '{service_name="nodehot",region="eu-test"}')
expect "label values: region" 200 GET /api/v1/labels/region/values
check "the client's tag region is a label" '"eu-test" in d["values"]'
expect "label values: build" 200 GET /api/v1/labels/build/values
check "the client's tag build is a label" '"b42" in d["values"]'
expect "top" 200 GET "/api/v1/query?query=$SEL&from=now-10m&to=now%2B1m&type=$NODETYPE&format=top"
grep -q fleetsymHotLoop body && ok "top shows fleetsymHotLoop: $(grep fleetsymHotLoop body | head -1)" ||
	fail "top lacks fleetsymHotLoop: $(head -15 body)"
expect "flame graph (folded)" 200 GET "/api/v1/query?query=$SEL&from=now-10m&to=now%2B1m&type=$NODETYPE&format=folded"
HOT=$(awk '/fleetsymHotLoop/ {h += $NF} {t += $NF} END {printf "%.0f %.0f", h, t}' body)
read -r H TOT <<<"$HOT"
[ "${H:-0}" -gt 0 ] && [ $((H * 100 / TOT)) -ge 30 ] &&
	ok "fleetsymHotLoop carries $((H * 100 / TOT))% of $TOT" ||
	fail "fleetsymHotLoop: $H of $TOT"
expect "flame graph (json)" 200 GET "/api/v1/query?query=$SEL&from=now-10m&to=now%2B1m&type=$NODETYPE"
grep -q '"name":"[^"]*fleetsymHotLoop' body && ok "JSON tree has fleetsymHotLoop" || fail "JSON tree lacks it"
expect "diff against another region (none)" 200 GET "/api/v1/diff?base=$(q '{service_name="nodehot",region="nowhere"}')&base_from=now-10m&base_to=now%2B1m&query=$SEL&from=now-10m&to=now%2B1m&type=$NODETYPE&format=folded"
grep -q fleetsymHotLoop body && ok "diff shows fleetsymHotLoop" || fail "diff lacks it: $(head -5 body)"

# ---- multipart pprof: the client's profile back as pprof, sent as the Go SDK does ----
curl -s -o node.pprof "$URL/api/v1/query?query=$SEL&from=now-10m&to=now%2B1m&type=$NODETYPE&format=pprof"
printf '{"%s":{"units":"samples","aggregation":"sum"}}' "$NODETYPE" >stc.json
expect "multipart pprof" 200 POST "/ingest?name=$(q 'mp{k=v}')&format=pprof&from=$(date +%s)" \
	-F "profile=@node.pprof" -F "sample_type_config=@stc.json" "${BEARER[@]}"
expect "multipart pprof back" 200 GET "/api/v1/query?query=$(q '{service_name="mp",k="v"}')&from=now-1h&to=now%2B1h&type=$NODETYPE&format=top"
grep -q fleetsymHotLoop body && ok "multipart profile has fleetsymHotLoop" || fail "multipart: $(head -5 body)"
expect "raw pprof, no format (multipart absent: folded default refuses binary)" 400 POST "/ingest?name=raw" \
	--data-binary @node.pprof "${BEARER[@]}"
expect "raw pprof with format=pprof" 200 POST "/ingest?name=raw&format=pprof" \
	--data-binary @node.pprof "${BEARER[@]}"

finish
