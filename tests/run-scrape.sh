#!/usr/bin/env bash
# run alone
# fleetsymd --scrape against a real Go program serving net/http/pprof (built here): its CPU
# profile is stored under the scrape's labels (plus instance and job), /query's top shows its
# two hot functions, and `go tool pprof -top` of what fleetsymd stored agrees with
# `go tool pprof -top` of a direct fetch (the next window: Go serves one CPU profile at a
# time) within sampling noise (4 standard deviations at their sample counts), by cumulative
# share: on a loaded host Go's preemption signal often lands in the hot loop, so the leaf is
# runtime.asyncPreempt and the flat share moves to it. Bad --scrape values are refused at startup.
set -uo pipefail
. "$(dirname "$0")/lib/service.sh"
need go curl python3

cd "$T"
export GOCACHE="$T/gocache" GOPATH="$T/gopath" GOFLAGS= GO111MODULE=off GOTOOLCHAIN=local
mkdir -p svc
cat >svc/main.go <<'EOF'
package main

import (
	"fmt"
	"net"
	"net/http"
	_ "net/http/pprof"
	"os"
)

var sink uint64

//go:noinline
func hotTwoThirds() {
	for i := 0; i < 2000000; i++ {
		sink = sink*6364136223846793005 + 1442695040888963407
	}
}

//go:noinline
func hotOneThird() {
	for i := 0; i < 1000000; i++ {
		sink = sink*6364136223846793005 + 1
	}
}

func main() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	os.WriteFile(os.Args[1]+".tmp", []byte(fmt.Sprint(ln.Addr().(*net.TCPAddr).Port)), 0644)
	os.Rename(os.Args[1]+".tmp", os.Args[1])
	go func() {
		for {
			hotTwoThirds()
			hotOneThird()
		}
	}()
	http.Serve(ln, nil)
}
EOF
(cd svc && go build -o ../svc-bin main.go) || { echo "FAILED: go build"; exit 1; }
./svc-bin svc.port &
PIDS+=($!)
for _ in $(seq 200); do [ -s svc.port ] && break; sleep 0.05; done
[ -s svc.port ] || { echo "FAILED: the Go service did not start"; exit 1; }
SVC="http://127.0.0.1:$(cat svc.port)"
ok "Go service on $SVC"

# bad targets: refused before serving
for bad in "ftp://x" "$SVC,nolabel" "$SVC,bad-name=1" "$SVC,interval=0s" "$SVC,seconds=30,interval=10s" "$SVC,seconds=abc"; do
	if "$FSD" --data-dir "$T/bad" --listen 127.0.0.1:0 --scrape "$bad" >bad.log 2>&1; then
		fail "--scrape '$bad' was accepted"
	else
		ok "--scrape '$bad' refused: $(head -1 bad.log)"
	fi
done

start_fleetsymd scrape --data-dir "$T/data" --log-level info \
	--scrape "$SVC,env=test,team=perf,interval=12s,seconds=8"
SEL=$(python3 -c 'import urllib.parse; print(urllib.parse.quote("{job=\"scrape\",env=\"test\",team=\"perf\"}", safe=""))')
got=0
for _ in $(seq 120); do
	n=$(curl -s "$URL/api/v1/series?query=$SEL&from=now-10m&to=now%2B1m" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["series"]))' 2>/dev/null)
	[ "${n:-0}" -ge 1 ] && { got=1; break; }
	sleep 1
done
[ "$got" = 1 ] && ok "a scrape is stored under its labels" ||
	{ fail "no scrape stored in 120 s: $(grep scrape "$T/scrape.log" | tail -3)"; finish; }
curl -s "$URL/api/v1/series?query=$SEL&from=now-10m&to=now%2B1m" >body
python3 -c "
import json; d = json.load(open('body'))
l = d['series'][0]['labels']
assert l == {'env': 'test', 'team': 'perf', 'job': 'scrape', 'instance': '127.0.0.1:$(cat svc.port)'}, l
" && ok "labels: env, team, job=scrape, instance=host:port" || fail "labels: $(cat body)"

curl -s -o top.txt "$URL/api/v1/query?query=$SEL&from=now-10m&to=now%2B1m&type=cpu&format=top"
grep -q hotTwoThirds top.txt && grep -q hotOneThird top.txt && ok "top shows both hot functions" ||
	fail "top: $(head -12 top.txt)"
curl -s -o stored.pprof "$URL/api/v1/query?query=$SEL&from=now-10m&to=now%2B1m&type=cpu&format=pprof"
curl -s -m 60 -o direct.pprof "$SVC/debug/pprof/profile?seconds=8" || fail "direct fetch"
# Go serves one CPU profile at a time: if a scrape held it, the direct fetch waits and retries
for _ in 1 2 3 4 5; do
	go tool pprof -top direct.pprof >direct.top 2>/dev/null && break
	sleep 2
	curl -s -m 60 -o direct.pprof "$SVC/debug/pprof/profile?seconds=8"
done
go tool pprof -top stored.pprof >stored.top 2>&1 || fail "go tool pprof -top of the stored profile: $(head -3 stored.top)"
# cum% of each hot function, in each
share() { awk -v f="$2" '$0 ~ f {gsub("%", "", $5); print $5; exit}' "$1"; }
read -r S2 S1 D2 D1 <<<"$(share stored.top hotTwoThirds) $(share stored.top hotOneThird) $(share direct.top hotTwoThirds) $(share direct.top hotOneThird)"
echo "stored: hotTwoThirds ${S2:-?}% hotOneThird ${S1:-?}%; direct: ${D2:-?}% ${D1:-?}%"
python3 - stored.top direct.top <<EOF
import math, re, sys
s2, s1, d2, d1 = map(float, "$S2 $S1 $D2 $D1".split())
def samples(path):  # "Total samples = 3.97s" at 100 Hz (ms when short)
    m = re.search(r"Total samples = ([0-9.]+)(ms|s)", open(path).read())
    return max(1.0, float(m.group(1)) * (0.1 if m.group(2) == "ms" else 100))
n1, n2 = samples(sys.argv[1]), samples(sys.argv[2])
# sampling noise: 4 standard deviations of the difference of two shares of ~2/3, in points
tol = max(5.0, 400 * math.sqrt(2 / 9 * (1 / n1 + 1 / n2)))
print("samples %.0f and %.0f, tolerance %.1f points" % (n1, n2, tol))
assert abs(s2 - d2) <= tol and abs(s1 - d1) <= tol, (s2, d2, s1, d1, tol)
assert s2 > s1 and d2 > d1
EOF
[ $? = 0 ] && ok "go tool pprof -top: stored ($S2%, $S1%) agrees with a direct fetch ($D2%, $D1%)" ||
	fail "stored ($S2%, $S1%) vs direct ($D2%, $D1%)"

finish
