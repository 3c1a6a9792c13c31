#!/usr/bin/env bash
# run alone
# Pyroscope's push API (POST /push.v1.PusherService/Push, as Grafana Alloy's pyroscope.write
# sends it) against a real fleetsymd, called by the Connect protocol's own Node.js client
# (@connectrpc/connect-node, pinned in tests/pyroscope/package-lock.json; tests/pyroscope/push.js
# declares Pyroscope's message types at run time):
#   - binary (application/proto) and JSON codecs; several series and several profiles per push;
#     each series' folded flame graph equals the merge of its profiles, computed here;
#   - the series labels are selectable (service.version as service_version); Pyroscope's own
#     __name__ and __delta__ are not labels;
#   - a resent push (same IDs) stores nothing twice;
#   - no token, a profile that is not pprof, an empty push, gRPC and a compressed request get the
#     client's Connect error codes (unauthenticated, invalid_argument) or 415, and store nothing.
set -uo pipefail
. "$(dirname "$0")/lib/service.sh"
need node npm curl sqlite3 python3
export TESTS

top=$(cd "$TESTS/.." && pwd)
NODE_DIR=${PYROSCOPE_NODE_DIR:-$top/build/pyroscope-node}
npm_ci "$TESTS/pyroscope" "$NODE_DIR" @connectrpc/connect-node
cp "$TESTS/pyroscope/push.js" "$NODE_DIR/push.js"

