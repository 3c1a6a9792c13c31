#!/usr/bin/env bash
# fleetsym-symbolize against eu-addr2line 0.188 on a C++ fixture built with g++ -O2 -g:
# namespaces, templates, methods, lambdas, std::vector/std::map, forced inlining. Random
# addresses inside every function, compared exactly (see tests/lib/compare.py) with demangled
# (-C) and mangled names, from DWARF and then from the symbol index.
set -euo pipefail
. "$(dirname "$0")/lib/common.sh"
need g++ eu-addr2line addr2line objdump

N=2000
exe="$T/inline_cxx"
g++ -O2 -g -o "$exe" "$TESTS/data/src/inline_cxx.cc"

# eu-addr2line needs ~8 ms an address here, so: 2000 addresses, the same ones for the index
# runs (whose eu output comes from the cache), two comparisons at a time.
FLAG_SETS=("-f -i -C" "-f -i" "-f -i -C -p -a" "-i -s")

dwarf_then_index "$exe" $N 21 21
finish
