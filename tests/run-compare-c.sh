#!/usr/bin/env bash
# fleetsym-symbolize against eu-addr2line 0.188 on a C fixture built with gcc -O2 -g: inline
# chains 2-3 deep, loops, a switch, and hot/cold split functions (FUNC.cold symbols). Random
# addresses inside every function, compared exactly (see tests/lib/compare.py), first from
# DWARF, then from the symbol index, then from the index alone (a copy with its DWARF stripped).
set -euo pipefail
. "$(dirname "$0")/lib/common.sh"
need gcc eu-addr2line addr2line objdump strip

N=2500
exe="$T/inline_c"
gcc -O2 -g -o "$exe" "$TESTS/data/src/inline_c.c"
has '\.cold$' nm --defined-only "$exe" || fail "fixture has no .cold part (gcc changed?)"

FLAG_SETS=("-f -i -C" "-f -i -C -p -a" "-i -s")

dwarf_then_index "$exe" $N 11 12
compare_wait

# The same build ID without DWARF (strip -g keeps .symtab and the build-ID note) and no debug
# file to be found: only the index can answer.
echo "== from the index, DWARF stripped"
strip -g -o "$T/inline_c.nodwarf" "$exe"
mkdir -p "$T/no-debug"
for f in "${FLAG_SETS[@]}"; do
	compare -e "$T/inline_c.nodwarf" --eu-e "$exe" --ours-opt=--index-dir \
		--ours-opt="$idx" --ours-opt=--debug-dir --ours-opt="$T/no-debug" \
		-n $N --seed 13 --flags "$f" --min 2000
done
finish
