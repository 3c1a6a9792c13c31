#!/usr/bin/env bash
# Runs integration tests (tests/run-*.sh). Each exits 0 (pass), 77 (skip) or anything else
# (fail), gets its own temp dir in $T and the build dir in $BUILD, and has its output kept in
# build/test-logs/NAME.log. Ends with "N passed, N failed, N skipped". Under CI (CI=true) a skip
# fails unless tests/skips.allowed lists the test; a named test that does not exist fails, and
# so does a run that selects no test.
set -u
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
export BUILD=${BUILD:-build}
case "$BUILD" in /*) ;; *) BUILD="$top/$BUILD" ;; esac
export LC_ALL=C
unset DEBUGINFOD_URLS
logs="$BUILD/test-logs"
mkdir -p "$logs"
pass=0 fail=0 skip=0
[ $# -gt 0 ] || { echo "run-all: no test selected"; echo "0 passed, 1 failed, 0 skipped"; exit 1; }
skip_allowed() {
	grep -q "^$1[[:space:]]" "$top/tests/skips.allowed" 2>/dev/null
}
for t in "$@"; do
	if [ ! -f "$t" ]; then
		fail=$((fail + 1))
		echo "FAIL $t: no such test"
		continue
	fi
	name=$(basename "$t" .sh)
	[ "$name" = run-all ] && continue
	T=$(mktemp -d "/tmp/fleetsym-$name.XXXXXX")
	start=$(date +%s)
	T="$T" bash "$t" >"$logs/$name.log" 2>&1
	rc=$?
	secs=$(($(date +%s) - start))
	case $rc in
	0) pass=$((pass + 1)); echo "ok   $name (${secs}s)"; rm -rf "$T" ;;
	77) if [ "${CI:-}" = true ] || [ "${CI:-}" = 1 ]; then under_ci=1; else under_ci=; fi
	    if [ -n "$under_ci" ] && ! skip_allowed "$name"; then
		fail=$((fail + 1))
		echo "FAIL $name: skipped under CI and not in tests/skips.allowed: $(tail -1 "$logs/$name.log")"
	    else
		skip=$((skip + 1))
		echo "skip $name: $(tail -1 "$logs/$name.log")"
	    fi
	    rm -rf "$T" ;;
	*) fail=$((fail + 1)); echo "FAIL $name (rc=$rc, ${secs}s; log $logs/$name.log, files $T)"
	   tail -25 "$logs/$name.log" | sed 's/^/    /' ;;
	esac
done
echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" = 0 ]
