#!/usr/bin/env bash
# make demo - the whole system on this machine, in one command (as root):
#   1. installs the Debian packages (.ci/deps.sh) and builds everything (make all);
#   2. starts fleetsymd on 127.0.0.1:7070 with its data under results/demo/data;
#   3. builds the demo workload (demo/workload.c + libdemocodec.so from demo/codec.c) with clang
#      -O2 -g (default flags: no frame pointers) and a build ID, uploads the program's debug info with
#      fleetsym-upload, strips both (the library's debug info is NOT uploaded, on purpose);
#   4. runs the workload twice for ~10 s, "v1" then "v2" (a regression in hash_block), each
#      under fleetsym-agent at 99 Hz shipping unsymbolized profiles to fleetsymd;
#   5. prints the top functions and the missing debug info, writes results/demo/flamegraph.html
#      (the web UI with the data inlined: works offline), profile.pb.gz (pprof) and top.txt;
#   6. leaves fleetsymd running for the live UI and says how to stop it.
# DEMO_SECONDS (default 10) sets each phase's length; FLEETSYM_DEMO_PORT (default 7070) the port.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
out=$top/results/demo
data=$out/data
port=${FLEETSYM_DEMO_PORT:-7070}
secs=${DEMO_SECONDS:-10}
export LC_ALL=C
unset DEBUGINFOD_URLS

say() { printf '\n== %s\n' "$*"; }
die() { echo "demo: $*" >&2; exit 1; }

if [ "$(id -u)" != 0 ]; then
	cat >&2 <<EOF
make demo must run as root: it installs Debian packages (apt-get) and loads the agent's eBPF
program. Run it as root, e.g.:  sudo make demo
EOF
	exit 1
fi

say "installing what the demo needs (bash .ci/deps.sh)"
bash "$top/.ci/deps.sh"
say "building (make all)"
mkdir -p "$top/build"
make -C "$top" --no-print-directory -j"$(nproc)" all >"$top/build/demo-make.log" 2>&1 ||
	{ tail -30 "$top/build/demo-make.log"; die "the build failed (log: build/demo-make.log)"; }
echo "built: $(cd "$top/build/bin" && echo *)"
B=$top/build/bin

# A fleetsymd left running by an earlier demo is stopped first (by its pid file, and only if
# that pid is a fleetsymd).
stop_old() {
	local pid
	pid=$(cat "$out/fleetsymd.pid" 2>/dev/null) || return 0
	if [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = fleetsymd ]; then
		echo "stopping the fleetsymd of an earlier demo (pid $pid)"
		kill "$pid"
		for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	fi
	rm -f "$out/fleetsymd.pid"
}
stop_old
rm -rf "$out"
mkdir -p "$data" "$out/bin"

say "starting fleetsymd (data dir results/demo/data)"
if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
	echo "port $port is taken by something else: using a free port instead"
	port=0
fi
setsid "$B/fleetsymd" --data-dir "$data" --listen "127.0.0.1:$port" --port-file "$out/port" \
	--log-level info </dev/null >"$out/fleetsymd.log" 2>&1 &
fsd=$!
echo "$fsd" >"$out/fleetsymd.pid"
for _ in $(seq 100); do [ -s "$out/port" ] && break; kill -0 "$fsd" 2>/dev/null || break; sleep 0.1; done
[ -s "$out/port" ] || { cat "$out/fleetsymd.log"; die "fleetsymd did not start"; }
URL="http://127.0.0.1:$(cat "$out/port")"
echo "fleetsymd pid $fsd serving $URL"

say "building the demo workload (-O2 -g, default flags: no frame pointers; build IDs)"
cd "$out/bin"
# Default flags, as a fleet's programs are built: the agent unwinds them from .eh_frame.
cflags=(-O2 -g -Wl,--build-id)
clang "${cflags[@]}" -fPIC -shared -o libdemocodec.so "$top/demo/codec.c"
clang "${cflags[@]}" -o demo-workload "$top/demo/workload.c" -L. -ldemocodec -Wl,-rpath,'$ORIGIN'
app_bid=$("$B/fleetsym-upload" buildid demo-workload)
lib_bid=$("$B/fleetsym-upload" buildid libdemocodec.so)
echo "demo-workload    build ID $app_bid"
echo "libdemocodec.so  build ID $lib_bid"

say "uploading the debug info of demo-workload, then stripping both files"
"$B/fleetsym-upload" --server "$URL" demo-workload
cp libdemocodec.so libdemocodec.so.unstripped
strip demo-workload libdemocodec.so
echo "what runs has no symbols: $(readelf -SW demo-workload libdemocodec.so | grep -c '\.symtab\|\.debug_') .symtab/.debug_* sections left"
echo "libdemocodec.so's debug info is not uploaded (on purpose): see \"missing debug info\" below"

