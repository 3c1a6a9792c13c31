#!/usr/bin/env bash
# The main job, for now: the service and the agent do not exist yet, so the demo shows the
# symbol engine on a real separate-debuginfo case — Debian's stripped libc.so.6 with libc6-dbg.
# It symbolizes addresses inside libc functions with full inline chains, cold (from DWARF) and
# warm (from the compact index), next to eu-addr2line's answer for the same addresses.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
B=$top/build/bin/fleetsym-symbolize
out=$top/results/demo
mkdir -p "$out"
libc=/lib/x86_64-linux-gnu/libc.so.6
bid=$(readelf -n "$libc" | awk '/Build ID/ {print $3}')
dbg=/usr/lib/debug/.build-id/${bid:0:2}/${bid:2}.debug
[ -f "$dbg" ] || { echo "demo: $dbg missing: run 'make deps' as root (libc6-dbg)" >&2; exit 1; }

echo "== $libc (stripped), build ID $bid"
echo "   debug info: $dbg ($(du -h "$dbg" | cut -f1), from libc6-dbg)"
# addresses: a byte inside a few well-known functions, and 2,000 random ones
python3 - "$dbg" "$out" <<'PY'
import random, subprocess, sys
dbg, out = sys.argv[1], sys.argv[2]
syms = {}
for l in subprocess.run(["readelf", "-sW", dbg], capture_output=True, text=True).stdout.splitlines():
    p = l.split()
    if len(p) >= 8 and p[3] == "FUNC" and p[2].isdigit() and int(p[2]) > 16:
        syms.setdefault(p[7], (int(p[1], 16), int(p[2])))
with open(out + "/named.addrs", "w") as f:
    for name in ["__libc_malloc", "_IO_vfprintf", "__qsort_r", "____strtod_l_internal", "getaddrinfo"]:
        if name in syms:
            a, n = syms[name]
            f.write(hex(a + n // 3) + "\n")
r = random.Random(7)
funcs = sorted(set(syms.values()))
with open(out + "/random.addrs", "w") as f:
    for _ in range(2000):
        a, n = r.choice(funcs)
        f.write(hex(a + r.randrange(n)) + "\n")
PY

echo; echo "== fleetsym-symbolize -e $libc -f -i -C -p -a  (inline chains, file:line:column)"
"$B" -e "$libc" -f -i -C -p -a <"$out/named.addrs" | tee "$out/named.txt"

idx=$out/index
rm -rf "$idx"
echo; echo "== 2,000 random addresses"
ms() { echo $(($(date +%s%N) / 1000000)); }
t0=$(ms)
"$B" -e "$libc" -f -i -C --index-dir "$idx" <"$out/random.addrs" >"$out/cold.txt"
t1=$(ms)
"$B" -e "$libc" -f -i -C --index-dir "$idx" <"$out/random.addrs" >"$out/warm.txt"
t2=$(ms)
eu-addr2line -e "$libc" -f -i -C <"$out/random.addrs" >"$out/eu-addr2line.txt"
t3=$(ms)
echo "   fleetsym cold (DWARF, then writes the index): $((t1 - t0)) ms"
echo "   fleetsym warm (mmap'd index, $(du -h "$idx"/*.symidx | cut -f1)):         $((t2 - t1)) ms"
echo "   eu-addr2line (libdw):                          $((t3 - t2)) ms"
if cmp -s "$out/cold.txt" "$out/warm.txt"; then echo "   cold and warm answers: identical"; else echo "   cold and warm answers DIFFER"; fi
ndiff=$(diff "$out/warm.txt" "$out/eu-addr2line.txt" | grep -c '^<' || true)
echo "   output lines that differ from eu-addr2line: $ndiff of $(wc -l <"$out/warm.txt") (tests/run-compare-libc.sh explains the known libdw 0.188 cases)"
echo; echo "results in $out"
