#!/usr/bin/env bash
# fleetsym-symbolize on bad input: each case gets a clear message and a defined exit code, and
# never a crash (run it with BUILD=build/san for ASan/UBSan).
set -euo pipefail
B=$BUILD/bin/fleetsym-symbolize
cd "$T"
fail=0
# expect NAME RC STDERR-REGEX -- command...
expect() {
	local name=$1 want_rc=$2 want_err=$3
	shift 4
	local rc=0
	"$@" >out.txt 2>err.txt || rc=$?
	local err_ok=1
	if [ -z "$want_err" ]; then [ ! -s err.txt ] || err_ok=0; else grep -Eq "$want_err" err.txt || err_ok=0; fi
	if [ "$rc" != "$want_rc" ] || [ "$err_ok" = 0 ]; then
		echo "FAIL $name: rc=$rc (want $want_rc), stderr: $(head -3 err.txt)"
		fail=1
	else
		echo "ok   $name: rc=$rc, $(head -1 err.txt)"
	fi
}

printf 'int helper(int x){return x*3;}\nint main(int c,char**v){return helper(c);}\n' >fx.c
gcc -O2 -g -Wl,--build-id fx.c -o fx
gcc -O2 -g -Wl,--build-id=none fx.c -o fx-nobid
addr=0x$(nm fx | awk '$3=="main"{print $1}')

head -c 3000 fx >fx-truncated
printf 'hello, I am not an ELF file\n' >notelf
: >empty

expect truncated-elf 1 'damaged or truncated ELF|not an ELF' -- "$B" -e fx-truncated -f "$addr"
expect not-elf 1 'not an ELF file' -- "$B" -e notelf -f "$addr"
expect empty-file 1 'not an ELF file|damaged' -- "$B" -e empty -f "$addr"
expect missing-file 1 'No such file' -- "$B" -e does-not-exist -f "$addr"
expect bad-build-id 1 'build ID must be 2-64 hex digits' -- "$B" --build-id ../../etc/passwd -f "$addr"
expect unknown-build-id 1 'no debug file for this build ID' -- "$B" --build-id abcdef0123 --debug-dir "$T" -f "$addr"
expect usage 2 'usage' -- "$B" --no-such-flag
expect exe-and-build-id 2 'exclude each other' -- "$B" -e fx --build-id abcd

# no build ID: answers fine from DWARF, and says why no index was built
expect no-build-id 0 'index not built' -- "$B" -e fx-nobid -f --index-dir idx "$addr"
"$B" -e fx -f "$addr" >ref-f.txt
cmp -s out.txt ref-f.txt && grep -q 'main' out.txt || { echo "FAIL no-build-id: wrong answer: $(cat out.txt)"; fail=1; }

# addresses outside every function: ?? and ??:0, exit 0
expect outside 0 '' -- "$B" -e fx -f 0x1 0xffffffffffff
[ "$(cat out.txt)" = $'??\n??:0\n??\n??:0' ] || { echo "FAIL outside: $(cat out.txt)"; fail=1; }

# garbage on stdin: every line answered (so a co-process stays in step), exit 1
printf '%s\nzz\n\n-5\n0x\n%s\n' "$addr" "$addr" | { rc=0; "$B" -e fx -f >out.txt 2>err.txt || rc=$?; echo $rc >rc.txt; }
[ "$(cat rc.txt)" = 1 ] || { echo "FAIL garbage-stdin: rc=$(cat rc.txt)"; fail=1; }
[ "$(grep -c '' out.txt)" = 12 ] || { echo "FAIL garbage-stdin: $(grep -c '' out.txt) lines"; fail=1; }
[ "$(head -2 out.txt)" = "$(cat ref-f.txt)" ] && [ "$(tail -2 out.txt)" = "$(cat ref-f.txt)" ] || { echo "FAIL garbage-stdin answers"; fail=1; }
[ "$(grep -c 'not an address' err.txt)" = 4 ] || { echo "FAIL garbage-stdin: $(cat err.txt)"; fail=1; }
echo "ok   garbage-stdin"

# binary garbage and a huge line on stdin
head -c 200000 /dev/urandom >garbage.bin
{ rc=0; "$B" -e fx -f <garbage.bin >out.txt 2>err.txt || rc=$?; echo $rc >rc.txt; }
[ "$(cat rc.txt)" = 1 ] || { echo "FAIL binary-stdin rc=$(cat rc.txt)"; fail=1; }
echo "ok   binary-stdin: $(grep -c '' out.txt) answer lines"

# a damaged index is refused, removed, and rebuilt; answers stay right
"$B" -e fx -f -i --index-dir idx "$addr" >ref.txt
"$B" -e fx -f -i --index-dir idx "$addr" >warm.txt
cmp -s ref.txt warm.txt || { echo "FAIL warm != cold"; fail=1; }
idx=$(ls idx/*.symidx)
printf 'garbage' | dd of="$idx" bs=1 seek=300 conv=notrunc status=none
expect damaged-index 0 'damaged' -- "$B" -e fx -f -i --index-dir idx "$addr"
cmp -s ref.txt out.txt || { echo "FAIL damaged index changed the answer"; fail=1; }
"$B" -e fx -f -i --index-dir idx "$addr" >out.txt 2>err.txt
[ ! -s err.txt ] && cmp -s ref.txt out.txt || { echo "FAIL index not rebuilt: $(cat err.txt)"; fail=1; }
truncate -s 100 "$idx"
expect truncated-index 0 'damaged' -- "$B" -e fx -f -i --index-dir idx "$addr"
cmp -s ref.txt out.txt || { echo "FAIL truncated index changed the answer"; fail=1; }
ls idx | grep -q tmp && { echo "FAIL temp files left in index dir"; fail=1; }
exit $fail
