#!/usr/bin/env bash
# bench/symbolize.sh - throughput, latency and memory of fleetsym-symbolize against
# llvm-symbolizer and eu-addr2line on a large real C++ binary with separate debug info:
# OpenJDK 17's libjvm.so and its debug file from openjdk-17-dbg (~156 MB, SHF_COMPRESSED).
# Not part of `make check`; run with `make bench` or directly.
#
#   bench/symbolize.sh            (env: N=20000 EU_N=500 REPS=3 WARM_REPS=5 SEED=20240601)
#   FLEETSYM=/path/to/fleetsym-symbolize [FLEETSYM_REV=label] bench/symbolize.sh
#                                 measure that binary instead of building build/bin's
#
# What it measures, each as one process fed every address on stdin, output to a file, peak
# RSS (and user+sys CPU time) from /usr/bin/time -f '%e %M %U %S' and wall time from the shell's microsecond clock around it
# (%e has 10 ms resolution), median of REPS runs (WARM_REPS for indexed runs):
#   llvm-symbolizer --obj=DEBUG --inlining --demangle    on the original and a decompressed copy
#   eu-addr2line -e libjvm.so -f -i -C                   on EU_N addresses (it is slow), scaled
#   fleetsym-symbolize -e libjvm.so -f -i -C             cold (no index), original + decompressed
#   ... --index-dir D on an empty D                      answers cold, then writes D/<id>.symidx
#   ... --index-dir D with the index present             warm
#   one address, no index                                fleetsym (both files), llvm-symbolizer
# The debug file's compressed sections cost every tool a decompression on every start; the
# product decompresses once when debug info enters its cache, so the decompressed rows are
# the ones that correspond to production. The page cache is warm for every run (all inputs
# are read once before measuring).
#
# Results: printed and written to build/bench/symbolize-<date>.txt.
set -euo pipefail
export LC_ALL=C # "." in EPOCHREALTIME and in printf

N=${N:-20000}
EU_N=${EU_N:-500}
REPS=${REPS:-3}
WARM_REPS=${WARM_REPS:-5}
SEED=${SEED:-20240601}

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
HELPER="$ROOT/bench/symbolize_helper.py"
FLEETSYM_GIVEN=${FLEETSYM:-}
FLEETSYM=${FLEETSYM:-$ROOT/build/bin/fleetsym-symbolize}
SO=/usr/lib/jvm/java-17-openjdk-amd64/lib/server/libjvm.so
TIME=/usr/bin/time

# arithmetic without bc: calc EXPR prints it; holds EXPR succeeds when it is true
calc() { awk "BEGIN { printf \"%.6f\", ($1) }"; }
holds() { awk "BEGIN { exit !($1) }"; }
die() { echo "bench/symbolize.sh: $*" >&2; exit 1; }
say() { echo "== $*" >&2; }

