#!/usr/bin/env bash
# What fleetsymd serves on the debuginfod protocol is what it received, byte for byte: a debug
# file with compressed (zlib) debug sections, uploaded or fetched from an upstream debuginfod,
# comes back through debuginfod-find with the SHA-256 of the original, before and after a
# restart, while the service symbolizes from its inflated working copy. And an inflation bomb
# (64 MB of zeros in a compressed section of a 100 KB file) is refused with 413 before anything
# is inflated: nothing is installed, no temp file is left, the data dir and fleetsymd's peak RSS
# stay small.
set -uo pipefail
. "$(dirname "$0")/lib/service.sh"
need debuginfod debuginfod-find objcopy eu-strip sha256sum
CHECK="python3 $TESTS/lib/svc_check.py --sym $BUILD/bin/fleetsym-symbolize"

cd "$T"
mkdir -p empty dfc upstream
for v in 0 1; do
	gcc -O2 -g -DVARIANT=$v -o fx$v "$TESTS/data/src/inline_c.c"
	eu-strip -f fx$v.debug -o fx$v.stripped fx$v
	objcopy --compress-debug-sections=zlib fx$v.debug fx$v.debug.z 2>/dev/null
	declare "BID$v=$(build_id fx$v)"
done
has ' \.debug_info .* C ' readelf -S -W fx0.debug.z || fail "fixture has no compressed .debug_info"
echo "s3cret-token" >token
AUTH=(-H "Authorization: Bearer s3cret-token")

# the upstream serves fx1's compressed debug file as it is
cp fx1.debug.z upstream/
start_debuginfod "$T/upstream" "$BID1"
start_fleetsymd faithful --data-dir "$T/data" --debug-dir "$T/empty" --token-file token \
	--debuginfod-urls "$DI_URL" --request-timeout 10s --max-upload-size 1M
FPID=$FSD_PID

# find_sha BID : SHA-256 of what debuginfod-find gets from fleetsymd (a fresh client cache)
find_sha() {
	rm -rf dfc && mkdir dfc
	local got
	got=$(DEBUGINFOD_URLS="$URL" DEBUGINFOD_CACHE_PATH="$T/dfc" DEBUGINFOD_TIMEOUT=30 \
		debuginfod-find debuginfo "$1") || return 1
	sha256sum "$got" | cut -d' ' -f1
}

check_served() { # check_served WHAT BID FILE
	local want got
	want=$(sha256sum "$3" | cut -d' ' -f1)
	got=$(find_sha "$2") || { fail "$1: debuginfod-find failed"; return; }
	[ "$got" = "$want" ] && ok "$1: SHA-256 $got, as received ($(stat -c %s "$3") bytes)" ||
		fail "$1: served SHA-256 $got, want $want"
}

echo "== upload of a file with compressed debug sections"
code=$(http_code PUT "$URL/api/v1/debuginfo/$BID0" --data-binary @fx0.debug.z "${AUTH[@]}")
[ "$code" = 201 ] && ok "upload: 201" || fail "upload: $code $(cat body)"
check_served "uploaded" "$BID0" fx0.debug.z
$CHECK --url "$URL" --elf fx0 --build-id "$BID0" -n 300 --seed 1 ||
	fail "symbolizing from the inflated copy"
head=$(curl -s -D - -o /dev/null "$URL/buildid/$BID0/debuginfo")
echo "$head" | grep -qi "^Content-Length: $(stat -c %s fx0.debug.z)" &&
	echo "$head" | grep -qi "^X-DEBUGINFOD-SIZE: $(stat -c %s fx0.debug.z)" &&
	ok "Content-Length and X-DEBUGINFOD-SIZE are the upload's size" || fail "headers: $head"

echo "== fetched from the upstream debuginfod"
check_served "fetched" "$BID1" fx1.debug.z
$CHECK --url "$URL" --elf fx1 --build-id "$BID1" -n 300 --seed 2 ||
	fail "symbolizing the fetched file"

echo "== an inflation bomb"
head -c 64000000 /dev/zero >zeros
objcopy --add-section .debug_zeros=zeros fx0.debug bomb.raw 2>/dev/null
objcopy --compress-debug-sections=zlib bomb.raw bomb 2>/dev/null
rm -f zeros bomb.raw
before=$(du -sk data | cut -f1)
code=$(http_code PUT "$URL/api/v1/debuginfo/$BID0?force=1" --data-binary @bomb "${AUTH[@]}")
after=$(du -sk data | cut -f1)
hwm=$(awk '/^VmHWM/ {print $2}' "/proc/$FPID/status")
[ "$code" = 413 ] && ok "bomb of $(stat -c %s bomb) bytes: $code $(head -c 160 body)" ||
	fail "bomb: status $code, want 413: $(head -c 300 body)"
[ "$(tmp_files "$T/data")" = 0 ] || fail "bomb: temp files left: $(ls data/tmp)"
[ $((after - before)) -lt 4096 ] && ok "bomb: data dir grew by $((after - before)) KB" ||
	fail "bomb: data dir grew by $((after - before)) KB"
[ "$hwm" -lt 262144 ] && ok "bomb: fleetsymd peak RSS $((hwm / 1024)) MB" ||
	fail "bomb: fleetsymd peak RSS $((hwm / 1024)) MB"
check_served "after the refused bomb" "$BID0" fx0.debug.z

echo "== after a restart"
stop_pid "$FPID" || fail "fleetsymd did not stop cleanly"
start_fleetsymd again --data-dir "$T/data" --debug-dir "$T/empty" --token-file token \
	--request-timeout 10s
check_served "uploaded, after restart" "$BID0" fx0.debug.z
check_served "fetched, after restart" "$BID1" fx1.debug.z
$CHECK --url "$URL" --elf fx0 --build-id "$BID0" -n 200 --seed 3 ||
	fail "symbolizing after restart"
finish
