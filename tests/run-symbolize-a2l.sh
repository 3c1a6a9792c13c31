#!/usr/bin/env bash
# eu-addr2line parity of fleetsym-symbolize's inputs and -S/-x: symbols as addresses (NAME, NAME+OFF,
# NAME-OFF, resolved through the file's symbol table, .dynsym when it has no .symtab). Every
# function symbol of a fixture built here, and of libc (stripped; its DWARF from libc6-dbg by
# build ID), at several offsets, answered by both tools in one batch per flag set (-f -i -a,
# -S, -S -f -i, -x -a -f -i, -A -f); the outputs must be equal line for line.
set -euo pipefail
. "$(dirname "$0")/lib/common.sh"
need gcc eu-addr2line nm

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
FLAG_SETS=("-f -i -a" "-S" "-S -f -i" "-x -a -f -i" "-A -f")
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
	: >"$T/eu.out"
	: >"$T/ours.out"
	for f in "${FLAG_SETS[@]}"; do
		# shellcheck disable=SC2086 # a flag set is several words
		eu-addr2line $f -e "$1" <"$2" >>"$T/eu.out" 2>/dev/null || true
		# shellcheck disable=SC2086
		"$SYM" $f -e "$1" <"$2" >>"$T/ours.out" 2>/dev/null || true
	done
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

# a name that is no symbol is refused (exit 1, said on stderr), the rest still answered
if "$SYM" -f -e "$exe" main nosuch_symbol_x >"$T/o" 2>"$T/e"; then
	fail "unknown symbol accepted"
fi
grep -q nosuch_symbol_x "$T/e" || fail "unknown symbol not reported"
[ "$(head -1 "$T/o")" = "$(eu-addr2line -f -e "$exe" main | sed -n 1p)" ] || fail "main not answered"
[ "$failed" != 0 ] || echo "compared $total answers, all equal"
finish
