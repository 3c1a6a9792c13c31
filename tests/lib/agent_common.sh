# Sourced by tests/run-agent-*.sh: pinned environment, the root/BTF skip (CI is root with BTF,
# so there these tests run), the fixture build, and a cleanup trap that kills every process
# the test started (by pid) and restores kernel.bpf_stats_enabled.
export LC_ALL=C
unset DEBUGINFOD_URLS
: "${BUILD:?BUILD must name the build dir}" "${T:?T must name the temp dir of the test}"
TESTS=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
. "$TESTS/lib/has.sh"
AGENT="$BUILD/bin/fleetsym-agent"
SYM="$BUILD/bin/fleetsym-symbolize"
CHECK="$TESTS/lib/agent_check.py"
PIDS=()
BPF_STATS_OLD=

[ -x "$AGENT" ] || { echo "FAIL: $AGENT is not built"; exit 1; }
[ "$(id -u)" = 0 ] || skip "needs root to load BPF programs"
[ -r /sys/kernel/btf/vmlinux ] || skip "the kernel has no BTF (/sys/kernel/btf/vmlinux)"
for tool in python3 readelf strip timeout "${CC:-gcc}"; do
	command -v "$tool" >/dev/null || skip "$tool not installed"
done

agent_cleanup() {
	local p
	for p in "${PIDS[@]}"; do
		kill -9 "$p" 2>/dev/null
	done
	for p in "${PIDS[@]}"; do
		wait "$p" 2>/dev/null
	done
	[ -n "$BPF_STATS_OLD" ] && sysctl -qw kernel.bpf_stats_enabled="$BPF_STATS_OLD"
	return 0
}
trap agent_cleanup EXIT

# bg CMD...: start CMD in the background, remember its pid in $BG (and for the cleanup).
bg() {
	"$@" &
	BG=$!
	PIDS+=("$BG")
}

# The fixture: $T/agent_work.full (with DWARF, for symbolizing) and $T/agent_work, the same
# build stripped, which is what runs (hosts have no symbols). comm is "agent_work".
build_fixture() {
	"${CC:-gcc}" -O2 -g -fno-omit-frame-pointer -Wl,--build-id \
		"$TESTS/data/src/agent_work.c" -o "$T/agent_work.full" || exit 1
	strip -o "$T/agent_work" "$T/agent_work.full" || exit 1
	FIXTURE_BUILD_ID=$(readelf -nW "$T/agent_work" | sed -n 's/.*Build ID: *//p')
	echo "fixture: $T/agent_work, build ID $FIXTURE_BUILD_ID"
}

# start_agent LOG ARGS...: fleetsym-agent ARGS (with -v: "sampling" is an info line) in the
# background, stderr to LOG, its pid in $AGENT_PID (and for the cleanup); returns once it
# samples (at most 30 s); fails the test if it does not, or if it warned at start (verifier,
# attach).
start_agent() {
	local log=$1
	shift
	bg "$AGENT" "$@" 2>"$log"
	AGENT_PID=$BG
	for _ in $(seq 300); do
		grep -q 'info: sampling' "$log" && break
		kill -0 "$AGENT_PID" 2>/dev/null || break
		sleep 0.1
	done
	grep -q 'info: sampling' "$log" || { cat "$log"; echo "FAIL: the agent did not start"; exit 1; }
	if grep -E "warning|error" "$log"; then
		echo "FAIL: the agent warned at start (verifier, attach)"
		exit 1
	fi
}

# stat_field FILE KEY: the key=value of the agent's last "stats" line in FILE.
stat_field() {
	grep 'fleetsym-agent: stats' "$1" | tail -1 | tr ' ' '\n' | awk -F= -v k="$2" '$1 == k {print $2}'
}