# ---------------------------------------------------------------- packages and build
need_pkgs() {
	local missing=() p
	# hyperfine is not used below (it reports no peak RSS); it is installed, as by
	# `.ci/deps.sh --bench`, for follow-up measurements of single commands.
	for p in openjdk-17-dbg hyperfine time llvm elfutils binutils; do
		[[ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)" == *'install ok installed'* ]] ||
			missing+=("$p")
	done
	command -v python3 >/dev/null || missing+=(python3)
	[ ${#missing[@]} -eq 0 ] && return 0
	[ "$(id -u)" = 0 ] || die "missing packages (${missing[*]}); run as root or install them"
	say "installing ${missing[*]}"
	DEBIAN_FRONTEND=noninteractive apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
}
need_pkgs
for t in llvm-symbolizer eu-addr2line objcopy readelf python3; do
	command -v "$t" >/dev/null || die "$t not found"
done
[ -x "$TIME" ] || die "$TIME not found (package time)"
if [ -z "$FLEETSYM_GIVEN" ]; then
	make -s -C "$ROOT" build/bin/fleetsym-symbolize >&2 || die "build failed (make -C $ROOT)"
fi
[ -x "$FLEETSYM" ] || die "$FLEETSYM is not executable"
[ -r "$SO" ] || die "$SO not found (openjdk-17-jre-headless)"

# the build ID of an ELF file (awk reads all of readelf's output: no SIGPIPE under pipefail)
build_id() { readelf -n "$1" | awk '/Build ID:/ && !id { id = $3 } END { print id }'; }
BUILD_ID=$(build_id "$SO")
[ -n "$BUILD_ID" ] || die "$SO has no build ID"
DEBUG=/usr/lib/debug/.build-id/${BUILD_ID:0:2}/${BUILD_ID:2}.debug
[ -r "$DEBUG" ] || die "$DEBUG not found: is openjdk-17-dbg the same version as the JRE?"

# ---------------------------------------------------------------- scratch space
TMP=$(mktemp -d "${TMPDIR:-/tmp}/fleetsym-bench.XXXXXX")
cleanup() { rm -rf "$TMP"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

avail_kb=$(df -Pk "$TMP" | awk 'NR == 2 { print $4 }')
need_kb=$(($(stat -c %s "$DEBUG") * 4 / 1024))
[ "$avail_kb" -gt "$need_kb" ] || die "need ~$((need_kb / 1024)) MB free under $TMP"

say "addresses: $N random bytes in random sized FUNC symbols of $DEBUG (seed $SEED)"
python3 "$HELPER" addrs "$DEBUG" "$N" "$SEED" >"$TMP/addrs.txt" 2>"$TMP/addrs.log"
head -n "$EU_N" "$TMP/addrs.txt" >"$TMP/addrs-eu.txt"
head -n 1 "$TMP/addrs.txt" >"$TMP/addr1.txt"

say "decompressing the debug file (objcopy --decompress-debug-sections)"
DDIR=$TMP/debug
DEC=$DDIR/.build-id/${BUILD_ID:0:2}/${BUILD_ID:2}.debug
mkdir -p "$(dirname "$DEC")"
objcopy --decompress-debug-sections "$DEBUG" "$DEC"
[ "$(build_id "$DEC")" = "$BUILD_ID" ] ||
	die "decompressed copy lost its build ID"
[ "$(readelf -SW "$DEC" | awk '$0 ~ /\] \.debug/ && / C / { n++ } END { print n + 0 }')" = 0 ] ||
	die "decompressed copy still has SHF_COMPRESSED sections"

LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
# Warm the page cache for every input, so that no tool pays for the first read.
cat "$SO" "$DEBUG" "$DEC" "$FLEETSYM" >/dev/null

# ---------------------------------------------------------------- measuring
# measure NAME REPS INPUT [--fresh-dir DIR] -- CMD...
# Runs CMD REPS times with INPUT on stdin, stdout to $TMP/NAME.out (the last run's),
# stderr to $TMP/NAME.err; records median wall (s) and peak RSS (KB) in WALL[NAME], RSS[NAME].
# --fresh-dir DIR: remove DIR before each run (index builds).
declare -A WALL RSS NADDR SPREAD CPU
measure() {
	local name=$1 reps=$2 input=$3 fresh="" i rc t0 t1 e r w u sy
	shift 3
	if [ "$1" = --fresh-dir ]; then fresh=$2; shift 2; fi
	[ "$1" = -- ] && shift
	local walls=() rsss=() cpus=()
	say "$name: $reps x ($(wc -l <"$input") addresses)"
	for ((i = 0; i < reps; i++)); do
		[ -n "$fresh" ] && rm -rf "$fresh"
		rc=0
		t0=$EPOCHREALTIME
		"$TIME" -o "$TMP/time.txt" -f '%e %M %U %S' "$@" <"$input" >"$TMP/$name.out" \
			2>"$TMP/$name.err" || rc=$?
		t1=$EPOCHREALTIME
		if [ "$rc" != 0 ]; then
			echo "FAILED (exit $rc): $* < $input" >&2
			sed -n '1,20p' "$TMP/$name.err" >&2
			die "$name failed; reproducer above"
		fi
		# /usr/bin/time appends its line after any "Command exited ..." line: take the last
		read -r e r u sy < <(tail -n 1 "$TMP/time.txt")
		# %e has 10 ms resolution, too coarse for warm runs: wall is measured around
		# /usr/bin/time instead (us resolution; includes its fork+exec, against the tools)
		w=$(calc "$t1 - $t0")
		holds "$w + 0.02 >= $e" || die "wall clock $w s < /usr/bin/time's $e s?"
		walls+=("$w")
		rsss+=("$r")
		cpus+=("$(calc "$u + $sy")")
		printf '   run %d: %.3f s (time %%e %s, cpu %s+%s), %d MB\n' $((i + 1)) "$w" "$e" "$u" "$sy" \
			$((r / 1024)) >&2
	done
	WALL[$name]=$(python3 "$HELPER" median "${walls[@]}")
	CPU[$name]=$(python3 "$HELPER" median "${cpus[@]}")
	RSS[$name]=$(printf '%.0f' "$(python3 "$HELPER" median "${rsss[@]}")")
	NADDR[$name]=$(wc -l <"$input")
	SPREAD[$name]=$(printf '%s\n' "${walls[@]}" | sort -n | awk 'NR == 1 { lo = $1 } { hi = $1 } END { printf "%.3f-%.3f", lo, hi }')
}

LLVM=(llvm-symbolizer --inlining --demangle)
FS=("$FLEETSYM" -e "$SO" -f -i -C)
IDX=$TMP/index
IDX_DEC=$TMP/index-dec

measure llvm "$REPS" "$TMP/addrs.txt" -- "${LLVM[@]}" --obj="$DEBUG"
measure llvm_dec "$REPS" "$TMP/addrs.txt" -- "${LLVM[@]}" --obj="$DEC"
measure eu "$REPS" "$TMP/addrs-eu.txt" -- eu-addr2line -e "$SO" -f -i -C
measure fs_cold "$REPS" "$TMP/addrs.txt" -- "${FS[@]}"
measure fs_cold_dec "$REPS" "$TMP/addrs.txt" -- "${FS[@]}" --debug-dir "$DDIR"
measure fs_build_dec "$REPS" "$TMP/addrs.txt" --fresh-dir "$IDX_DEC" -- \
	"${FS[@]}" --debug-dir "$DDIR" --index-dir "$IDX_DEC"
measure fs_build "$REPS" "$TMP/addrs.txt" --fresh-dir "$IDX" -- "${FS[@]}" --index-dir "$IDX"
INDEX_FILE=$IDX/$BUILD_ID.symidx
[ -s "$INDEX_FILE" ] || die "no index written at $INDEX_FILE (stderr: $(head -c 300 "$TMP/fs_build.err"))"
measure fs_warm "$WARM_REPS" "$TMP/addrs.txt" -- "${FS[@]}" --index-dir "$IDX"
measure llvm_1 "$REPS" "$TMP/addr1.txt" -- "${LLVM[@]}" --obj="$DEBUG"
measure llvm_1_dec "$REPS" "$TMP/addr1.txt" -- "${LLVM[@]}" --obj="$DEC"
measure fs_1 "$REPS" "$TMP/addr1.txt" -- "${FS[@]}"
measure fs_1_dec "$REPS" "$TMP/addr1.txt" -- "${FS[@]}" --debug-dir "$DDIR"

# ---------------------------------------------------------------- agreement
say "checking answers"
CHECKS=()
same() { # same LABEL A B: record whether two outputs are byte-identical
	if cmp -s "$2" "$3"; then
		CHECKS+=("PASS  $1")
	else
		CHECKS+=("FAIL  $1 (first difference: $(cmp "$2" "$3" 2>&1 || true))")
	fi
}
same "fleetsym warm == fleetsym cold ($N answers, byte-identical)" \
	"$TMP/fs_warm.out" "$TMP/fs_cold.out"
same "fleetsym index-build run == fleetsym cold" "$TMP/fs_build.out" "$TMP/fs_cold.out"
same "fleetsym cold, decompressed file == cold, original file" \
	"$TMP/fs_cold_dec.out" "$TMP/fs_cold.out"
same "index built from decompressed file == index built from original" \
	"$IDX_DEC/$BUILD_ID.symidx" "$INDEX_FILE"
same "llvm-symbolizer, decompressed file == original file" "$TMP/llvm_dec.out" "$TMP/llvm.out"

# Innermost function names: a warm run with -a delimits the records of each address.
"${FS[@]}" --index-dir "$IDX" -a <"$TMP/addrs.txt" >"$TMP/fs_a.out" 2>/dev/null ||
	die "fleetsym -a run failed: ${FS[*]} --index-dir $IDX -a < addrs"
grep -v '^0x[0-9a-f]*$' "$TMP/fs_a.out" >"$TMP/fs_a_stripped.out" || true
same "fleetsym -a output minus address lines == cold output" \
	"$TMP/fs_a_stripped.out" "$TMP/fs_cold.out"
read -r NAMES_SAME NAMES_N FS_UNKNOWN LLVM_UNKNOWN < <(python3 "$HELPER" names \
	"$TMP/fs_a.out" "$TMP/llvm.out" "$N" 2>"$TMP/names.log")
[ "$NAMES_SAME" != ERROR ] || die "could not split outputs into $N records"

# eu-addr2line agreement (same output format): how many of its EU_N answers fleetsym repeats
"${FS[@]}" --index-dir "$IDX" <"$TMP/addrs-eu.txt" >"$TMP/fs_eu.out" 2>/dev/null ||
	die "fleetsym run on the eu-addr2line batch failed"
if cmp -s "$TMP/fs_eu.out" "$TMP/eu.out"; then
	EU_SAME="identical output"
else
	EU_SAME="outputs differ: $(diff "$TMP/fs_eu.out" "$TMP/eu.out" | grep -c '^<' || true) of $(wc -l <"$TMP/fs_eu.out") fleetsym lines not in eu-addr2line's"
fi

FS_STDERR=$(sort -u "$TMP/fs_cold.err" "$TMP/fs_warm.err" | sed -n 1p)

# ---------------------------------------------------------------- report
DATE=$(date +%Y-%m-%d-%H%M%S)
OUTDIR=$ROOT/build/bench
OUT=$OUTDIR/symbolize-$DATE.txt
mkdir -p "$OUTDIR"

DEBUG_SIZE=$(stat -c %s "$DEBUG")
DEC_SIZE=$(stat -c %s "$DEC")
INDEX_SIZE=$(stat -c %s "$INDEX_FILE")

report() {
	local k
	echo "fleetsym symbolizer benchmark, $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo "host: $(awk -F': *' '/model name/ && !m { m = $2 } END { print m }' /proc/cpuinfo), $(nproc) CPUs, $(awk '/MemTotal/ { printf "%.0f GB", $2 / 1048576 }' /proc/meminfo) RAM"
	if [ -n "$FLEETSYM_GIVEN" ]; then
		echo "fleetsym: $FLEETSYM (given by FLEETSYM${FLEETSYM_REV:+, built from $FLEETSYM_REV})"
	else
		local rev
		if rev=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null); then
			git -C "$ROOT" diff --quiet HEAD -- symbolizer cache lib ||
				rev+=" with uncommitted engine changes"
		else
			rev="(not a git checkout)"
		fi
		echo "fleetsym: $FLEETSYM, built by make from $ROOT at $rev"
	fi
	echo "load average (1/5/15 min) at start: $LOAD_START, at end: $(cut -d' ' -f1-3 /proc/loadavg)"
	if holds "${LOAD_START%% *} > 0.5 * $(nproc)"; then
		echo "WARNING: the machine was busy with other work when the benchmark started; timings"
		echo "         are inflated and noisy (see the min-max column). Rerun on an idle machine."
	fi
	echo "llvm-symbolizer: $(llvm-symbolizer --version | awk '/version/ && !v { sub(/^ +/, ""); v = $0 } END { print v }'); eu-addr2line: $(eu-addr2line --version | sed -n 1p)"
	echo "binary: $SO"
	echo "  build ID $BUILD_ID, openjdk-17-dbg $(dpkg-query -W -f='${Version}' openjdk-17-dbg 2>/dev/null)"
	printf '  debug file %s: %.1f MB (SHF_COMPRESSED), decompressed copy %.1f MB\n' \
		"$DEBUG" "$(calc "$DEBUG_SIZE / 1048576")" "$(calc "$DEC_SIZE / 1048576")"
	echo "addresses: $N, seed $SEED: $(cat "$TMP/addrs.log")"
	echo "each row: one process, all addresses on stdin, output to a file; median of $REPS runs"
	echo "(warm: $WARM_REPS runs); peak RSS from /usr/bin/time -f '%e %M %U %S', wall from the"
	echo "shell's clock around /usr/bin/time (%e has 10 ms resolution); cpu s = median user+sys"
	echo "(less sensitive than wall to other load on the machine); page cache warm."
	echo "ratio = throughput / llvm-symbolizer's throughput on the same debug file variant"
	echo "(orig = the installed compressed file, dec = the decompressed copy). MB = 2^20 bytes."
	echo
	python3 - "$TMP/rows.tsv" <<'EOF'
import sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])]
hdr = ["tool", "addresses", "wall s", "addr/s", "x llvm", "peak RSS MB", "wall min-max", "cpu s"]
w = [max(len(r[i]) for r in rows + [hdr]) for i in range(len(hdr))]
fmt = lambda r: "  ".join(c.ljust(w[i]) if i == 0 else c.rjust(w[i]) for i, c in enumerate(r))
print(fmt(hdr)); print("  ".join("-" * x for x in w))
for r in rows: print(fmt(r))
EOF
	echo
	for k in "${NOTES[@]}"; do echo "$k"; done
	echo
	echo "targets:"
	for k in "${TARGETS[@]}"; do echo "  $k"; done
	echo
	echo "answers:"
	for k in "${CHECKS[@]}"; do echo "  $k"; done
	echo "  innermost function name equal to llvm-symbolizer's for $NAMES_SAME of $NAMES_N addresses" \
		"($(printf '%.1f' "$(calc "100 * $NAMES_SAME / $NAMES_N")") %; informational: llvm names"
	echo "    some frames after the symbol table, e.g. '(.isra.0)' clones and folded code);"
	echo "    '??' answers: fleetsym $FS_UNKNOWN, llvm-symbolizer $LLVM_UNKNOWN. Examples:"
	sed 's/^/  /' "$TMP/names.log"
	echo "  fleetsym vs eu-addr2line on the first $EU_N addresses (same text format): $EU_SAME"
	if [ -n "$FS_STDERR" ]; then
		echo "  note: fleetsym-symbolize writes to stderr on every run: $FS_STDERR"
	fi
}

