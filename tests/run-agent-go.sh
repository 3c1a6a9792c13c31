#!/usr/bin/env bash
# run alone
# A Go program, built here with Debian's golang-go once with DWARF and once with
# -ldflags='-s -w' (no DWARF, no symbol table, and, as Go's linker writes one only with -B, no
# GNU build ID), runs stripped under fleetsym-agent with real BPF and ships to fleetsymd; the
# stripped binary is uploaded with fleetsym-upload. Checked:
#  - agent, upload and store key the binary alike, by the build ID derived from its Go build ID
#    (SHA-256 of `go tool buildid`, first 20 bytes);
#  - /api/v1/debuginfo says the store has its pclntab;
#  - the hot function holds most of the samples, and the two functions the compiler inlined
#    into it are in the flame graph as one chain below it, marked inlined;
#  - on every sampled address of the binary, the names, file:line and inline chains fleetsymd
#    answered from the pclntab equal what fleetsym-symbolize answers from the DWARF build's
#    debug info (the two builds' .text are byte-identical).
set -uo pipefail
. "$(dirname "$0")/lib/service.sh"
. "$(dirname "$0")/lib/agent_common.sh"
need go curl python3 objcopy cmp
cd "$T"
export GOCACHE="${GOCACHE:-$T/gocache}" GOPATH="$T/gopath" GOFLAGS=-buildvcs=false GO111MODULE=off \
	GOTOOLCHAIN=local GOPROXY=off
[ -n "${HOME:-}" ] && export GOCACHE="$HOME/.cache/go-build" # a fresh cache rebuilds std: ~1 min

mkdir -p gosrc
cat >gosrc/main.go <<'EOF'
package main

import (
	"os"
	"strconv"
	"time"
)

var sink uint64

func leaf(x uint64) uint64 { // inlined into mix
	return x*6364136223846793005 + 1442695040888963407
}

func mix(x uint64) uint64 { // inlined into hotLoop
	for i := 0; i < 64; i++ {
		x = leaf(x) ^ (x >> 7)
	}
	return x
}

//go:noinline
func hotLoop() {
	for i := 0; i < 20000; i++ {
		sink = mix(sink + uint64(i))
	}
}

func main() {
	secs, _ := strconv.Atoi(os.Args[1])
	end := time.Now().Add(time.Duration(secs) * time.Second)
	for time.Now().Before(end) {
		hotLoop()
	}
}
EOF
# '-w=0 ' is as long as '-s -w': Go records -ldflags in the binary, so equal lengths keep
# .rodata, and with it .text's RIP-relative operands, identical in both builds
(cd gosrc && go build -ldflags='-w=0 ' -o ../gofull main.go && go build -ldflags='-s -w' -o ../goapp main.go) ||
	{ echo "FAILED: go build"; exit 1; }
objcopy -O binary -j .text gofull text.full && objcopy -O binary -j .text goapp text.app &&
	cmp -s text.full text.app && ok "the two builds' .text are identical" ||
	{ fail "the builds' .text differ"; finish; }
has 'Build ID' readelf -nW goapp && { fail "the stripped build has a GNU build ID"; finish; }
GOID=$(go tool buildid goapp)
BID=$(printf %s "$GOID" | sha256sum | cut -c1-40)
ok "goapp: Go build ID $GOID, no GNU build ID; derived build ID $BID"

start_fleetsymd go --data-dir "$T/data" --debug-dir "$T/nodebug"
"$BUILD/bin/fleetsym-upload" --server "$URL" goapp >up.txt 2>&1 || { cat up.txt; fail "upload"; }
grep -q "build ID $BID, Go pclntab" up.txt && ok "fleetsym-upload: $(head -1 up.txt)" ||
	fail "fleetsym-upload did not key or rate it as expected: $(cat up.txt)"
curl -s "$URL/api/v1/debuginfo/$BID" >status.json
python3 -c '
import json, sys
q = json.load(open("status.json"))["quality"]
assert q["pclntab"] and not q["dwarf"] and not q["symtab"], q
' && ok "/api/v1/debuginfo/$BID: pclntab" || fail "status: $(cat status.json)"

