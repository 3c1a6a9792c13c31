#!/usr/bin/env bash
# eu-addr2line parity of fleetsym-symbolize's inputs and -S/-x: symbols as addresses (NAME, NAME+OFF,
# NAME-OFF, resolved through the file's symbol table, .dynsym when it has no .symtab). Every
# function symbol of a fixture built here, and of libc (stripped; its DWARF from libc6-dbg by
# build ID), at several offsets, answered by both tools in one batch per flag set (-f -i -a,
# -S, -S -f -i, -x -a -f -i, -A -f, -F -f -i; --relative on fixtures built from relative
# paths); numeric addresses over the fixture's whole loaded range and past it (-S, -x, -F,
# --relative -F) and spread over libc (-F); the outputs must be equal line for line.
set -euo pipefail
. "$(dirname "$0")/lib/common.sh"
need gcc eu-addr2line nm readelf

exe="$T/inline_c"
gcc -O2 -g -o "$exe" "$TESTS/data/src/inline_c.c"

# inputs: each defined function symbol with +0, +0x1, +4, -0x0 (names with '.' or '@' are
# left out: eu-addr2line reads NAME up to the first '+'/'-', and versioned names are not
# symbol-table names)
inputs() {
	nm --defined-only "$1" | awk '$2 ~ /^[tTwW]$/ && $3 !~ /[.@]/ { print $3 }' | sort -u |
		awk -v n="$2" "NR <= n" | while read -r s; do
		printf '%s\n%s+0x1\n%s+4\n%s-0x0\n' "$s" "$s" "$s" "$s"
	done
}

