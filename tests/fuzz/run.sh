#!/usr/bin/env bash
# make fuzz: run each libFuzzer target of BUILD_DIR/fuzz/ for SECONDS on its seed corpus
# (tests/fuzz/<target>/, read only) plus its working corpus (BUILD_DIR/corpus/<target>/, where
# new inputs go), JOBS targets at once. A crash, leak, sanitizer report or timeout fails the
# run; the input is left in BUILD_DIR/crashes/ and the log in BUILD_DIR/logs/<target>.log.
#   tests/fuzz/run.sh BUILD_DIR SECONDS JOBS TARGET...
set -euo pipefail
build=$1 secs=$2 jobs=$3
shift 3
cd "$(dirname "$0")/../.."
mkdir -p "$build/corpus" "$build/crashes" "$build/logs"
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}

run_one() {
	local t=$1 build=$2 secs=$3 log rc
	log=$build/logs/$t.log
	mkdir -p "$build/corpus/$t"
	set +e
	"$build/fuzz/$t" -max_total_time="$secs" -timeout=20 -rss_limit_mb=2560 -print_final_stats=1 \
		-artifact_prefix="$build/crashes/$t-" "$build/corpus/$t" "tests/fuzz/$t" >"$log" 2>&1
	rc=$?
	set -e
	local execs
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
	if [ "$rc" -ne 0 ]; then
		echo "FAIL $t (exit $rc, ${execs:-?} runs): $log"
		# the harness's own complaint (fuzz_*: lines) and the sanitizer's first report, so
		# that a CI log says why without the build dir
		grep -E "^$t:|ERROR|SUMMARY|runtime error|deadly|timeout" "$log" | head -20 |
			sed 's/^/    /'
		grep -m1 -A25 -E '^==[0-9]+==ERROR' "$log" | sed 's/^/    /'
		return 1
	fi
	echo "ok   $t: ${secs} s, ${execs:-?} runs, corpus $(find "$build/corpus/$t" -type f | wc -l) files"
}
export -f run_one

printf '%s\n' "$@" | xargs -P "$jobs" -I{} bash -c 'run_one "$@"' _ {} "$build" "$secs" ||
	{ echo "fuzz: a target failed (inputs in $build/crashes/)"; exit 1; }
echo "fuzz: $# targets, $secs s each, no crash"