# rows: tool, addresses, wall, addr/s, ratio, RSS
tput_of() { calc "${NADDR[$1]} / ${WALL[$1]}"; }
row() { # row KEY LABEL BASELINE_KEY
	local k=$1 t b=""
	t=$(tput_of "$k")
	[ -n "$3" ] && b=$(printf '%.2f' "$(calc "$t / $(tput_of "$3")")")
	if [ "${NADDR[$k]}" -gt 1 ]; then t=$(printf '%.0f' "$t"); else t=-; fi
	printf '%s\t%s\t%.3f\t%s\t%s\t%.0f\t%s\t%.2f\n' "$2" "${NADDR[$k]}" "${WALL[$k]}" "$t" "${b:--}" \
		"$(calc "${RSS[$k]} / 1024")" "${SPREAD[$k]}" "${CPU[$k]}"
}
{
	row llvm "llvm-symbolizer (orig)" llvm
	row llvm_dec "llvm-symbolizer (dec)" llvm_dec
	row eu "eu-addr2line -f -i -C (orig) [*]" llvm
	row fs_cold "fleetsym cold (orig)" llvm
	row fs_cold_dec "fleetsym cold (dec)" llvm_dec
	row fs_build "fleetsym index build (orig)" llvm
	row fs_build_dec "fleetsym index build (dec)" llvm_dec
	row fs_warm "fleetsym warm (index)" llvm
	row llvm_1 "llvm-symbolizer 1 addr (orig)" ""
	row llvm_1_dec "llvm-symbolizer 1 addr (dec)" ""
	row fs_1 "fleetsym cold 1 addr (orig)" ""
	row fs_1_dec "fleetsym cold 1 addr (dec)" ""
} >"$TMP/rows.tsv"

