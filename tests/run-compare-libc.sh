#!/usr/bin/env bash
# fleetsym-symbolize against eu-addr2line 0.188 on Debian's stripped libc.so.6, whose DWARF is
# in libc6-dbg's /usr/lib/debug/.build-id/xx/rest.debug: random addresses inside libc's
# functions (from the debug file's .symtab), compared exactly (see tests/lib/compare.py), from
# DWARF and then from a symbol index built in $T.
set -euo pipefail
. "$(dirname "$0")/lib/common.sh"
need eu-addr2line addr2line objdump

N=4000
libc=/lib/x86_64-linux-gnu/libc.so.6
[ -e "$libc" ] || skip "$libc not found"
dbg=$(debug_path /usr/lib/debug "$libc")
[ -e "$dbg" ] || skip "no libc debug file $dbg (install libc6-dbg)"

FLAG_SETS=("-f -i -C" "-f -i -C -p -a" "-i -s")

echo "== from DWARF (debug file found by build ID under /usr/lib/debug)"
for f in "${FLAG_SETS[@]}"; do
	compare -e "$libc" --symtab "$dbg" -n $N --seed 31 --flags "$f" --min 2000
done
compare_wait

echo "== from the index"
idx="$T/index"
make_index "$idx" "$libc" -e "$libc"
for f in "${FLAG_SETS[@]}"; do
	compare -e "$libc" --symtab "$dbg" --ours-opt=--index-dir --ours-opt="$idx" -n $N \
		--seed 32 --flags "$f" --min 2000
done
finish
