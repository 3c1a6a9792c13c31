#!/usr/bin/env bash
# Extraction ratio and time of fleetsym-upload (not part of make check): libc's debug file from
# libc6-dbg, and a large unstripped C++ binary (libjvm.so made whole with eu-unstrip), against
# `objcopy --only-keep-debug`; plus agreement of symbolization from the extracted file with the
# original on 2,000 addresses.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
B=${BUILD:-$top/build}
UP=$B/bin/fleetsym-upload
SYM=$B/bin/fleetsym-symbolize
W=$(mktemp -d /tmp/fleetsym-bench-upload.XXXXXX)
trap 'rm -rf "$W"' EXIT
cd "$W"

# a large unstripped binary: Debian's libjvm.so put back together with its debug file
# (openjdk-17-dbg) by eu-unstrip
jvm=/usr/lib/jvm/java-17-openjdk-amd64/lib/server/libjvm.so
jbid=$(readelf -n $jvm | awk '/Build ID/{print $3}')
jdbg=/usr/lib/debug/.build-id/${jbid:0:2}/${jbid:2}.debug
[ -f "$jdbg" ] || { echo "bench/upload.sh: needs openjdk-17-dbg (make deps, or apt-get install openjdk-17-dbg)" >&2; exit 1; }
eu-unstrip "$jvm" "$jdbg" -o "$W/libjvm.so"
echo "unstripped libjvm.so: $(stat -c %s "$W/libjvm.so") bytes"

libc=/lib/x86_64-linux-gnu/libc.so.6
lbid=$(readelf -n $libc | awk '/Build ID/{print $3}')
ldbg=/usr/lib/debug/.build-id/${lbid:0:2}/${lbid:2}.debug

printf '\n%-8s %12s %12s %12s %9s %12s %10s %10s\n' file original objcopy ours ours/objc ours+zlib "t(ours)" "t(objcopy)"
for f in "$ldbg:libc" "$W/libjvm.so:libjvm"; do
	src=${f%:*} name=${f##*:}
	t0=$(date +%s%N); objcopy --only-keep-debug "$src" "$name.objcopy"; t1=$(date +%s%N)
	"$UP" extract --no-compress "$src" "$name.ours" >/dev/null; t2=$(date +%s%N)
	"$UP" extract "$src" "$name.z" >/dev/null
	o=$(stat -c %s "$src") c=$(stat -c %s "$name.objcopy") u=$(stat -c %s "$name.ours") z=$(stat -c %s "$name.z")
	printf '%-8s %12d %12d %12d %8.2f%% %12d %8.3fs %8.3fs\n' "$name" "$o" "$c" "$u" \
		"$(echo "100 * $u / $c" | bc -l)" "$z" "$(echo "($t2 - $t1) / 1000000000" | bc -l)" "$(echo "($t1 - $t0) / 1000000000" | bc -l)"
	python3 - "$src" >"$name.addrs" <<'PY'
import random, subprocess, sys
out = subprocess.run(["readelf", "-sW", sys.argv[1]], capture_output=True, text=True).stdout
fs = sorted({(int(f[1], 16), int(f[2])) for f in (l.split() for l in out.splitlines())
             if len(f) >= 8 and f[3] == "FUNC" and f[2].isdigit() and int(f[2]) > 0})
r = random.Random(11)
for _ in range(2000):
    a, n = r.choice(fs)
    print(hex(a + r.randrange(n)))
PY
	"$SYM" -e "$src" -f -i -C <"$name.addrs" >ref.txt
	for v in ours z; do
		"$SYM" -e "$name.$v" -f -i -C <"$name.addrs" >out.txt
		if cmp -s ref.txt out.txt; then r=identical; else r="DIFFERENT ($(diff ref.txt out.txt | grep -c '^<') lines)"; fi
		echo "         $name.$v: answers on 2000 addresses vs the original: $r"
	done
done
