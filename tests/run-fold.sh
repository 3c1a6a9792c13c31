#!/usr/bin/env bash
# Folded stacks straight from perf: `perf record -g` of a C fixture, `perf script`,
# `fleetsym-upload fold`, POST /ingest?format=folded:
#   - symbols perf printed: what fleetsymd stores equals the local folding, sample for sample
#     (frames perf could not name are raw FILE@BUILDID+0xOFF and come back as FILE+0xOFF with
#     no debug info anywhere);
#   - a stripped run: perf names nothing in the fixture, the folding keeps build IDs and file
#     offsets, and after `fleetsym-upload` of the debug info fleetsymd names the hot functions
#     centrally, as it does agent frames.
set -uo pipefail
. "$(dirname "$0")/lib/service.sh"
need perf gcc strip curl python3
UPLOAD="$BUILD/bin/fleetsym-upload"

cd "$T"
cat >fx.c <<'EOF'
#include <stdlib.h>
volatile unsigned long sink;
__attribute__((noinline)) void fold_hot_two(unsigned long n)
{
	for (unsigned long i = 0; i < n; i++)
		sink = sink * 6364136223846793005UL + i;
}
__attribute__((noinline)) void fold_hot_one(unsigned long n)
{
	for (unsigned long i = 0; i < n; i++)
		sink = sink * 6364136223846793005UL + 1;
}
int main(int argc, char **argv)
{
	unsigned long rounds = strtoul(argv[1], NULL, 10);
	for (unsigned long r = 0; r < rounds; r++) {
		fold_hot_two(2000000);
		fold_hot_one(1000000);
	}
	return 0;
}
EOF
gcc -O1 -g -fno-omit-frame-pointer -fno-inline -o fx fx.c || { echo "FAILED: gcc"; exit 1; }
strip -o fx-stripped fx
mkdir -p nodebug
export DEBUGINFOD_URLS=
# perf's own build-ID cache would name the stripped run's frames from the first run's binary
export PERF_BUILDID_DIR="$T/perf-buildid"
echo "f0ld-$RANDOM" >token
start_fleetsymd fold --data-dir "$T/data" --token-file token --debug-dir "$T/nodebug" --log-level info
AUTH=(-H "Authorization: Bearer $(cat token)")
q() { python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$1"; }

# record ROUNDS BIN OUT: perf record -g + perf script into OUT
record() {
	perf record -q -N -g -F 499 -o "$3.data" "./$2" "$1" >/dev/null 2>"$3.err" ||
		{ fail "perf record: $(tail -2 "$3.err")"; return 1; }
	perf script -i "$3.data" >"$3" 2>>"$3.err" || { fail "perf script: $(tail -2 "$3.err")"; return 1; }
}

# ---- named frames: stored equals the local folding ----
record 300 fx named.script || finish
"$UPLOAD" fold named.script >named.folded || fail "fold"
N=$(wc -l <named.folded)
SAMPLES=$(grep -cE '^[^[:space:]#].* [0-9]+(/[0-9]+)? ' named.script)
[ "$N" -ge 50 ] && ok "perf script: $SAMPLES samples, folded into $N lines" || fail "only $N samples folded"
T0=$(date +%s)
code=$(http_code POST "$URL/ingest?name=$(q 'fx{run=named}')&format=folded&sampleRate=499&from=$T0&until=$((T0 + 2))&spyName=perf" \
	--data-binary @named.folded "${AUTH[@]}")
[ "$code" = 200 ] && ok "ingest: $(cat body)" || fail "ingest: $code $(cat body)"
curl -s -o stored.folded "$URL/api/v1/query?query=$(q '{service_name="fx",run="named"}')&from=now-1h&to=now%2B1h&type=samples&format=folded"
# the local folding, summed per stack; raw frames as the server shows them unresolved
python3 - named.folded >want.folded <<'EOF'
import collections, os, re, sys
c = collections.Counter()
for line in open(sys.argv[1]):
    stack, n = line.rstrip("\n").rsplit(" ", 1)
    frames = [re.sub(r"^(.*)@[0-9a-f]+\+(0x[0-9a-f]+)$", lambda m: os.path.basename(m.group(1)) + "+" + m.group(2), f)
              for f in stack.split(";")]
    c[";".join(frames)] += int(n)
for k in sorted(c):
    print(k, c[k])
EOF
sort stored.folded >got.folded
if cmp -s want.folded got.folded; then
	ok "stored equals the local folding: $(wc -l <got.folded) stacks, $N samples"
else
	fail "stored differs from the local folding: $(diff want.folded got.folded | head -6)"
fi
grep -q "fold_hot_two" got.folded && ok "perf's names kept (fold_hot_two)" || fail "no fold_hot_two: $(head -3 got.folded)"

# ---- stripped: raw frames resolve centrally ----
record 300 fx-stripped raw.script || finish
"$UPLOAD" fold raw.script >raw.folded || fail "fold (stripped)"
BID=$("$UPLOAD" buildid fx)
grep -q "fx-stripped@$BID+0x" raw.folded && ok "unnamed frames carry the build ID and a file offset: $(grep -o "fx-stripped@$BID+0x[0-9a-f]*" raw.folded | head -1)" ||
	fail "no raw frames: $(head -3 raw.folded)"
code=$(http_code POST "$URL/ingest?name=$(q 'fx{run=raw}')&format=folded&sampleRate=499" \
	-u "ci:$(cat token)" --data-binary @raw.folded)
[ "$code" = 200 ] && ok "ingest (basic auth): $(cat body)" || fail "ingest: $code $(cat body)"
FLEETSYM_TOKEN=$(cat token) "$UPLOAD" --server "$URL" --quiet fx || fail "fleetsym-upload of fx's debug info"
curl -s -o raw.top "$URL/api/v1/query?query=$(q '{service_name="fx",run="raw"}')&from=now-1h&to=now%2B1h&type=samples&format=top"
grep -q fold_hot_two raw.top && grep -q fold_hot_one raw.top &&
	ok "symbolized centrally: $(grep -c fold_hot raw.top) hot functions in top" ||
	fail "raw frames not symbolized: $(head -8 raw.top)"

# ---- bad perf script input ----
printf '\t  1234 main+0x1 (/bin/x)\n' >bad.script
"$UPLOAD" fold bad.script >/dev/null 2>bad.err && fail "a frame without a sample header was folded" ||
	ok "fold refuses a frame before any sample: $(cat bad.err)"

finish
