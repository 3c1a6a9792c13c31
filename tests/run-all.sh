#!/usr/bin/env bash
# Runs integration tests (tests/run-*.sh). Each exits 0 (pass), 77 (skip) or anything else
# (fail), gets its own temp dir in $T and the build dir in $BUILD, and has its output kept in
# build/test-logs/NAME.log. Ends with "N passed, N failed, N skipped". Under CI (CI=true) a skip
# fails unless tests/skips.allowed lists the test; a named test that does not exist fails, and
# so does a run that selects no test.
#
# JOBS=N (default 1) runs up to N tests at once, except those that carry the line
# "# run alone" (the agent's tests, which sample the whole machine or measure their own CPU
# share): those run afterwards, one at a time. Every test must hold on a loaded machine anyway;
# JOBS=2 is what CI's sanitizer pass uses to stay within its time.
set -u
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
export BUILD=${BUILD:-build}
case "$BUILD" in /*) ;; *) BUILD="$top/$BUILD" ;; esac
export LC_ALL=C
unset DEBUGINFOD_URLS
JOBS=${JOBS:-1}
logs="$BUILD/test-logs"
mkdir -p "$logs"
pass=0 fail=0 skip=0
[ $# -gt 0 ] || { echo "run-all: no test selected"; echo "0 passed, 1 failed, 0 skipped"; exit 1; }
skip_allowed() {
	grep -q "^$1[[:space:]]" "$top/tests/skips.allowed" 2>/dev/null
}
under_ci() {
	[ "${CI:-}" = true ] || [ "${CI:-}" = 1 ]
}

# run_one TEST: runs it; leaves "rc secs tempdir" in $logs/NAME.rc
run_one() {
	local t=$1 name T start rc
	name=$(basename "$t" .sh)
	T=$(mktemp -d "/tmp/fleetsym-$name.XXXXXX")
	start=$(date +%s)
	T="$T" bash "$t" >"$logs/$name.log" 2>&1
	rc=$?
	echo "$rc $(($(date +%s) - start)) $T" >"$logs/$name.rc"
}

# report TEST: the verdict of a finished test, counted
report() {
	local name rc secs T
	name=$(basename "$1" .sh)
	read -r rc secs T <"$logs/$name.rc"
	rm -f "$logs/$name.rc"
	case $rc in
	0) pass=$((pass + 1)); echo "ok   $name (${secs}s)"; rm -rf "$T" ;;
	77) if under_ci && ! skip_allowed "$name"; then
		fail=$((fail + 1))
		echo "FAIL $name: skipped under CI and not in tests/skips.allowed: $(tail -1 "$logs/$name.log")"
	    else
		skip=$((skip + 1))
		echo "skip $name: $(tail -1 "$logs/$name.log")"
	    fi
	    rm -rf "$T" ;;
	*) fail=$((fail + 1)); echo "FAIL $name (rc=$rc, ${secs}s; log $logs/$name.log, files $T)"
	   # what failed first (a long log's tail may not show it), then how the log ends
	   grep -m 8 -E '^ *FAIL' "$logs/$name.log" | sed 's/^/    /'
	   echo "    -- the log's last lines:"
	   tail -20 "$logs/$name.log" | sed 's/^/    /'
	   summary+=("$name: $(grep -m 1 -E '^ *FAIL' "$logs/$name.log" | cut -c 1-300)") ;;
	esac
}

shared=() alone=() summary=()
for t in "$@"; do
	if [ ! -f "$t" ]; then
		fail=$((fail + 1))
		echo "FAIL $t: no such test"
		continue
	fi
	[ "$(basename "$t" .sh)" = run-all ] && continue
	if [ "$JOBS" -gt 1 ] && grep -qx '# run alone' "$t"; then
		alone+=("$t")
	else
		shared+=("$t")
	fi
done

# the shared ones, up to JOBS at once, reported in the order they were given
declare -A pid_of
next=0
for ((i = 0; i < ${#shared[@]}; i++)); do
	while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do
		wait -n
	done
	run_one "${shared[i]}" &
	pid_of[$i]=$!
	while [ "$next" -le "$i" ] && ! kill -0 "${pid_of[$next]}" 2>/dev/null; do
		wait "${pid_of[$next]}" 2>/dev/null
		report "${shared[next]}"
		next=$((next + 1))
	done
done
for (( ; next < ${#shared[@]}; next++)); do
	wait "${pid_of[$next]}" 2>/dev/null
	report "${shared[next]}"
done
for t in "${alone[@]}"; do
	run_one "$t"
	report "$t"
done
for line in "${summary[@]}"; do echo "failed: $line"; done
echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" = 0 ]
