#!/usr/bin/env bash
# fleetsym-symbolize's addr2line input forms against eu-addr2line 0.188: symbols as addresses
# (NAME, NAME+0xOFF, NAME+DEC, NAME-0x0), on a C and a C++ fixture, from DWARF and from the
# index. Every function symbol of each file, with random offsets inside it: the address each
# input stands for (the -a line) must equal eu-addr2line's, and the whole answer must equal ours
# for that address given in hex (which tests/run-compare-*.sh hold against eu-addr2line). An
# unknown symbol is answered ?? with "cannot find symbol" on stderr and exit status 1.
set -euo pipefail
. "$(dirname "$0")/lib/common.sh"
need gcc g++ eu-addr2line nm

gcc -O2 -g -o "$T/c" "$TESTS/data/src/inline_c.c"
g++ -O2 -g -o "$T/cxx" "$TESTS/data/src/inline_cxx.cc"
mkdir -p "$T/idx"
for exe in "$T/c" "$T/cxx"; do
	"$SYM" -e "$exe" --index-dir "$T/idx" </dev/null
	for how in dwarf index; do
		opt=""
		[ $how = index ] && opt="--index-dir $T/idx"
		python3 - "$SYM" "$exe" "$how" $opt <<'PY' || fail "$(basename "$exe") from $how"
import random, subprocess, sys
sym, exe, how, opt = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
random.seed(7)
count, syms = {}, []
for l in subprocess.run(["nm", "-S", exe], capture_output=True, text=True, check=True).stdout.splitlines():
    f = l.split()
    if len(f) == 4 and f[2] in "Tt" and int(f[1], 16) > 0:
        syms.append((f[3], int(f[1], 16)))
        count[f[3]] = count.get(f[3], 0) + 1
inputs = []
for name, size in syms:
    if count[name] > 1:  # a local name twice: which one is the tools' choice
        continue
    inputs += [name, "%s+0x%x" % (name, random.randrange(size)), "%s-0x0" % name,
               "%s+%d" % (name, random.randrange(size))]
data = "\n".join(inputs) + "\n"
flags = ["-a", "-f", "-i", "-C"]
def run(argv, text):
    return subprocess.run(argv, input=text, capture_output=True, text=True).stdout
def blocks(out):
    res, cur = [], None
    for l in out.splitlines():
        if l.startswith("0x"):
            cur = [l]
            res.append(cur)
        else:
            cur.append(l)
    return res
ours = blocks(run([sym, "-e", exe] + opt + flags, data))
eu = blocks(run(["eu-addr2line", "-e", exe, "-a"], data))
by_addr = blocks(run([sym, "-e", exe] + opt + flags, "\n".join(b[0] for b in ours) + "\n"))
bad = 0
for i, inp in enumerate(inputs):
    if ours[i][0] != eu[i][0] or ours[i] != by_addr[i]:
        bad += 1
        if bad <= 5:
            print("  %s: ours %s, eu-addr2line %s, ours by address %s" % (inp, ours[i], eu[i][0], by_addr[i]))
print("%s %s: %d symbol inputs (%d symbols), %d differ" % (exe.split("/")[-1], how, len(inputs), len(inputs) // 4, bad))
if len(inputs) < 40 or len(ours) != len(inputs) or len(eu) != len(inputs):
    print("  too few answers: %d inputs, ours %d, eu %d" % (len(inputs), len(ours), len(eu)))
    bad += 1
sys.exit(1 if bad else 0)
PY
	done
done

# an unknown symbol: one ?? answer, the reason on stderr, exit status 1
rc=0
out=$("$SYM" -e "$T/c" -a main no_such_symbol 2>"$T/err") || rc=$?
[ $rc = 1 ] && [ "$(grep -c '^??:0$' <<<"$out")" = 1 ] && grep -q "cannot find symbol: 'no_such_symbol'" "$T/err" &&
	echo "unknown symbol: ?? and 'cannot find symbol', exit 1" ||
	fail "unknown symbol: rc=$rc out=$out err=$(cat "$T/err")"
finish
