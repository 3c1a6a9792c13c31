#!/usr/bin/env bash
# run alone
# fleetsym-agent on a fork-heavy fixture: children that live ~50 ms each and are gone long
# before user space could read their /proc/PID/maps. Their frames must still carry the
# fixture's build ID (taken by the kernel at sample time) and symbolize to burn_hot().
# System-wide sampling (no --pid: the children are other processes).
set -u
. "$(dirname "$0")/lib/agent_common.sh"
cd "$T"
build_fixture

bg timeout 30 "$AGENT" --output "$T/fork.pb.gz" --frequency 99 --duration 5 -v
agent=$BG
sleep 0.5
./agent_work fork 4 50 >fork.out 2>children &
parent=$!
PIDS+=("$parent")
wait "$parent"
echo "fixture: $(cat fork.out) (parent pid $parent)"
wait "$agent" 2>/dev/null
rc=$?
[ "$rc" = 0 ] || { echo "FAIL: agent exited with $rc"; exit 1; }
python3 "$CHECK" fork fork.pb.gz --parent "$parent" --comm agent_work --exe agent_work.full \
	--func burn_hot --sym "$SYM" --min-children 15 --min-share 0.9 --children children
