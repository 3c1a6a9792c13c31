#!/usr/bin/env bash
# run alone
# fleetsym-agent, offline (--output): real BPF at 99 Hz on a CPU-bound fixture filtered by
# --pid. The pprof must hold the fixture's samples with pid/tid/comm, leaf frames in a mapping
# with the fixture's build ID whose file offsets (via PT_LOAD) symbolize to burn_hot(), the
# caller frame (return address - 1) to the inlined drive(), and go tool pprof must read it.
set -u
. "$(dirname "$0")/lib/agent_common.sh"
cd "$T"
build_fixture
fail=0

bg ./agent_work burn 15
work=$BG
sleep 0.3
timeout 30 "$AGENT" --output "$T/burn.pb.gz" --frequency 99 --duration 4 --pid "$work" \
	--label env=test -v 2>agent.err
rc=$?
cat agent.err
[ "$rc" = 0 ] || { echo "FAIL: agent exited with $rc"; exit 1; }
[ -s burn.pb.gz ] || { echo "FAIL: no profile written"; exit 1; }
python3 "$CHECK" hot burn.pb.gz --pid "$work" --comm agent_work --exe agent_work.full \
	--func burn_hot --caller drive --sym "$SYM" --only-pid --min-samples 40 || fail=1
for k in ringbuf_full user_stack_err user_truncated bad_records profile_full; do
	[ "$(stat_field agent.err "$k")" = 0 ] || { echo "FAIL: $k=$(stat_field agent.err "$k")"; fail=1; }
done

# --no-kernel: no [kernel.kallsyms] frames at all
timeout 30 "$AGENT" --output "$T/nok.pb.gz" --frequency 99 --duration 1 --pid "$work" \
	--no-kernel 2>nok.err || { echo "FAIL: --no-kernel run"; cat nok.err; fail=1; }
python3 - "$TESTS/lib" nok.pb.gz <<'PY' || fail=1
import sys
sys.path.insert(0, sys.argv[1])
import agent_pprof
p = agent_pprof.load(sys.argv[2])
k = [m for m in p["mappings"].values() if m["filename"] == "[kernel.kallsyms]"]
n = sum(s["value"][0] // p["period"] for s in p["samples"])
print("%s --no-kernel: %d samples, %d kernel mappings" % ("ok  " if not k else "FAIL", n, len(k)))
sys.exit(1 if k or not p["samples"] else 0)
PY
kill "$work" 2>/dev/null

# a standard pprof reader accepts it (no symbolization: nothing may be fetched)
if command -v go >/dev/null; then
	if HOME="$T" GOCACHE="$T/gocache" GOFLAGS=-mod=mod GOPROXY=off timeout 60 \
		go tool pprof -symbolize=none -raw burn.pb.gz >raw.txt 2>raw.err; then
		echo "ok   go tool pprof -raw reads the profile ($(grep -c '' raw.txt) lines)"
		grep -q 'cpu/nanoseconds' raw.txt || { echo "FAIL: no cpu/nanoseconds in -raw"; fail=1; }
		grep -A20 '^Mappings' raw.txt | grep -q "agent_work $FIXTURE_BUILD_ID" ||
			{ echo "FAIL: fixture build ID not in -raw's mappings"; fail=1; }
	else
		echo "FAIL: go tool pprof -raw: $(head -3 raw.err)"
		fail=1
	fi
else
	echo "note: go not installed, pprof reader check left out"
fi

exit $fail
