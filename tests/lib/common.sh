# Sourced by the tests/run-compare-*.sh scripts: pinned environment, skips, and compare(),
# which runs tests/lib/compare.py and remembers a failure without stopping the test, so that
# one run reports every comparison. Call finish last.
export LC_ALL=C
. "$(dirname "${BASH_SOURCE[0]}")/has.sh"
unset DEBUGINFOD_URLS
export PYTHONDONTWRITEBYTECODE=1 # keep tests/lib free of __pycache__
: "${BUILD:?BUILD must name the build dir}" "${T:?T must name the temp dir of the test}"
TESTS=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SYM="$BUILD/bin/fleetsym-symbolize"
COMPARE="$TESTS/lib/compare.py"
failed=0

# compare ARGS... : tests/lib/compare.py --ours $SYM ARGS in the background, at most $PAR at
# once (eu-addr2line is slow on C++); compare_wait prints their reports in order and
# remembers a failure. Reference outputs are cached in $T/ref-cache, so that a later run on
# the same file, flags and addresses (the index runs) reuses them.
PAR=${PAR:-2}
njobs=0 nshown=0
compare() {
	local log="$T/compare-jobs/$((++njobs))"
	mkdir -p "$T/compare-jobs"
	echo "compare.py $*" >"$log.cmd"
	(
		rc=0
		python3 "$COMPARE" --ours "$SYM" --cache-dir "$T/ref-cache" "$@" >"$log.out" 2>&1 ||
			rc=$?
		echo $rc >"$log.rc"
	) &
	while [ "$(jobs -rp | wc -l)" -ge "$PAR" ]; do
		wait -n || true
	done
}

compare_wait() {
	local log
	wait
	while [ "$nshown" -lt "$njobs" ]; do
		log="$T/compare-jobs/$((++nshown))"
		cat "$log.out"
		if [ "$(cat "$log.rc")" != 0 ]; then
			echo "FAILED: $(cat "$log.cmd")"
			failed=1
		fi
	done
}

fail() {
	echo "FAILED: $*"
	failed=1
}

# check CMD... : run CMD now; a failure is remembered.
check() {
	"$@" || fail "$*"
}

# build_id FILE : the lowercase hex GNU build ID of FILE.
build_id() {
	readelf -n "$1" | sed -n 's/^ *Build ID: *\([0-9a-f]*\)$/\1/p' | head -1
}

# dwarf_then_index EXE N SEED1 SEED2 : compare each of FLAG_SETS on N addresses of EXE, from
# its DWARF (seed SEED1), then from its index, written to $T/index (idx; seed SEED2).
dwarf_then_index() {
	local exe=$1 n=$2 seed1=$3 seed2=$4 f
	echo "== from DWARF"
	for f in "${FLAG_SETS[@]}"; do
		compare -e "$exe" -n "$n" --seed "$seed1" --flags "$f" --min 2000
	done
	compare_wait

	echo "== from the index"
	idx="$T/index"
	make_index "$idx" "$exe" -e "$exe"
	for f in "${FLAG_SETS[@]}"; do
		compare -e "$exe" --ours-opt=--index-dir --ours-opt="$idx" -n "$n" --seed "$seed2" \
			--flags "$f" --min 2000
	done
}

# make_index DIR FILE ARGS... : fleetsym-symbolize ARGS --index-dir DIR, which must write the
# index of FILE's build ID there.
make_index() {
	local dir=$1 file=$2
	shift 2
	mkdir -p "$dir"
	"$SYM" "$@" --index-dir "$dir" </dev/null
	[ -s "$dir/$(build_id "$file").symidx" ] || fail "no index at $dir/$(build_id "$file").symidx"
}

# debug_path DIR FILE : where FILE's separate debug file is under DIR's .build-id layout.
debug_path() {
	local id
	id=$(build_id "$2")
	echo "$1/.build-id/${id:0:2}/${id:2}.debug"
}

finish() {
	compare_wait
	if [ "$failed" != 0 ]; then
		echo "FAIL"
		exit 1
	fi
	echo "PASS"
	exit 0
}

[ -x "$SYM" ] || { echo "FAILED: $SYM not built (make)"; exit 1; }
need python3 readelf
