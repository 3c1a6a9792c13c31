#!/usr/bin/env bash
# run alone
# fleetsym-agent cross-checked with perf on one run of one workload: tests/data/src/
# agent_shares.c (six hot functions with 40/25/15/10/6/4 % of the CPU time, two threads, a
# fixed amount of work) runs stripped under `perf record -F 99 -g` and, at the same time,
# under the agent at 99 Hz (--pid, --output); both see all of it (the workload waits for a
# gate file until both are attached). Both get the same debug info: the unstripped build,
# in perf's build-ID cache (a private $HOME) and given to fleetsym-symbolize for the agent's
# (build ID, file offset) frames. The self-function shares of `perf report --no-children
# --sort symbol` and of the agent's innermost frames are printed side by side; every function
# in either top 10 must agree within 5 percentage points.
set -u
. "$(dirname "$0")/lib/agent_common.sh"
command -v perf >/dev/null || skip "perf not installed (Debian: linux-perf)"
cd "$T" || exit 1

ROUNDS=${ROUNDS:-12} # x 2 threads x ~0.5 s of CPU: ~12 s of CPU, ~1150 samples at 99 Hz
"${CC:-gcc}" -O2 -g -fno-omit-frame-pointer -pthread -Wl,--build-id \
	"$TESTS/data/src/agent_shares.c" -o agent_shares.full || exit 1
strip -o agent_shares agent_shares.full || exit 1
echo "fixture: $T/agent_shares, build ID $(readelf -nW agent_shares | sed -n 's/.*Build ID: *//p')"

# perf's own state (build-ID cache, ~/.debug) stays in $T; the unstripped build is what perf
# finds there for the stripped file's build ID.
export HOME="$T/home"
mkdir -p "$HOME"
perf buildid-cache -a "$T/agent_shares.full" || { echo "FAIL: perf buildid-cache"; exit 1; }
perf record -F 99 -e cpu-clock -o probe.data -- true >probe.txt 2>&1 ||
	{ cat probe.txt; skip "perf record cannot sample cpu-clock here"; }

# perf starts the workload (events on from its exec); the workload waits for ./go.
bg perf record -F 99 -g -e cpu-clock -N -o perf.data -- ./agent_shares rounds "$ROUNDS" 2 go \
	>work.out 2>perf.err
perfpid=$BG
work=
for _ in $(seq 100); do
	work=$(pgrep -P "$perfpid" -x agent_shares) && break
	sleep 0.1
done
[ -n "$work" ] || { cat perf.err; echo "FAIL: the workload did not start under perf"; exit 1; }
PIDS+=("$work")

start_agent agent.err --output "$T/agent.pb.gz" --frequency 99 --pid "$work" -v
agent=$AGENT_PID
start=$(date +%s)
touch go

# Bounded: a machine too loaded to finish in 35 s gets the workload killed; both profilers
# then end with it, having seen the same (partial) run.
while kill -0 "$perfpid" 2>/dev/null && [ $(($(date +%s) - start)) -lt 35 ]; do
	sleep 0.2
done
if kill -0 "$perfpid" 2>/dev/null; then
	echo "note: the workload did not finish in 35 s (loaded machine): stopped; shares over what ran"
	kill "$work" 2>/dev/null
fi
wait "$perfpid"
# the agent ends by itself once its --pid is gone
for _ in $(seq 300); do kill -0 "$agent" 2>/dev/null || break; sleep 0.1; done
kill -0 "$agent" 2>/dev/null && { echo "FAIL: the agent did not exit after its --pid did"; exit 1; }
wait "$agent"
rc=$?
cat work.out
tail -1 perf.err
grep 'fleetsym-agent: stats' agent.err
[ "$rc" = 0 ] || { cat agent.err; echo "FAIL: agent exited with $rc"; exit 1; }

perf report -i perf.data --no-children --sort symbol --stdio -g none -n --percent-limit 0 \
	>perf-report.txt 2>perf-report.err || { cat perf-report.err; echo "FAIL: perf report"; exit 1; }
python3 "$TESTS/lib/agent_perfcmp.py" --profile agent.pb.gz --pid "$work" \
	--exe "$T/agent_shares.full" --sym "$SYM" --perf-report perf-report.txt \
	--design hot40=40 --design hot25=25 --design hot15=15 --design hot10=10 \
	--design hot06=6 --design hot04=4 --top 10 --max-diff 5
