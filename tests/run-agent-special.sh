#!/usr/bin/env bash
# run alone
# fleetsym-agent on frames the kernel cannot resolve to (build ID, file offset) and that go
# through the agent's /proc/PID/maps cache instead: vDSO code (no file: named by the agent
# from its own vDSO's symbols, in a "[vdso]" mapping), code in anonymous executable memory (JIT-like: "[anon]", no build ID), and
# a binary deleted while it runs (the kernel still resolves it; its path keeps " (deleted)").
# Raw-address mappings must carry the real memory_start/limit and contain their addresses.
set -u
. "$(dirname "$0")/lib/agent_common.sh"
cd "$T"
build_fixture
# the deleted binary needs a build ID of its own (one mapping per build ID in a profile)
gone_bid=$(od -An -tx1 -N20 /dev/urandom | tr -d ' \n')
"${CC:-gcc}" -O2 -fno-omit-frame-pointer -Wl,--build-id=0x"$gone_bid" \
	"$TESTS/data/src/agent_work.c" -o agent_gone || exit 1
bg ./agent_work vdso 8
vdso=$BG
bg ./agent_work jit 8
jit=$BG
bg ./agent_gone burn 8
gone=$BG
sleep 0.3
rm agent_gone
timeout 30 "$AGENT" --output "$T/special.pb.gz" --frequency 99 --duration 3 2>agent.err
rc=$?
cat agent.err
[ "$rc" = 0 ] || { echo "FAIL: agent exited with $rc"; exit 1; }
python3 - "$TESTS/lib" special.pb.gz "$vdso" "$jit" "$gone" "$gone_bid" <<'PY'
import collections, re, sys
sys.path.insert(0, sys.argv[1])
import agent_pprof
p = agent_pprof.load(sys.argv[2])
vdso, jit, gone, bid = int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
fail = False


def check(ok, what):
    global fail
    print("%s %s" % ("ok  " if ok else "FAIL", what))
    fail |= not ok


def leaves(pid):
    out = collections.Counter()
    for s in p["samples"]:
        if s["labels"].get("pid") != pid:
            continue
        user = [p["locations"][l] for l in s["locs"]
                if p["mappings"][p["locations"][l]["mapping_id"]]["filename"] != "[kernel.kallsyms]"]
        if user:
            out[(user[0]["mapping_id"], user[0]["address"])] += s["value"][0] // p["period"]
    return out


def by_mapping(pid):
    c = collections.Counter()
    for (mid, addr), n in leaves(pid).items():
        m = p["mappings"][mid]
        inside = m["memory_start"] <= addr < m["memory_limit"]
        c[(m["filename"], m["build_id"], m["memory_start"] != 0, inside)] += n
    return c


names = collections.Counter()
for (mid, addr), k in leaves(vdso).items():
    m = p["mappings"][mid]
    loc = next(l for l in p["locations"].values() if l["mapping_id"] == mid and l["address"] == addr)
    names[(m["filename"], ";".join(loc["names"]) or "0x%x" % addr)] += k
print("vdso workload, leaf frames by (mapping, name): %s" % dict(names.most_common(6)))
n = sum(names.values())
hit = sum(k for (f, name), k in names.items()
          if f == "[vdso]" and re.fullmatch(r"(__vdso_)?(clock_gettime|gettimeofday|time)", name))
check(n >= 20 and hit >= 0.3 * n, "vDSO frames named by the agent: %d of %d samples (%.0f %%)"
      % (hit, n, 100.0 * hit / max(n, 1)))
j = by_mapping(jit)
print("jit workload: %s" % dict(j))
n = sum(j.values())
hit = sum(k for (f, b, raw, inside), k in j.items() if f == "[anon]" and not b and raw and inside)
check(n >= 20 and hit >= 0.8 * n, "anonymous executable code: mapping [anon], no build ID, "
      "real address range (%d of %d samples)" % (hit, n))
g = by_mapping(gone)
print("deleted binary: %s" % dict(g))
n = sum(g.values())
hit = sum(k for (f, b, raw, inside), k in g.items() if b == bid and f.endswith(" (deleted)"))
check(n >= 20 and hit >= 0.8 * n, "deleted binary: its build ID, path marked (deleted) "
      "(%d of %d samples)" % (hit, n))
sys.exit(1 if fail else 0)
PY