# phase VERSION: the workload for SECS+1 s, the agent on its pid for SECS s.
phase() {
	local v=$1 wpid apid rc=0
	./demo-workload "$((secs + 1))" "$v" >"$out/workload-$v.log" &
	wpid=$!
	"$B/fleetsym-agent" --server "$URL" --label service=demo --label "version=$v" \
		--frequency 99 --interval 5s --duration "${secs}s" --pid "$wpid" \
		>"$out/agent-$v.log" 2>&1 &
	apid=$!
	wait "$apid" || rc=$?
	wait "$wpid" || true
	[ "$rc" = 0 ] || { tail -20 "$out/agent-$v.log"; die "fleetsym-agent failed (rc=$rc)"; }
	echo "$v: $(cat "$out/workload-$v.log"); agent: $(grep -o 'samples=[0-9]*' "$out/agent-$v.log" | head -1), $(grep -o 'sent=[0-9]*' "$out/agent-$v.log" | head -1) profiles sent"
}
say "profiling: workload v1 then v2, ${secs} s each, fleetsym-agent at 99 Hz -> $URL/api/v1/ingest"
t0=$(date +%s)
phase v1
phase v2
t1=$(($(date +%s) + 1))

q='{service="demo"}'
enc() { python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$1"; }
api() { curl -sf "$URL/api/v1/$1" -o "$2" || die "GET /api/v1/$1 failed"; }
win="from=$t0&to=$t1"

say "top functions  (GET /api/v1/query?query=$q&format=top)"
api "query?query=$(enc "$q")&$win&format=top" "$out/top.txt"
head -14 "$out/top.txt"

api "query?query=$(enc "$q")&$win&format=pprof" "$out/profile.pb.gz"
api "query?query=$(enc "$q")&$win&format=json" "$out/flamegraph.json"
api "query?query=$(enc "$q")&$win&format=folded" "$out/folded.txt"
api "missing?query=$(enc "$q")&$win" "$out/missing.json"
api "timeline?query=$(enc "$q")&$win&step=1s" "$out/timeline.json"
qv1='{service="demo",version="v1"}' qv2='{service="demo",version="v2"}'
api "diff?base=$(enc "$qv1")&base_from=$t0&base_to=$t1&query=$(enc "$qv2")&$win&format=json" \
	"$out/diff.json"

say "missing debug info  (GET /api/v1/missing)"
python3 - "$out/missing.json" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
rows = m.get("missing", [])
if not rows:
    print("none: every build ID in the window had debug info")
for r in rows:
    print("%5.1f%% of samples  build ID %s  %s" % (100 * r.get("share", 0), r["build_id"],
                                                   " ".join(r.get("files", []))))
    f = (r.get("files") or [""])[0]
    print("        fix: %s" % (r.get("fix", "") if not f.startswith("[") else
                               "none to run: %s is made by the kernel, not a file" % f))
PY
echo "(the demo kept the unstripped library: fleetsym-upload --server $URL $out/bin/libdemocodec.so.unstripped"
echo " makes its frames resolve at the next query; the stored profiles keep raw addresses)"

say "v2 against v1  (GET /api/v1/diff, shares of each side's total)"
python3 - "$out/diff.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
best = {}
def walk(n):
    for c in n.get("children", []):
        k = c["name"]
        if abs(c.get("delta", 0)) > abs(best.get(k, 0)):
            best[k] = c.get("delta", 0)
        walk(c)
walk(d["root"])
print("totals: v1 %.2f s, v2 %.2f s of CPU" % (d.get("base_total", 0) / 1e9, d.get("total", 0) / 1e9))
for k, v in sorted(best.items(), key=lambda kv: -abs(kv[1]))[:4]:
    print("  %-28s %+6.1f pp  (%s)" % (k, 100 * v, "grew" if v > 0 else "shrank"))
PY

python3 "$top/demo/offline_html.py" "$top/symbolizer/webui" "$out/flamegraph.html" \
	--query "$out/flamegraph.json" --missing "$out/missing.json" --diff "$out/diff.json" \
	--timeline "$out/timeline.json" \
	--meta "q=$q" --meta "from=$(date -u -d "@$t0" +%FT%TZ)" --meta "to=$(date -u -d "@$t1" +%FT%TZ)" \
	--meta "bq=$qv1" --meta "server=$URL" --meta "title=fleetsym demo: $(date -u +%F' '%T' UTC')" \
	--meta "note=Offline snapshot of make demo ($(date -u +%F' '%T' UTC')): the data is inlined; the diff tab compares v2 against v1."

ui_q=$(enc "$q")
say "done"
cat <<EOF
results in results/demo/:
  flamegraph.html   the flame graph, top functions, diff and missing panel; opens offline
  profile.pb.gz     the merged, symbolized pprof:  go tool pprof -top results/demo/profile.pb.gz
  top.txt, folded.txt, flamegraph.json, diff.json, missing.json, fleetsymd.log, agent-v*.log

live UI (fleetsymd keeps running):
  $URL/#q=$ui_q
  diff v2 against v1:  $URL/#view=diff&q=$(enc "$qv2")&bq=$(enc "$qv1")&bfrom=now-1h&bto=now
  missing debug info:  $URL/#view=missing
stop it:  kill \$(cat results/demo/fleetsymd.pid)
EOF
