# Sourced by tests/lib/common.sh, service.sh and agent_common.sh.
# has PATTERN CMD... : whether CMD's output has a line matching the extended regex PATTERN.
# (CMD | grep -q under pipefail fails when grep exits first and CMD gets SIGPIPE.)
has() {
	local pat=$1 out
	shift
	out=$("$@" 2>/dev/null) || true
	grep -Eq -- "$pat" <<<"$out"
}