total=0
# -S: the symbol+offset line, -x: and the section (both also inside the inlined head line)
FLAG_SETS=("-f -i -a" "-S" "-S -f -i" "-x -a -f -i" "-A -f" "-F -f -i")
# both tools on FILE with each FLAG_SET, INPUT_FILE as stdin, into $T/eu.out and $T/ours.out
run_both() { # FILE INPUT_FILE FLAG_SET...
	local f file=$1 in=$2
	shift 2
	: >"$T/eu.out"
	: >"$T/ours.out"
	for f in "$@"; do
		# shellcheck disable=SC2086 # a flag set is several words
		eu-addr2line $f -e "$file" <"$in" >>"$T/eu.out" 2>/dev/null || true
		# shellcheck disable=SC2086
		"$SYM" $f -e "$file" <"$in" >>"$T/ours.out" 2>/dev/null || true
	done
}
cmp_inputs() { # FILE NAMES_FILE
	local n
	# names eu-addr2line does not find (it prints nothing for them; we answer ?? so that a
	# co-process gets one answer per line) are left out and counted
	eu-addr2line -e "$1" <"$2" 2>&1 >/dev/null |
		sed -n "s/^eu-addr2line: cannot find symbol '\(.*\)'$/\1/p" | sort -u >"$T/unknown"
	echo "/nothing/" >>"$T/unknown" # awk reads an empty first file as none
	echo "$1: $(($(wc -l <"$T/unknown") - 1)) names eu-addr2line does not find, left out"
	awk 'NR == FNR { u[$0] = 1; next } { n = $0; sub(/[-+].*/, "", n); if (!(n in u)) print }' \
		"$T/unknown" "$2" >"$T/in.cmp"
	mv "$T/in.cmp" "$2"
	run_both "$1" "$2" "${FLAG_SETS[@]}"
	n=$(wc -l <"$2")
	[ "$n" -ge 20 ] || fail "only $n inputs for $1"
	diff -u "$T/eu.out" "$T/ours.out" >"$T/diff" || {
		head -40 "$T/diff"
		fail "$1: outputs differ"
		return
	}
	# answers from DWARF, not just ??: the debug file was found and read
	[ "$(grep -c '\.c:[0-9]' "$T/ours.out")" -ge $((n / 4)) ] || fail "$1: few source lines"
	total=$((total + n * ${#FLAG_SETS[@]}))
	echo "ok: $1: $n symbol inputs x ${#FLAG_SETS[@]} flag sets equal"
}

inputs "$exe" 1000 >"$T/in.exe"
cmp_inputs "$exe" "$T/in.exe"

libc=$(ldd "$exe" | awk '/libc\.so/ { print $3 }')
[ -n "$libc" ] || fail "no libc in ldd $exe"
nm -D --defined-only "$libc" >/dev/null || fail "nm -D $libc"
nm -D --defined-only "$libc" | awk '$2 ~ /^[tTiW]$/ { sub(/@.*/, "", $3); print $3 }' |
	sort -u | awk "NR <= 300" | while read -r s; do
	printf '%s\n%s+0x10\n' "$s" "$s"
done >"$T/in.libc"
cmp_inputs "$libc" "$T/in.libc"
grep -q ' (is_stmt)' "$T/ours.out" && grep -q ' (discriminator [0-9]*)' "$T/ours.out" ||
	fail "-F printed no is_stmt or discriminator flags on libc"

# addresses as numbers, also where no symbol is: every 3rd byte of the fixture's loaded range
# and past it (an ET_DYN file's symbol-less bytes are "()+0xOFF" to eu-addr2line -S/-x, "??"
# past the module), 3000 spread over libc (-F only: at a few libc addresses eu-addr2line
# names another alias, or a .dynsym version symbol, not yet matched); -f is left out (a
# sizeless symbol past its section's end still names the address there, eu-addr2line "??")
cmp_addrs() { # FILE ADDRS_FILE FLAG_SET...
	local n file=$1 addrs=$2
	shift 2
	run_both "$file" "$addrs" "$@"
	diff -u "$T/eu.out" "$T/ours.out" >"$T/diff" || {
		head -40 "$T/diff"
		fail "$file: outputs for addresses differ"
		return
	}
	n=$(wc -l <"$addrs")
	total=$((total + n * $#))
	echo "ok: $file: $n addresses x $# flag sets equal"
}
end=0
while read -r t _ va _ _ ms _; do
	[ "$t" != LOAD ] || end=$((va + ms))
done < <(readelf -lW "$exe")
awk -v e="$end" 'BEGIN { for (a = 0; a < e + 256; a += 3) printf "0x%x\n", a }' >"$T/addrs.exe"
cmp_addrs "$exe" "$T/addrs.exe" "-S" "-x -a" "-F -a" "--relative -F"
grep -q '^()+0x' "$T/ours.out" || fail "$exe: no symbol-less address seen"
grep -q ' (is_stmt)' "$T/ours.out" || fail "$exe: -F printed no is_stmt flags"
awk 'BEGIN { for (a = 0; a < 3000; a++) printf "0x%x\n", a * 757 }' >"$T/addrs.libc"
cmp_addrs "$libc" "$T/addrs.libc" "-F -a" "--relative -F"

# a name that is no symbol is refused (exit 1, said on stderr), the rest still answered
if "$SYM" -f -e "$exe" main nosuch_symbol_x >"$T/o" 2>"$T/e"; then
	fail "unknown symbol accepted"
fi
grep -q nosuch_symbol_x "$T/e" || fail "unknown symbol not reported"
[ "$(head -1 "$T/o")" = "$(eu-addr2line -f -e "$exe" main | sed -n 1p)" ] || fail "main not answered"
echo "ok: an unknown symbol is refused on stderr, the rest answered"

# --relative: file names as DWARF has them, without the compilation directory (-A after it
# undoes it; -s wins over both), on fixtures built from a relative path and from ./ in a
# subdirectory; an index built without --relative (it holds joined names) is not used for it
mkdir -p "$T/rel/sub"
cp "$TESTS/data/src/inline_c.c" "$T/rel/sub/"
(cd "$T/rel" && gcc -O2 -g -o inline_rel sub/inline_c.c && cd sub && gcc -O2 -g -o ../inline_dot ./inline_c.c)
saved_sets=("${FLAG_SETS[@]}")
FLAG_SETS=("--relative -f -i -a" "--relative -A -f -i" "-A --relative -f -i" "--relative -s -F")
for e in inline_rel inline_dot; do
	inputs "$T/rel/$e" 1000 >"$T/in.rel"
	cmp_inputs "$T/rel/$e" "$T/in.rel"
	grep -q '^sub/inline_c\.c:\|^\./inline_c\.c:' "$T/ours.out" ||
		fail "$e: no relative file name in the --relative answers"
done
FLAG_SETS=("${saved_sets[@]}")
"$SYM" --index-dir "$T/rel/idx" -f -e "$T/rel/inline_rel" main >/dev/null
ls "$T/rel/idx"/*.symidx >/dev/null 2>&1 || fail "no index built for inline_rel"
[ "$(eu-addr2line --relative -f -i -e "$T/rel/inline_rel" <"$T/in.rel")" = \
	"$("$SYM" --relative --index-dir "$T/rel/idx" -f -i -e "$T/rel/inline_rel" <"$T/in.rel")" ] &&
	echo "ok: --relative with an index dir answers from DWARF, as eu-addr2line" ||
	fail "--relative with an index dir differs from eu-addr2line"

# .gnu_debuglink and --debuginfo-path: a stripped copy without a build ID (only its debuglink
# finds the debug file), the debug file in the binary's dir, in .debug/ beside it, and under a
# debug dir by the binary's own directory; each with the default path and two given ones; then
# a debug file of another build under the same name (CRC mismatch: refused, unless the path
# says '-'). Every answer of both tools must be equal, and each case must be answered from
# DWARF exactly when expected.
dl="$T/dl"
mkdir -p "$dl/bin/.debug" "$dl/dbg$dl/bin" "$dl/other"
gcc -O2 -g -Wl,--build-id=none -o "$dl/full" "$TESTS/data/src/inline_c.c"
objcopy --only-keep-debug "$dl/full" "$dl/p.debug"
strip -g -o "$dl/stripped" "$dl/full"
objcopy --add-gnu-debuglink="$dl/p.debug" "$dl/stripped" "$dl/bin/p"
gcc -O1 -g -Wl,--build-id=none -o "$dl/other/full" "$TESTS/data/src/inline_c.c"
objcopy --only-keep-debug "$dl/other/full" "$dl/other/p.debug"
printf 'main\nmain+4\nstage8+0x10\n' >"$T/in.dl"
dl_case() { # WHERE(relative to $dl) DEBUGFILE EXPECT(dwarf|none) PATH-OPTION...
	local where=$1 dbg=$2 expect=$3 got
	shift 3
	rm -f "$dl/bin/p.debug" "$dl/bin/.debug/p.debug" "$dl/dbg$dl/bin/p.debug"
	cp "$dbg" "$dl/$where/p.debug"
	eu-addr2line "$@" -f -i -e "$dl/bin/p" <"$T/in.dl" >"$T/eu.dl" 2>&1 || true
	"$SYM" "$@" -f -i -e "$dl/bin/p" <"$T/in.dl" >"$T/ours.dl" 2>&1 || true
	if ! diff -u "$T/eu.dl" "$T/ours.dl"; then
		fail "debuglink in $where with '$*': outputs differ"
		return
	fi
	got=none
	grep -q 'inline_c\.c:' "$T/ours.dl" && got=dwarf
	[ "$got" = "$expect" ] || fail "debuglink in $where with '$*': $got, expected $expect"
	total=$((total + 3))
	echo "ok: debuglink in $where with '$*': $got, equal"
}
dl_case bin "$dl/p.debug" dwarf
dl_case bin/.debug "$dl/p.debug" dwarf
dl_case "dbg$dl/bin" "$dl/p.debug" none
dl_case "dbg$dl/bin" "$dl/p.debug" dwarf --debuginfo-path="$dl/dbg"
dl_case "dbg$dl/bin" "$dl/p.debug" dwarf --debuginfo-path=":.debug:$dl/dbg"
dl_case bin "$dl/p.debug" none --debuginfo-path="$dl/dbg"
dl_case bin/.debug "$dl/p.debug" dwarf --debuginfo-path="+:.debug"
dl_case bin "$dl/other/p.debug" none
dl_case bin/.debug "$dl/other/p.debug" none --debuginfo-path="+:.debug"
# '-' turns the CRC check off, for the whole path or one element: the other build's debug file
# is then taken (by both tools; what a mismatched debug file answers is not compared)
for opt in "-:.debug" ":-.debug"; do
	cp "$dl/other/p.debug" "$dl/bin/.debug/p.debug"
	"$SYM" --debuginfo-path="$opt" -f -e "$dl/bin/p" main >"$T/ours.dl" 2>&1 || true
	eu-addr2line --debuginfo-path="$opt" -f -e "$dl/bin/p" main >"$T/eu.dl" 2>&1 || true
	grep -q 'inline_c\.c:' "$T/ours.dl" || fail "--debuginfo-path=$opt: CRC still checked"
	grep -q 'inline_c\.c:' "$T/eu.dl" || fail "--debuginfo-path=$opt: eu-addr2line checked the CRC"
	echo "ok: --debuginfo-path=$opt: the other build's debug file taken by both"
done

# --debuginfo-path's absolute elements are where build IDs are looked up: libc's debug file
# (libc6-dbg) is found through /usr/lib/debug, and not through an empty directory
for p in /usr/lib/debug "$dl/other"; do
	eu-addr2line --debuginfo-path="$p" -f -i -e "$libc" <"$T/in.libc" >"$T/eu.out" 2>/dev/null || true
	"$SYM" --debuginfo-path="$p" -f -i -e "$libc" <"$T/in.libc" >"$T/ours.out" 2>/dev/null || true
	diff -q "$T/eu.out" "$T/ours.out" >/dev/null || fail "libc with --debuginfo-path=$p: differ"
	n=$(grep -c '\.c:[0-9]' "$T/ours.out" || true)
	if [ "$p" = /usr/lib/debug ]; then
		[ "$n" -gt 100 ] || fail "libc with --debuginfo-path=$p: only $n source lines"
	else
		[ "$n" = 0 ] || fail "libc with --debuginfo-path=$p: $n source lines (no debug file there)"
	fi
	total=$((total + $(wc -l <"$T/in.libc")))
	echo "ok: libc with --debuginfo-path=$p: equal, $n source lines"
done

[ "$failed" != 0 ] || echo "compared $total answers, all equal"
finish
