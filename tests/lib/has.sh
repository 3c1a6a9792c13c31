# Sourced by tests/lib/common.sh, service.sh and agent_common.sh: skip(), need() and has().

skip() {
	echo "SKIP: $*"
	exit 77
}

# need TOOL... : skip unless every tool is on PATH.
need() {
	local t
	for t in "$@"; do
		command -v "$t" >/dev/null || skip "$t not installed"
	done
}

# has PATTERN CMD... : whether CMD's output has a line matching the extended regex PATTERN.
# (CMD | grep -q under pipefail fails when grep exits first and CMD gets SIGPIPE.)
has() {
	local pat=$1 out
	shift
	out=$("$@" 2>/dev/null) || true
	grep -Eq -- "$pat" <<<"$out"
}
