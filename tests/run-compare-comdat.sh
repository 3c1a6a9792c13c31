#!/usr/bin/env bash
# Header functions that several CUs emit (COMDAT): the linker keeps one copy, and every CU that
# emitted one describes the same address range, each with its own comp_dir, so the file path
# of an address depends on which CU answers. binutils addr2line and llvm-symbolizer answer from
# the first such CU in .debug_info (eu-addr2line 0.188 is not consistent about it); so do we,
# from DWARF and from the index. Two TUs in two directories, linked in both orders, so that
# each directory is the first once; every address of the shared functions is compared with
# llvm-symbolizer's file:line:column. (On ceph-osd, ~0.2 % of random addresses are in such
# functions; before, ours answered from the last CU.)
set -euo pipefail
. "$(dirname "$0")/lib/common.sh"
need g++ llvm-symbolizer nm

src="$T/src"
cp -r "$TESTS/data/src/comdat" "$src"
(cd "$src/one" && g++ -O2 -g -c one.cc -o "$T/one.o")
(cd "$src/two" && g++ -O2 -g -c two.cc -o "$T/two.o")

for order in "one two" "two one"; do
	set -- $order
	exe="$T/widget-$1-$2"
	g++ -o "$exe" "$T/$1.o" "$T/$2.o"
	# every address of Widget's out-of-line functions (both TUs' DWARF cover them)
	addrs=$(nm -S -C "$exe" | python3 -c '
import sys
for l in sys.stdin:
    f = l.split(None, 3)
    if len(f) == 4 and f[3].startswith("Widget::"):
        s, n = int(f[0], 16), int(f[1], 16)
        print("\n".join("0x%x" % a for a in range(s, s + n)))' | sort -u)
	[ "$(wc -l <<<"$addrs")" -ge 10 ] || fail "$exe: too few addresses of Widget's functions"
	ref=$(llvm-symbolizer --obj="$exe" --no-inlines <<<"$addrs" | awk 'NR % 3 == 2')
	grep -q "/$1/../inc/widget.h" <<<"$ref" ||
		fail "$exe: llvm-symbolizer does not name the first CU's directory ($1): $ref"
	idx="$T/index-$1"
	mkdir -p "$idx"
	"$SYM" -e "$exe" --index-dir "$idx" </dev/null
	for how in dwarf index; do
		opt=()
		[ $how = index ] && opt=(--index-dir "$idx")
		ours=$("$SYM" -e "$exe" "${opt[@]}" <<<"$addrs")
		if [ "$ours" = "$ref" ]; then
			echo "ok   link order $1 $2, from $how: $(wc -l <<<"$addrs") addresses equal to llvm-symbolizer"
		else
			fail "link order $1 $2, from $how: differs from llvm-symbolizer"
			diff <(paste <(echo "$addrs") <(echo "$ref")) <(paste <(echo "$addrs") <(echo "$ours")) | head -10
		fi
	done
done
finish
