#!/usr/bin/env bash
# run alone
# JIT frames named from the JIT's own perf map: Node.js (Debian's nodejs) runs a script with
# a hot JavaScript function under --perf-basic-prof, which writes /tmp/perf-PID.map; the
# agent samples it with real BPF and ships to fleetsymd; the queried flame graph shows the
# function by name (V8 writes "JS:*fleetsymJitHot ...") with most of the samples, and the
# agent read the map file only a few times though it grows while V8 compiles.
set -uo pipefail
. "$(dirname "$0")/lib/service.sh"
. "$(dirname "$0")/lib/agent_common.sh"
need node curl python3
cd "$T"
cat >hot.js <<'JS'
function fleetsymJitHot(n) {
	let x = 0;
	for (let i = 0; i < n; i++) x = (x * 31 + i) % 1000003;
	return x;
}
const end = Date.now() + Number(process.argv[2]) * 1000;
let s = 0;
while (Date.now() < end) s += fleetsymJitHot(1e6);
console.log(s);
JS
start_fleetsymd jit --data-dir "$T/data"
bg node --perf-basic-prof hot.js 12
node_pid=$BG
for _ in $(seq 50); do [ -s "/tmp/perf-$node_pid.map" ] && break; sleep 0.1; done
[ -s "/tmp/perf-$node_pid.map" ] || { fail "node wrote no /tmp/perf-$node_pid.map"; finish; }
timeout 60 "$AGENT" --server "$URL" --frequency 99 --interval 2s --duration 6 --pid "$node_pid" \
	--label service=jit 2>agent.err
rc=$?
kill "$node_pid" 2>/dev/null
rm -f "/tmp/perf-$node_pid.map"
[ "$rc" = 0 ] || { tail -5 agent.err; fail "agent exited with $rc"; }
reads=$(grep -o 'jit_map_reads=[0-9]*' agent.err | cut -d= -f2)
echo "agent: $(grep -o 'frames_jit=[0-9]*' agent.err), perf map read $reads times in 6 s"
[ "${reads:-0}" -ge 1 ] && [ "$reads" -le 8 ] && ok "perf map read $reads times (only when it grew, 1/s at most)" ||
	fail "perf map reads: ${reads:-none}"
curl -s -G -o flame.json "$URL/api/v1/query" --data-urlencode 'query={service="jit"}' \
	--data-urlencode from=now-10m --data-urlencode to=now+1m --data-urlencode format=json
python3 - flame.json <<'PY' && ok "the JavaScript function is in the flame graph by name" ||
import json, sys
j = json.load(open(sys.argv[1]))
def walk(n):
    yield n
    for c in n.get("children", []):
        yield from walk(c)
total = j["total"]
hot = sum(n.get("self", 0) for n in walk(j["root"]) if "fleetsymJitHot" in n["name"])
names = sorted({n["name"] for n in walk(j["root"]) if "fleetsymJitHot" in n["name"]})
print("total %d, self in %s: %.1f %%" % (total, names, 100.0 * hot / max(total, 1)))
assert total > 0 and hot * 2 > total
PY
	fail "flame graph: $(head -c 400 flame.json)"
finish
