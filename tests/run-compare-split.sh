#!/usr/bin/env bash
# Separate debug files: the C fixture stripped, its DWARF in DIR/.build-id/xx/rest.debug, read
# by fleetsym-symbolize -e STRIPPED --debug-dir DIR, must answer as eu-addr2line 0.188 does on
# the unstripped original; and dwz: two builds of the fixture that differ (-DVARIANT) share a
# .gnu_debugaltlink alt file holding, among others, the strings of the function names, found
# by its relative name, by a relative name from a debug file in a .build-id tree (the distro
# layout) and by build ID alone. Comparisons are exact (see tests/lib/compare.py).
set -euo pipefail
. "$(dirname "$0")/lib/common.sh"
need gcc eu-addr2line addr2line objdump objcopy strip dwz

N=2500
src="$TESTS/data/src/inline_c.c"

# install_debug DIR FILE : FILE's DWARF, only, into DIR/.build-id/xx/rest.debug.
install_debug() {
	local dbg
	dbg=$(debug_path "$1" "$2")
	mkdir -p "$(dirname "$dbg")"
	objcopy --only-keep-debug "$2" "$dbg"
}

# no_dwarf FILE : fail if FILE still has DWARF.
no_dwarf() {
	if has '\.debug_info' readelf -SW "$1"; then
		fail "$1 still has .debug_info"
	fi
}

echo "== stripped, debug file under --debug-dir"
orig="$T/split/orig"
mkdir -p "$T/split"
gcc -O2 -g -o "$orig" "$src"
dd="$T/split/debug"
install_debug "$dd" "$orig"
strip --strip-all -o "$T/split/stripped-all" "$orig"
strip -g -o "$T/split/stripped-g" "$orig"
no_dwarf "$T/split/stripped-all"
no_dwarf "$T/split/stripped-g"
dopt=(--ours-opt=--debug-dir --ours-opt="$dd")
for f in "-f -i -C" "-f -i -C -p -a" "-i -s"; do
	compare -e "$T/split/stripped-all" --eu-e "$orig" "${dopt[@]}" -n $N --seed 41 \
		--flags "$f" --min 2000
done
compare -e "$T/split/stripped-g" --eu-e "$orig" "${dopt[@]}" -n $N --seed 42 --min 2000
# eu-addr2line on the debug file itself, which has the .symtab and all the DWARF.
compare -e "$T/split/stripped-all" --eu-e "$(debug_path "$dd" "$orig")" "${dopt[@]}" -n $N \
	--seed 43 --min 2000
# Stripped + debug file must give exactly what the unstripped file gives.
for f in "-f -i -C" "-i -s"; do
	compare -e "$T/split/stripped-all" --self-ref "$orig" "${dopt[@]}" -n $N --seed 44 \
		--flags "$f" --min 2000
done
compare_wait

echo "== stripped, from the index"
idx="$T/split/index"
make_index "$idx" "$orig" -e "$T/split/stripped-all" --debug-dir "$dd"
for f in "-f -i -C" "-i -s"; do
	compare -e "$T/split/stripped-all" --eu-e "$orig" "${dopt[@]}" --ours-opt=--index-dir \
		--ours-opt="$idx" -n $N --seed 45 --flags "$f" --min 2000
done
compare_wait

# dwz_pair DIR NAME ALTNAME VARIANT1 VARIANT2 : DIR/NAME1 and DIR/NAME2, built with
# -DVARIANT=..., copies of them before dwz as DIR/NAMEn.orig, then dwz with the common DIEs
# in DIR/common.debug, named ALTNAME in their .gnu_debugaltlink.
dwz_pair() {
	local d=$1 n=$2 alt=$3
	mkdir -p "$d"
	gcc -O2 -g -DVARIANT="$4" -o "$d/${n}1" "$src"
	gcc -O2 -g -DVARIANT="$5" -o "$d/${n}2" "$src"
	cp "$d/${n}1" "$d/${n}1.orig"
	cp "$d/${n}2" "$d/${n}2.orig"
	cmp -s "$d/${n}1" "$d/${n}2" && fail "the two variants are identical"
	(cd "$d" && dwz -m common.debug -M "$alt" "${n}1" "${n}2")
	has '\.gnu_debugaltlink' readelf -SW "$d/${n}1" || fail "dwz made no altlink in $d/${n}1"
	# The names must live in the alt file, or this would not test it (readelf only prints
	# them when it finds the alt file, so look at the form).
	has 'DW_AT_name +: \(alt indirect string' readelf --debug-dump=info "$d/${n}1" ||
		fail "no DW_AT_name of $d/${n}1 is in the dwz alt file"
}

echo "== dwz, alt file found by the relative name in .gnu_debugaltlink"
dz="$T/dwz"
dwz_pair "$dz" a common.debug 1 2
# eu-addr2line itself must resolve the names through the alt file: on the dwz'd file it must
# say what it says on the file before dwz.
echo "eu-addr2line on a1 (dwz) against eu-addr2line on a1.orig:"
if ! python3 "$COMPARE" --ours eu-addr2line -e "$dz/a1" --eu-e "$dz/a1.orig" -n $N --seed 51 \
	--flags "-f -i -C" --show 5; then
	fail "eu-addr2line on the dwz'd file differs from eu-addr2line on the original"
fi
for f in "-f -i -C" "-f -i -C -p -a" "-i -s"; do
	compare -e "$dz/a1" -n $N --seed 52 --flags "$f" --min 2000
done
compare -e "$dz/a2" -n $N --seed 53 --min 2000
compare -e "$dz/a1" --self-ref "$dz/a1.orig" -n $N --seed 54 --min 2000

compare_wait

echo "== dwz + stripped: debug file in a .build-id tree, alt named ../../.dwz/common.debug"
dzs="$T/dwz-split"
dwz_pair "$dzs" b ../../.dwz/common.debug 3 4
dd2="$dzs/debug"
mkdir -p "$dd2/.dwz"
mv "$dzs/common.debug" "$dd2/.dwz/common.debug"
for n in b1 b2; do
	install_debug "$dd2" "$dzs/$n"
	strip --strip-all -o "$dzs/$n.stripped" "$dzs/$n"
done
for f in "-f -i -C" "-i -s"; do
	compare -e "$dzs/b1.stripped" --eu-e "$dzs/b1.orig" --ours-opt=--debug-dir \
		--ours-opt="$dd2" -n $N --seed 55 --flags "$f" --min 2000
done
compare -e "$dzs/b2.stripped" --eu-e "$dzs/b2.orig" --ours-opt=--debug-dir --ours-opt="$dd2" \
	-n $N --seed 56 --min 2000

compare_wait

echo "== dwz, alt file found only by its build ID under --debug-dir"
dzb="$T/dwz-buildid"
dwz_pair "$dzb" c /nonexistent/fleetsym/common.debug 5 6
dd3="$dzb/debug"
alt=$(debug_path "$dd3" "$dzb/common.debug")
mkdir -p "$(dirname "$alt")"
mv "$dzb/common.debug" "$alt"
compare -e "$dzb/c1" --eu-e "$dzb/c1.orig" --ours-opt=--debug-dir --ours-opt="$dd3" -n $N \
	--seed 57 --min 2000
compare_wait

echo "== dwz, from the index"
idx="$T/dwz-index"
make_index "$idx" "$dzs/b1" -e "$dzs/b1.stripped" --debug-dir "$dd2"
compare -e "$dzs/b1.stripped" --eu-e "$dzs/b1.orig" --ours-opt=--debug-dir --ours-opt="$dd2" \
	--ours-opt=--index-dir --ours-opt="$idx" -n $N --seed 58 --min 2000
finish