bg ./goapp 14
app=$BG
sleep 0.3
timeout 60 "$AGENT" --server "$URL" --frequency 99 --interval 3s --duration 8 --pid "$app" \
	--label service=goapp 2>agent.err
rc=$?
kill "$app" 2>/dev/null
[ "$rc" = 0 ] || { tail -5 agent.err; fail "agent exited with $rc"; }

q() { # q FORMAT -> body in $T/q.out, status echoed
	curl -s -G -o "$T/q.out" -w '%{http_code}' "$URL/api/v1/query" \
		--data-urlencode 'query={service="goapp"}' --data-urlencode "from=now-10m" \
		--data-urlencode "to=now+1m" --data-urlencode "format=$1"
}
code=$(q json)
[ "$code" = 200 ] && cp q.out flame.json || fail "query answered $code: $(head -c 300 q.out)"
python3 - flame.json <<'PY' && ok "flame graph: hotLoop > mix > leaf, inlined" || fail "flame graph"
import json, sys
j = json.load(open(sys.argv[1]))
def walk(n, path):
    yield n, path
    for c in n.get("children", []):
        yield from walk(c, path + [c])
total, hot, under = j["total"], 0, 0
for n, path in walk(j["root"], []):
    names = [p["name"] for p in path]
    if names[-1:] == ["main.hotLoop"]:
        hot += n["total"]
    if names[-3:] == ["main.hotLoop", "main.mix", "main.leaf"]:
        under += n["total"]
        assert n.get("inlined") and path[-2].get("inlined") and not path[-3].get("inlined"), \
            [(p["name"], p.get("inlined")) for p in path[-3:]]
print("total %d: main.hotLoop %.1f %%, of which hotLoop > mix > leaf %.1f %%"
      % (total, 100.0 * hot / total, 100.0 * under / total))
assert total > 0 and hot * 2 > total and under * 10 > total
PY

code=$(q pprof)
[ "$code" = 200 ] && cp q.out answer.pb.gz || fail "pprof query answered $code"
python3 - answer.pb.gz goapp gofull "$SYM" "$BID" "$TESTS/lib" <<'PY' &&
import json, subprocess, sys
answer, app, full, sym, bid, lib = sys.argv[1:7]
sys.path.insert(0, lib)
from agent_pprof import load
from agent_check import pt_loads, to_vaddr
p = load(answer)
loads = pt_loads(app)
ours = {}  # vaddr -> [(function, file, line)] innermost first, as fleetsymd answered
for loc in p["locations"].values():
    m = p["mappings"].get(loc["mapping_id"])
    if not m or m["build_id"] != bid:
        continue
    v = to_vaddr(loads, loc["address"] - m["memory_start"] + m["file_offset"])
    assert v is not None, loc
    ours[v] = [(p["functions"][ln["function_id"]]["name"],
                p["functions"][ln["function_id"]]["filename"], ln["line"]) for ln in loc["line"]]
    # an address neither source names (a sample in code between functions) is "goapp+0xOFF"
    # in the answer and no frame in fleetsym-symbolize's: the same answer
    if len(ours[v]) == 1 and not ours[v][0][1] and ours[v][0][0].startswith("goapp+0x"):
        ours[v] = [(None, None, None)]
assert len(ours) >= 5, "only %d sampled addresses of the binary" % len(ours)
vs = sorted(ours)
out = subprocess.run([sym, "-e", full, "--json"], input="\n".join("0x%x" % v for v in vs),
                     capture_output=True, text=True, timeout=300, check=True).stdout.splitlines()
same = inl = 0
for v, line in zip(vs, out):
    ref = [(f.get("function"), f.get("file"), f.get("line")) for f in json.loads(line)["frames"]]
    if ref == ours[v]:
        same += 1
        inl += len(ref) > 1
    else:
        print("0x%x: DWARF %s\n    pclntab %s" % (v, ref, ours[v]))
print("%d sampled addresses, %d equal (%d with inline chains)" % (len(vs), same, inl))
assert same == len(vs) and inl > 0
PY
	ok "every sampled address: pclntab answers = DWARF answers" ||
	fail "pclntab answers differ from DWARF"
finish
