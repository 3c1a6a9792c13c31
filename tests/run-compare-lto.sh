#!/usr/bin/env bash
# Inline chains on a GCC LTO build: Debian's python3.11 (stripped; DWARF from python3.11-dbg
# under /usr/lib/debug/.build-id). eu-addr2line 0.188 prints no inline frames for it, so the
# references are llvm-symbolizer and binutils addr2line: where they agree with each other, our
# -f -i -C chain (function names and file:line) must be the same. See tests/lib/chains.py for
# the normalisations and why each is needed.
set -euo pipefail
. "$(dirname "$0")/lib/common.sh"
need addr2line llvm-symbolizer

N=1500
py=/usr/bin/python3.11
[ -e "$py" ] || skip "$py not found"
dbg=$(debug_path /usr/lib/debug "$py")
[ -e "$dbg" ] || skip "no python3.11 debug file $dbg (install python3.11-dbg)"
has 'GNU GIMPLE' readelf -z -p .debug_str "$dbg" || fail "$dbg is not an LTO build any more"

echo "== from DWARF"
check python3 "$TESTS/lib/chains.py" --ours "$SYM" -e "$py" --debug "$dbg" -n $N --seed 61 \
	--min 1000

echo "== from the index"
idx="$T/index"
make_index "$idx" "$py" -e "$py"
check python3 "$TESTS/lib/chains.py" --ours "$SYM" -e "$py" --debug "$dbg" \
	--ours-opt=--index-dir --ours-opt="$idx" -n $N --seed 62 --min 1000
finish