pct() { printf '%.1f' "$(calc "100 * $1 / $2")"; }
mb() { printf '%.1f' "$(calc "$1 / 1048576")"; }
NOTES=(
	"[*] eu-addr2line: $EU_N addresses only (~$(printf '%.0f' "$(tput_of eu)") addr/s); scaled to $N that is ~$(printf '%.0f' "$(calc "${WALL[eu]} * $N / $EU_N")") s (linear, startup included)."
	"index: $(mb "$INDEX_SIZE") MB = $(pct "$INDEX_SIZE" "$DEBUG_SIZE") % of the original debug file ($(mb "$DEBUG_SIZE") MB), $(pct "$INDEX_SIZE" "$DEC_SIZE") % of the decompressed one ($(mb "$DEC_SIZE") MB)"
	"index build (orig): $(printf '%.2f' "${WALL[fs_build]}") s total (answers $N cold, then writes the index; cold alone $(printf '%.2f' "${WALL[fs_cold]}") s), peak RSS $((RSS[fs_build] / 1024)) MB"
	"index build (dec):  $(printf '%.2f' "${WALL[fs_build_dec]}") s total (cold alone $(printf '%.2f' "${WALL[fs_cold_dec]}") s), peak RSS $((RSS[fs_build_dec] / 1024)) MB"
)

