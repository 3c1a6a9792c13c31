#!/usr/bin/env bash
# run alone
# The whole pipeline with real parts: a -O2 -g fixture runs stripped (as on a fleet host), its
# debug info is uploaded with fleetsym-upload; Debian's stripped libc gets its debug info
# (libc6-dbg) only from a local debuginfod; fleetsym-agent samples at 99 Hz with real BPF and
# ships to fleetsymd's ingest; the queried profile then shows burn_hot() as the hot function,
# with file:line and the inlined helper drive() in its chain, named libc frames with named
# kernel frames above the syscall wrappers, and nothing of the fixture or libc left in
# /api/v1/missing.
set -uo pipefail
. "$(dirname "$0")/lib/service.sh"
. "$(dirname "$0")/lib/agent_common.sh"
need debuginfod
cd "$T"
build_fixture

libc=$(readlink -f /lib/x86_64-linux-gnu/libc.so.6)
lbid=$(build_id "$libc")
ldbg=/usr/lib/debug/.build-id/${lbid:0:2}/${lbid:2}.debug
[ -f "$ldbg" ] || skip "libc6-dbg is not installed"
mkdir -p di nodebug
cp "$ldbg" di/libc.debug
start_debuginfod "$T/di" "$lbid"
start_fleetsymd e2e --data-dir "$T/data" --debug-dir "$T/nodebug" --debuginfod-urls "$DI_URL" \
	--request-timeout 30
echo "fleetsymd $URL, debuginfod $DI_URL (serves libc $lbid only)"

"$BUILD/bin/fleetsym-upload" --server "$URL" agent_work.full >up.txt 2>&1 ||
	{ cat up.txt; fail "upload of the fixture's debug info"; }
head -1 up.txt

bg ./agent_work burn 14
burn=$BG
bg ./agent_work sys 14
sys=$BG
sleep 0.3
timeout 60 "$AGENT" --server "$URL" --frequency 99 --interval 3s --duration 9 \
	--label service=e2e --label env=test 2>agent.err
rc=$?
kill "$burn" "$sys" 2>/dev/null
tail -2 agent.err
[ "$rc" = 0 ] || fail "agent exited with $rc"

q() { # q SELECTOR FORMAT [extra query args] -> body in $T/q.out, status echoed
	curl -s -G -o "$T/q.out" -w '%{http_code}' "$URL/api/v1/query" \
		--data-urlencode "query=$1" --data-urlencode "from=now-10m" \
		--data-urlencode "to=now" --data-urlencode "format=$2" "${@:3}"
}

code=$(q "{service=\"e2e\",pid=\"$burn\"}" json)
[ "$code" = 200 ] || { cat q.out; fail "query (burn) answered $code"; }
cp q.out burn.json
python3 - burn.json "$FIXTURE_BUILD_ID" <<'PY' || fail "burn profile"
import json, sys
j = json.load(open(sys.argv[1]))
total = j["total"]
assert total > 0, "no samples for the fixture"
def walk(n, path):
    yield n, path
    for c in n.get("children", []):
        yield from walk(c, path + [c])
# self per function, and where burn_hot sits
self_by = {}
hot = []
for n, path in walk(j["root"], []):
    self_by[n["name"]] = self_by.get(n["name"], 0) + n.get("self", 0)
    if n["name"] == "burn_hot":
        hot.append((n, path))
top = max(self_by, key=self_by.get)
names = [p["name"] for p in hot[0][1]] if hot else []
print("total %d, top self function %s (%.1f %%), chain to burn_hot: %s" % (
    total, top, 100.0 * self_by[top] / total, " <- ".join(reversed(names))))
assert hot, "burn_hot not in the profile"
n, path = max(hot, key=lambda h: h[0]["total"])
assert n["total"] >= 0.8 * total, "burn_hot has %.1f %% of the samples" % (100.0 * n["total"] / total)
# the hottest function by self value is burn_hot itself or a helper inlined into it
inner = {c["name"] for c, _ in walk(n, [])}
assert top in inner, "top self function %s is not burn_hot or inlined into it" % top
assert n["file"] and n["file"].endswith("agent_work.c") and n["line"] > 0, n
drive = [p for p in path if p["name"] == "drive"]
assert drive and drive[0]["inlined"], "drive() is not in burn_hot's chain as an inlined frame"
assert any(p["name"] == "main" for p in path), "main() is not in the chain"
fx = [b for b in j["build_ids"] if b["build_id"] == sys.argv[2]]
assert fx and fx[0]["status"] == "found" and fx[0]["unknown"] == 0, fx
print("ok   burn_hot %.1f %% with %s:%d; drive() inlined; main; fixture build ID found" % (
    100.0 * n["total"] / total, n["file"].rsplit("/", 1)[-1], n["line"]))
PY

code=$(q "{service=\"e2e\",pid=\"$sys\"}" folded)
[ "$code" = 200 ] || { cat q.out; fail "query (sys) answered $code"; }
cp q.out sys.folded
python3 - sys.folded <<'PY' || fail "sys profile"
# What the product promises, whatever this kernel calls inside a syscall: samples in the libc
# read/write wrappers carry kernel frames above the wrapper, each named from /proc/kallsyms.
import collections, sys
WRAPPERS = ("__GI___libc_read", "__libc_read", "read", "__GI___libc_write", "__libc_write",
            "write")
kallsyms = {l.split()[2] for l in open("/proc/kallsyms") if len(l.split()) >= 3}
total = libc = kern = 0
bad, inside = set(), collections.Counter()
for line in open(sys.argv[1]):
    stack, v = line.rsplit(" ", 1)
    v = int(v)
    total += v
    frames = stack.split(";")
    at = [i for i, f in enumerate(frames) if f in WRAPPERS]
    if not at:
        continue
    libc += v
    above = frames[at[-1] + 1:]
    if above:
        kern += v
        inside[above[-1]] += v
        bad.update(f for f in above if f not in kallsyms)
assert total > 0, "no samples for the sys workload"
print("sys workload: %.1f %% of samples through named libc read/write, %.1f %% of those with "
      "kernel frames above the wrapper; leaf kernel functions: %s" % (
          100.0 * libc / total, 100.0 * kern / max(libc, 1),
          ", ".join("%s %d" % kv for kv in inside.most_common(5))))
assert libc >= 0.5 * total, "libc frames are not named"
assert kern >= 0.5 * libc, "kernel frames missing above the libc syscall wrappers"
assert not bad, "frames above the libc wrapper that are not kernel functions: %s" % sorted(bad)[:5]
PY

curl -s -G "$URL/api/v1/missing" --data-urlencode "from=now-10m" --data-urlencode "to=now" >missing.json
python3 - missing.json "$FIXTURE_BUILD_ID" "$lbid" <<'PY' || fail "/missing lists the fixture or libc"
import json, sys
j = json.load(open(sys.argv[1]))
ids = {m["build_id"] for m in j["missing"]}
print("/missing: %d build IDs (other processes on the host), unsymbolized share %.3f"
      % (len(ids), j.get("unsymbolized_share", 0)))
assert sys.argv[2] not in ids and sys.argv[3] not in ids
PY
n=$(metric "$URL" fleetsymd_ingest_profiles_total)
[ "$n" -ge 2 ] && ok "ingest: $n profiles, $(metric "$URL" fleetsymd_ingest_bytes_total) bytes" ||
	fail "ingest metrics: $n profiles"
finish