cd "$T"
echo "push-$RANDOM$RANDOM" >token
TOKEN=$(cat token)
start_fleetsymd push --data-dir "$T/data" --token-file token --log-level info
DB="$T/data/profiles.db"
rows() { sqlite3 "file:$DB?mode=ro" "SELECT count(*) FROM profiles" 2>/dev/null || echo 0; }
q() { python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$1"; }

# five profiles with named frames (no symbols needed) and what each series must fold to
python3 - <<'PY' || { echo "FAILED: fixtures"; exit 1; }
import collections, os, random, sys, time
sys.path.insert(0, os.environ["TESTS"] + "/lib")
import mkpprof
rng = random.Random(7)
names = ["main", "serve", "parse", "lex", "render", "draw", "blit", "gc", "hash", "io_wait"]
now = int(time.time() * 1e9)
want = collections.defaultdict(collections.Counter)
series_of = {"p1": "checkout", "p2": "checkout", "p3": "billing", "p4": "jsonapp", "p5": "jsonapp"}
times = {"p5": 2}  # p5 has no ID: its resend below is stored again, as Pyroscope would store it
for i, (name, series) in enumerate(sorted(series_of.items())):
    samples = []
    for _ in range(40):
        depth = rng.randint(2, 6)
        stack = ["main"] + [rng.choice(names[1:]) for _ in range(depth - 1)]  # root first
        v = rng.randint(1, 50)
        samples.append({"frames": [[0, 0x1000 + 16 * names.index(f), f] for f in reversed(stack)],
                        "value": v})
        want[series][";".join(stack)] += v * times.get(name, 1)
    mkpprof.write({"type": ["cpu", "nanoseconds"], "period": 10000000,
                   "time_ns": now - (60 - i) * 10**9, "duration_ns": 10**10,
                   "mappings": [{"build_id": "", "filename": "/opt/" + series}],
                   "samples": samples}, name + ".pb.gz")
for series, c in want.items():
    with open("want-" + series + ".folded", "w") as f:
        for stack in sorted(c):
            f.write("%s %d\n" % (stack, c[stack]))
open("garbage.pb.gz", "wb").write(b"\x1f\x8b this is not a gzip'd pprof")
PY

# push NAME SPEC-JSON: the client's answer in NAME.out
push() {
	timeout 60 node "$NODE_DIR/push.js" <<<"$2" >"$1.out" 2>"$1.err" ||
		fail "$1: the client failed: $(head -c 300 "$1.out") $(head -3 "$1.err")"
}
# answered NAME WANT: the client's answer is {"ok":true} (WANT ok) or the Connect code WANT
answered() {
	local got
	got=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print("ok" if d.get("ok") else d["code"])' "$1.out" 2>/dev/null)
	[ "$got" = "$2" ] && ok "$1: $2 $(head -c 250 "$1.out")" || fail "$1: want $2, got $(head -c 300 "$1.out")"
}

# bin_spec TOKEN: two series, three profiles, binary codec
bin_spec() {
	cat <<EOF
{"url": "$URL", "token": "$1", "binary": true, "series": [
  {"labels": {"__name__": "process_cpu", "__delta__": "false", "service_name": "checkout",
              "region": "eu", "service.version": "1.2"},
   "samples": [{"file": "p1.pb.gz", "id": "6f1c2a9e-0001-4b7e-9c3d-2a1e5f7b8c01"},
               {"file": "p2.pb.gz", "id": "6f1c2a9e-0002-4b7e-9c3d-2a1e5f7b8c02"}]},
  {"labels": {"__name__": "process_cpu", "service_name": "billing", "region": "us"},
   "samples": [{"file": "p3.pb.gz", "id": "6f1c2a9e-0003-4b7e-9c3d-2a1e5f7b8c03"}]}]}
EOF
}
BIN_SPEC=$(bin_spec "$TOKEN")
JSON_SPEC=$(
	cat <<EOF
{"url": "$URL", "token": "$TOKEN", "binary": false, "series": [
  {"labels": {"__name__": "process_cpu", "service_name": "jsonapp"},
   "samples": [{"file": "p4.pb.gz", "id": "id with spaces/and slashes"},
               {"file": "p5.pb.gz", "id": ""}]}]}
EOF
)

# ---- refusals first: nothing may be stored ----
push noauth "$(bin_spec "")"
answered noauth unauthenticated
push wrongauth "$(bin_spec nope)"
answered wrongauth unauthenticated
push garbage "{\"url\": \"$URL\", \"token\": \"$TOKEN\", \"binary\": true, \"series\": [{\"labels\": {\"service_name\": \"bad\"}, \"samples\": [{\"file\": \"garbage.pb.gz\", \"id\": \"g1\"}]}]}"
answered garbage invalid_argument
push empty "{\"url\": \"$URL\", \"token\": \"$TOKEN\", \"binary\": false, \"series\": []}"
answered empty invalid_argument
push nolabel "{\"url\": \"$URL\", \"token\": \"$TOKEN\", \"binary\": true, \"series\": [{\"labels\": {\"a\": \"1\", \"A-1\": \"x\", \"A_1\": \"y\"}, \"samples\": [{\"file\": \"p1.pb.gz\", \"id\": \"n1\"}]}]}"
answered nolabel invalid_argument
grep -q "given twice" nolabel.out && ok "A-1 and A_1 are the same label name, refused as such" ||
	fail "no 'given twice' in $(cat nolabel.out)"
code=$(curl -s -o grpc.body -w '%{http_code}' -H "Authorization: Bearer $TOKEN" \
	-H 'Content-Type: application/grpc' --data-binary @p1.pb.gz "$URL/push.v1.PusherService/Push")
[ "$code" = 415 ] && grep -q '"code":"invalid_argument"' grpc.body && grep -q gRPC grpc.body &&
	ok "gRPC: 415 $(cat grpc.body)" || fail "gRPC: $code $(cat grpc.body)"
code=$(curl -s -o gz.body -w '%{http_code}' -H "Authorization: Bearer $TOKEN" \
	-H 'Content-Type: application/proto' -H 'Content-Encoding: gzip' --data-binary @p1.pb.gz \
	"$URL/push.v1.PusherService/Push")
[ "$code" = 415 ] && grep -q uncompressed gz.body && ok "a compressed request: 415 $(cat gz.body)" ||
	fail "compressed request: $code $(cat gz.body)"
[ "$(rows)" = 0 ] && ok "nothing stored by the refusals" || fail "rows after refusals: $(rows)"

# ---- pushes ----
push bin "$BIN_SPEC"
answered bin ok
push json "$JSON_SPEC"
answered json ok
[ "$(rows)" = 5 ] && ok "5 profiles stored" || fail "$(rows) profile rows, want 5"
push bin-again "$BIN_SPEC"
answered bin-again ok
push json-again "$JSON_SPEC"
answered json-again ok
# p5 has no ID: a resend stores it again, as Pyroscope would; the others are known by their IDs
[ "$(rows)" = 6 ] && ok "resent: only the profile without an ID stored again (6 rows)" ||
	fail "$(rows) profile rows after the resends, want 6"
grep -q 'path=/push.v1.PusherService/Push status=200 .*result=duplicate profiles=3 duplicates=3' push.log &&
	ok "the log names the resent binary push a duplicate" || fail "no duplicate push in the log"

for s in checkout billing jsonapp; do
	curl -s -o "got-$s.folded" "$URL/api/v1/query?query=$(q "{service_name=\"$s\"}")&from=now-1h&to=now%2B1h&format=folded"
	sort "got-$s.folded" -o "got-$s.folded"
	cmp -s "want-$s.folded" "got-$s.folded" &&
		ok "$s folds to the merge of its profiles ($(wc -l <"want-$s.folded") stacks)" ||
		fail "$s: $(diff "want-$s.folded" "got-$s.folded" | head -5)"
done

expect "series" 200 GET "/api/v1/series?query=$(q '{region="eu"}')&from=now-1h&to=now%2B1h"
check "one series, its labels as pushed (service.version as service_version, no __name__)" \
	'd["series"][0]["labels"] == {"service_name": "checkout", "region": "eu", "service_version": "1.2"} and len(d["series"]) == 1'
expect "label names" 200 GET /api/v1/labels
check "no __name__ or __delta__ label" \
	'"__name__" not in d["labels"] and "__delta__" not in d["labels"] and "service_version" in d["labels"]'
expect "values of region" 200 GET /api/v1/labels/region/values
check "eu and us" 'set(d["values"]) >= {"eu", "us"}'
expect "top of region us" 200 GET "/api/v1/query?query=$(q '{region="us"}')&from=now-1h&to=now%2B1h&format=json"
check "billing's total" "d['total'] == $(awk '{t += $NF} END {print t}' want-billing.folded)"
[ "$(metric "$URL" fleetsymd_ingest_profiles_total)" = 6 ] && ok "fleetsymd_ingest_profiles_total 6" ||
	fail "fleetsymd_ingest_profiles_total $(metric "$URL" fleetsymd_ingest_profiles_total)"
finish