# targets (pass/fail, no rounding in the engine's favour)
TARGETS=()
verdict() { # verdict CONDITION(awk) TEXT
	if holds "$1"; then TARGETS+=("PASS  $2"); else TARGETS+=("FAIL  $2"); fi
}
t1=$(tput_of llvm) t2=$(tput_of llvm_dec)
best_llvm=$(calc "$t1 > $t2 ? $t1 : $t2")
warm_x=$(calc "$(tput_of fs_warm) / $best_llvm")
verdict "$warm_x >= 500" "warm >= 500x llvm-symbolizer throughput (vs llvm's faster variant): $(printf '%.0f' "$warm_x")x"
verdict "${WALL[fs_cold]} <= ${WALL[llvm]}" "cold batch no slower than llvm-symbolizer, original file: $(printf '%.2f' "${WALL[fs_cold]}") s vs $(printf '%.2f' "${WALL[llvm]}") s"
verdict "${WALL[fs_cold_dec]} <= ${WALL[llvm_dec]}" "cold batch no slower than llvm-symbolizer, decompressed file: $(printf '%.2f' "${WALL[fs_cold_dec]}") s vs $(printf '%.2f' "${WALL[llvm_dec]}") s"
verdict "${WALL[fs_1]} <= 0.5 * ${WALL[llvm_1]}" "single cold address well under llvm-symbolizer's (<= half), original file: $(printf '%.2f' "${WALL[fs_1]}") s vs $(printf '%.2f' "${WALL[llvm_1]}") s"
verdict "${WALL[fs_1_dec]} <= 0.5 * ${WALL[llvm_1_dec]}" "single cold address well under llvm-symbolizer's (<= half), decompressed file: $(printf '%.2f' "${WALL[fs_1_dec]}") s vs $(printf '%.2f' "${WALL[llvm_1_dec]}") s"
verdict "${RSS[fs_build]} * 2 <= ${RSS[llvm]}" "index build peak RSS <= half of llvm-symbolizer's, original file: $((RSS[fs_build] / 1024)) MB vs $((RSS[llvm] / 1024)) MB"
verdict "${RSS[fs_build_dec]} * 2 <= ${RSS[llvm_dec]}" "index build peak RSS <= half of llvm-symbolizer's, decompressed file: $((RSS[fs_build_dec] / 1024)) MB vs $((RSS[llvm_dec] / 1024)) MB"
verdict "$INDEX_SIZE * 4 <= $DEBUG_SIZE" "index <= 25 % of the debug file as installed (compressed): $(pct "$INDEX_SIZE" "$DEBUG_SIZE") %"
verdict "$INDEX_SIZE * 4 <= $DEC_SIZE" "index <= 25 % of the decompressed debug file: $(pct "$INDEX_SIZE" "$DEC_SIZE") %"

report | tee "$OUT"
echo "results written to $OUT" >&2
