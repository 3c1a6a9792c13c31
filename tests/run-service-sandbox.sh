#!/usr/bin/env bash
# Untrusted DWARF is read only by the sandboxed fleetsym-worker, never inside fleetsymd:
#  a) a dwz file whose .gnu_debugaltlink names a FIFO (libdw opened it with a blocking open()
#     inside fleetsymd, while the build ID's lock was held: 5 symbolize requests hung and
#     /metrics stopped answering). Now 5 concurrent requests answer promptly, /metrics and
#     another build ID keep answering, and nobody ever opened the FIFO.
#  b) real hostile debug files, well-formed DWARF with a million functions over a 1 GiB
#     NOBITS .text (20 MB on disk, about 200 MB in a reader): with --worker-memory 100M the
#     worker runs out of memory; a three-million-function one runs past --worker-timeout 1s
#     and is killed. Each build ID is marked bad with the reason (symbolize, /api/v1/debuginfo,
#     /api/v1/missing), later requests answer at once without a new worker, everything else
#     keeps answering, and a restart gives the file a new chance. A worker killed from outside
#     mid-index (kill -9) costs that build ID only and leaves no half-written file.
#  c) a real dwz-compressed file symbolizes exactly as fleetsym-symbolize and eu-addr2line do,
#     through the alt file uploaded under its build ID; a second one whose alt file exists at
#     the path it names, but is not in the store, does not: the named path is never opened.
#  d) uploads are read and inflated by a worker (fleetsym-worker --check-elf), not fleetsymd: a
#     debug file with a 160 MiB zlib section (3.9 MB uploaded) is refused with 413 when the
#     worker may not take the memory inflating needs, nothing is kept and fleetsymd goes on;
#     with room it is installed, the worker's peak RSS shows the inflating and fleetsymd's stays
#     under 100 MB, and it symbolizes as the fixture does.
#  e) a worker that crashes or hangs checking an upload (a --worker wrapper) costs only itself:
#     the upload gets 400 with a clear message, nothing is kept, /metrics answers meanwhile.
set -uo pipefail
. "$(dirname "$0")/lib/service.sh"
need dwz objcopy eu-addr2line mkfifo
CHECK="python3 $TESTS/lib/svc_check.py --sym $BUILD/bin/fleetsym-symbolize"
WORKER="$BUILD/bin/fleetsym-worker"
[ -x "$WORKER" ] || { echo "FAILED: $WORKER not built (make)"; exit 1; }
# The address space limit cannot apply to an ASan build (its shadow needs terabytes).
ASAN=0
has libasan ldd "$WORKER" && ASAN=1

cd "$T"
mkdir -p empty
# fixtures: each a copy of the same source with its own marker, so every build ID differs
fixture() { # fixture NAME [gcc args]
	local n=$1
	shift
	{ cat "$TESTS/data/src/inline_c.c"; echo "int marker_$n(void) { return 0; }"; } >"$n.c"
	gcc -O2 -g "$@" -o "$n" "$n.c"
}
for n in fx0 fx1 fa fb fc fd bomb_base1 bomb_base2; do fixture $n; done
fixture fe -O1 # another alt file than fc and fd's
fixture ff -O1
mkfifo "$T/fifo"
dwz -m alt-fifo.dwz -M "$T/fifo" fa fb || fail "dwz fa fb"
dwz -m "$T/alt.dwz" -M "$T/alt.dwz" fc fd || fail "dwz fc fd"
dwz -m "$T/alt2.dwz" -M "$T/alt2.dwz" fe ff || fail "dwz fe ff"
for n in fa fc fe; do
	has gnu_debugaltlink readelf -S -W $n || fail "$n has no .gnu_debugaltlink"
done

# bomb NAME BASE N: BASE's debug file with N functions of hostile DWARF
bomb() {
	objcopy --only-keep-debug "$2" "$1.base"
	python3 "$TESTS/lib/elf_text_size.py" "$1.base" 0x40000000 || fail "bomb $1: .text"
	python3 "$TESTS/lib/dwarf_bomb.py" "$3" 0x1000 0x40000000 "$1.info" "$1.abbrev"
	objcopy --remove-section .debug_aranges --remove-section .debug_rnglists \
		--remove-section .debug_loclists --remove-section .debug_line \
		--remove-section .debug_str_offsets --remove-section .debug_line_str \
		--update-section .debug_info="$1.info" --update-section .debug_abbrev="$1.abbrev" \
		"$1.base" "$1"
}
bomb mem.debug bomb_base1 1000000
bomb slow.debug bomb_base2 3000000
for n in fx0 fx1 fa fc fe mem.debug slow.debug alt.dwz alt2.dwz; do
	declare "B_${n//./_}=$(build_id $n)"
done
[ "$B_alt_dwz" != "$B_alt2_dwz" ] || fail "the two alt files have one build ID"
ok "fixtures: mem.debug $(stat -c %s mem.debug) bytes, slow.debug $(stat -c %s slow.debug) bytes"

upload() { # upload FILE BID
	local code
	code=$(http_code PUT "$URL/api/v1/debuginfo/$2" --data-binary @"$1")
	[ "$code" = 201 ] || fail "upload $1: $code $(head -c 300 body)"
}

# timed NAME URL [curl args]: status and seconds into $T/NAME.res, body in $T/NAME.out
timed() {
	local name=$1 url=$2
	shift 2
	curl -s -m 60 -o "$T/$name.out" -w '%{http_code} %{time_total}\n' "$@" "$url" >"$T/$name.res"
}

sym_req() { # sym_req NAME BID ADDR
	timed "$1" "$URL/api/v1/symbolize" -X POST \
		--data "{\"build_id\":\"$2\",\"addresses\":[\"$3\"]}"
}

# nobody holds the FIFO open for reading (a blocked open() would): a non-blocking writer gets
# ENXIO
fifo_unopened() {
	python3 -c '
import errno, os, sys
try:
    os.close(os.open(sys.argv[1], os.O_WRONLY | os.O_NONBLOCK))
except OSError as e:
    sys.exit(0 if e.errno == errno.ENXIO else 1)
sys.exit(1)' "$T/fifo"
}

echo "== a) a dwz file naming a FIFO as its alt file"
start_fleetsymd a --data-dir "$T/data-a" --debug-dir "$T/empty" --threads 4 \
	--request-timeout 10s
upload fa "$B_fa"
upload fx0 "$B_fx0"
pids=()
for i in 1 2 3 4 5; do
	sym_req "a$i" "$B_fa" 0x1100 &
	pids+=($!)
done
sleep 0.2
timed a-metrics "$URL/metrics"
sym_req a-other "$B_fx0" 0x1100
wait "${pids[@]}"
for i in 1 2 3 4 5; do
	read -r code secs <"a$i.res"
	st=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["status"])' "a$i.out" 2>/dev/null)
	if [ "$code" = 200 ] && python3 -c "import sys; sys.exit(0 if $secs < 15 else 1)"; then
		ok "symbolize $i of the FIFO-altlink file: $code in ${secs}s, status $st"
	else
		fail "symbolize $i of the FIFO-altlink file: $code in ${secs}s: $(head -c 300 a$i.out)"
	fi
done
read -r code secs <a-metrics.res
[ "$code" = 200 ] && ok "/metrics meanwhile: $code in ${secs}s" || fail "/metrics: $code in ${secs}s"
read -r code secs <a-other.res
grep -q '"status":"found"' a-other.out && grep -q '"function"' a-other.out &&
	ok "another build ID meanwhile: $code in ${secs}s, found with frames" ||
	fail "another build ID: $code $(head -c 300 a-other.out)"
fifo_unopened && ok "nobody opened the FIFO" || fail "the FIFO was opened"
grep -q "event=dwz_alt build_id=$B_fa .*found=0" a.log &&
	ok "the alt file was looked up by build ID in the store (not there)" ||
	fail "no dwz_alt lookup in the log"
stop_pid "$FSD_PID" || fail "fleetsymd did not exit cleanly (status $?)"

echo "== b) hostile debug files: out of memory, past the deadline"
# bad_wait BID: symbolize until the answer is no longer pending (at most 60 s); prints status
bad_wait() {
	local st=pending
	for _ in $(seq 120); do
		sym_req bw "$1" 0x1100
		st=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["status"])' bw.out 2>/dev/null)
		[ "$st" = pending ] || break
		sleep 0.5
	done
	echo "$st"
}
# bad_checks NAME BID WANT_REASON: the mark shows in symbolize, status and /missing; answers
# come at once and start no new worker; /metrics and another build ID answer
bad_checks() {
	local name=$1 bid=$2 want=$3 t0 st n0 n1
	t0=$(date +%s.%N)
	st=$(bad_wait "$bid")
	if [ "$st" = bad ] && grep -q "$want" bw.out; then
		ok "$name: symbolize says bad after $(python3 -c "import time; print('%.2f' % (time.time() - $t0))") s: $(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["reason"])' bw.out)"
	else
		fail "$name: symbolize status $st: $(head -c 400 bw.out)"
		return
	fi
	n0=$(grep -c "event=index_bad build_id=$bid" "$T/$name.log")
	for i in 1 2 3; do sym_req "again$i" "$bid" 0x1100; done
	read -r code secs <again3.res
	n1=$(grep -c "event=index_bad build_id=$bid" "$T/$name.log")
	[ "$n0" = 1 ] && [ "$n1" = 1 ] && grep -q '"status":"bad"' again3.out &&
		python3 -c "import sys; sys.exit(0 if $secs < 2 else 1)" &&
		ok "$name: 3 more requests answered bad without a new worker (last $code in ${secs}s)" ||
		fail "$name: workers run $n0 then $n1 times; last answer $code ${secs}s $(head -c 200 again3.out)"
	[ "$(metric "$URL" fleetsymd_index_bad)" = 1 ] && ok "$name: fleetsymd_index_bad 1" ||
		fail "$name: fleetsymd_index_bad $(metric "$URL" fleetsymd_index_bad)"
	expect "$name: /api/v1/debuginfo shows the mark" 200 GET "/api/v1/debuginfo/$bid"
	check "$name: status bad with the reason" "d.get('bad') is True and '$want' in d['bad_reason']"
	python3 - "$URL" "$bid" <<'PY' >ing.out 2>&1 || fail "$name: ingest: $(cat ing.out)"
import gzip, os, sys, time, urllib.request
sys.path.insert(0, os.environ["TESTS"] + "/lib")
import mkpprof
url, bid = sys.argv[1], sys.argv[2]
prof = {"type": ["cpu", "nanoseconds"], "period": 10000000, "time_ns": int(time.time() * 1e9),
        "duration_ns": 10**10, "mappings": [{"build_id": bid, "filename": "/opt/app/hostile"}],
        "samples": [{"frames": [[0, 0x1100]], "value": 5}]}
req = urllib.request.Request(url + "/api/v1/ingest?service=hostile",
                             data=gzip.compress(mkpprof.encode(prof)), method="POST")
urllib.request.urlopen(req, timeout=30).read()
PY
	expect "$name: /api/v1/missing" 200 GET "/api/v1/missing?query=%7Bservice%3D%22hostile%22%7D&from=now-1h&to=now%2B1h"
	check "$name: /missing lists it as failed with the reason" \
		"any(m['build_id'] == '$bid' and m['status'] == 'failed' and '$want' in m['reason'] for m in d['missing'])"
	timed m2 "$URL/metrics"
	sym_req other2 "$B_fx1" 0x1100
	read -r code secs <m2.res
	grep -q '"function"' other2.out && [ "$code" = 200 ] &&
		ok "$name: /metrics $code in ${secs}s, another build ID found" ||
		fail "$name: /metrics $code, other: $(head -c 200 other2.out)"
}
export TESTS

start_fleetsymd mem --data-dir "$T/data-mem" --debug-dir "$T/empty" --worker-memory 100M \
	--max-upload-size 256M --log-level info
upload mem.debug "$B_mem_debug"
upload fx1 "$B_fx1"
if [ "$ASAN" = 1 ]; then
	# no RLIMIT_AS in an ASan build: the same file must then simply be indexed
	st=$(bad_wait "$B_mem_debug")
	[ "$st" = found ] && ok "mem: ASan build (no address space limit): indexed, status $st" ||
		fail "mem: ASan build: status $st $(head -c 300 bw.out)"
else
	bad_checks mem "$B_mem_debug" "out of memory"
fi
stop_pid "$FSD_PID" || fail "fleetsymd did not exit cleanly (status $?)"

start_fleetsymd slow --data-dir "$T/data-slow" --debug-dir "$T/empty" --worker-timeout 1s \
	--max-upload-size 256M --log-level info
upload slow.debug "$B_slow_debug"
upload fx1 "$B_fx1"
bad_checks slow "$B_slow_debug" "deadline"
grep -q "event=index_bad build_id=$B_slow_debug .*worker_maxrss_kb=" slow.log &&
	ok "slow: the worker's $(grep "event=index_bad build_id=$B_slow_debug" slow.log | head -1 | grep -o 'seconds=.*'); fleetsymd's own peak: $(awk '/VmHWM/{print $2, $3}' /proc/$FSD_PID/status)"
stop_pid "$FSD_PID" || fail "fleetsymd did not exit cleanly (status $?)"
# a restart forgets the mark: the worker runs again (and fails again)
mv slow.log slow-1.log
start_fleetsymd slow --data-dir "$T/data-slow" --debug-dir "$T/empty" --worker-timeout 1s \
	--max-upload-size 256M --log-level info
st=$(bad_wait "$B_slow_debug")
[ "$st" = bad ] && [ "$(grep -c "event=index_bad build_id=$B_slow_debug" slow.log)" = 1 ] &&
	ok "after a restart the worker ran again: bad again" || fail "after restart: $st"
stop_pid "$FSD_PID" || fail "fleetsymd did not exit cleanly (status $?)"

echo "== b2) the worker killed mid-index (kill -9 from outside)"
start_fleetsymd kill --data-dir "$T/data-slow" --debug-dir "$T/empty" --log-level info
sym_req k0 "$B_slow_debug" 0x1100 &
kpid=$!
wpid=
for _ in $(seq 200); do
	wpid=$(pgrep -P "$FSD_PID" fleetsym-worker | head -1)
	[ -n "$wpid" ] && break
	sleep 0.02
done
if [ -n "$wpid" ]; then
	sleep 0.3
	kill -9 "$wpid" 2>/dev/null
	wait "$kpid"
	st=$(bad_wait "$B_slow_debug")
	[ "$st" = bad ] && grep -q SIGKILL bw.out &&
		ok "killed worker (pid $wpid): build ID bad, $(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["reason"])' bw.out)" ||
		fail "killed worker: status $st $(head -c 300 bw.out)"
	[ "$(tmp_files "$T/data-slow")" = 0 ] && ok "no half-written index left in the store's tmp dir" ||
		fail "left in tmp: $(find "$T/data-slow/tmp" -mindepth 1)"
	[ -z "$(find "$T/data-slow" -name "$B_slow_debug.symidx")" ] && ok "no index installed for it" ||
		fail "an index was installed"
	sym_req k1 "$B_fx1" 0x1100
	grep -q '"function"' k1.out && ok "another build ID still answers" || fail "other: $(head -c 200 k1.out)"
else
	fail "no worker seen under fleetsymd"
fi
stop_pid "$FSD_PID" || fail "fleetsymd did not exit cleanly (status $?)"

echo "== c) dwz files: the alt file by build ID, from the store only"
start_fleetsymd c --data-dir "$T/data-c" --debug-dir "$T/empty" --log-level info
upload alt.dwz "$B_alt_dwz"
upload fc "$B_fc"
if $CHECK --url "$URL" --elf fc --build-id "$B_fc" -n 300 --seed 3; then
	ok "dwz file fc: identical to fleetsym-symbolize and eu-addr2line through the stored alt file"
else
	fail "dwz file fc differs"
fi
grep -q "event=dwz_alt build_id=$B_fc alt=$B_alt_dwz found=1" c.log && ok "fc's alt found by build ID" ||
	fail "fc's alt lookup: $(grep dwz_alt c.log)"
upload fe "$B_fe"
if $CHECK --url "$URL" --elf fe --build-id "$B_fe" -n 100 --seed 4 >fe-check.log 2>&1; then
	fail "fe answered fully although its alt file is only at the path it names"
else
	ok "fe (alt file only at the path it names, $T/alt2.dwz): names from it missing, as they must be"
fi
stop_pid "$FSD_PID" || fail "fleetsymd did not exit cleanly (status $?)"

echo "== d) uploads are read and inflated by a worker, never inside fleetsymd"
# big.debug: fx0's debug file with 160 MiB of text (16 random bytes a KiB line) added as a zlib
# debug section (~4 MB on the wire, about 1:43, under the store's 1:64 cap): libelf inflates it
# in memory to install it
objcopy --only-keep-debug fx0 big.base
python3 -c '
import base64, os, sys
with open("junk.txt", "wb") as f:
    for _ in range(160 * 1024):
        f.write(base64.b16encode(os.urandom(16)) + b"." * 991 + b"\n")'
objcopy --add-section .debug_junk=junk.txt --set-section-flags .debug_junk=readonly,debug \
	big.base big.plain && objcopy --compress-debug-sections=zlib big.plain big.debug ||
	fail "big.debug"
rm -f junk.txt big.base big.plain
B_big=$(build_id big.debug 2>/dev/null)
ok "big.debug: $(stat -c %s big.debug) bytes, $(readelf -S -W big.debug 2>/dev/null | grep -c ' C ') compressed sections"
if [ "$ASAN" != 1 ]; then
	# the worker may not take what inflating needs: the upload is refused, nothing is kept
	start_fleetsymd small --data-dir "$T/data-small" --debug-dir "$T/empty" --worker-memory 100M \
		--max-upload-size 64M --log-level info
	code=$(http_code PUT "$URL/api/v1/debuginfo/$B_big" --data-binary @big.debug)
	[ "$code" = 413 ] && ok "inflating needs more than --worker-memory 100M: 413 $(head -c 200 body)" ||
		fail "big upload with a 100M worker: $code $(head -c 300 body)"
	grep -q "event=elf_check .*decompress=1 result=.*out of memory" small.log &&
		ok "the worker ran out of memory: $(grep -o 'event=elf_check .*decompress=1.*' small.log | head -1)" ||
		fail "no worker out of memory in the log: $(grep elf_check small.log | tail -2)"
	expect "nothing stored for it" 404 GET "/api/v1/debuginfo/$B_big"
	[ "$(tmp_files "$T/data-small")" = 0 ] && ok "nothing left in the store's tmp dir" ||
		fail "left in tmp: $(find "$T/data-small/tmp" -mindepth 1)"
	upload fx1 "$B_fx1"
	sym_req small1 "$B_fx1" 0x1100
	timed small-m "$URL/metrics"
	grep -q '"function"' small1.out && grep -q '^200 ' small-m.res &&
		ok "fleetsymd goes on: another upload symbolizes, /metrics answers" ||
		fail "after the refused upload: $(head -c 200 small1.out) $(cat small-m.res)"
	stop_pid "$FSD_PID" || fail "fleetsymd did not exit cleanly (status $?)"
fi
# with room, it is installed; the inflating shows in the worker's peak, not in fleetsymd's
start_fleetsymd roomy --data-dir "$T/data-roomy" --debug-dir "$T/empty" --max-upload-size 64M \
	--log-level info
upload big.debug "$B_big"
expect "installed, inflated" 200 GET "/api/v1/debuginfo/$B_big"
check "size is the inflated file's, orig_size the upload's" \
	"d['size'] > 160 * 1024 * 1024 and d['orig_size'] == $(stat -c %s big.debug)"
wkb=$(grep -o "event=elf_check .*decompress=1 result=ok .*worker_maxrss_kb=[0-9]*" roomy.log |
	sed 's/.*worker_maxrss_kb=//' | head -1)
fkb=$(awk '/VmHWM/ {print $2}' "/proc/$FSD_PID/status")
[ -n "$wkb" ] && [ "$wkb" -gt $((160 * 1024)) ] && ok "the worker inflated it: its peak RSS ${wkb} kB" ||
	fail "no worker peak above 160 MiB in the log: '$wkb' $(grep elf_check roomy.log | tail -2)"
if [ "$ASAN" != 1 ]; then
	[ "$fkb" -lt $((100 * 1024)) ] && ok "fleetsymd's own peak RSS: ${fkb} kB (less than the inflated section)" ||
		fail "fleetsymd's peak RSS ${fkb} kB: did it inflate the file itself?"
fi
if $CHECK --url "$URL" --elf fx0 --build-id "$B_big" -n 50 --seed 5 >big-check.log 2>&1; then
	ok "the inflated upload symbolizes as fx0 does"
else
	fail "big.debug answers differ: $(tail -3 big-check.log)"
fi
stop_pid "$FSD_PID" || fail "fleetsymd did not exit cleanly (status $?)"

echo "== e) a check that crashes or hangs costs only its worker"
# as libelf might on a hostile file: this wrapper dies (SIGSEGV) or hangs on --check-elf
cat >bad-worker <<EOF
#!/bin/bash
case " \$* " in
*" --check-elf "*) [ -e "$T/hang" ] && exec sleep 600; kill -SEGV \$\$ ;;
esac
exec "$(cd "$BUILD" && pwd)/bin/fleetsym-worker" "\$@"
EOF
chmod +x bad-worker
start_fleetsymd bad --data-dir "$T/data-bad" --debug-dir "$T/empty" --worker "$T/bad-worker" \
	--worker-timeout 4s --log-level info
code=$(http_code PUT "$URL/api/v1/debuginfo/$B_fx0" --data-binary @fx0)
[ "$code" = 400 ] && grep -q '"error":"the upload is not usable' body &&
	ok "worker crashed checking the upload: 400 $(head -c 120 body)" ||
	fail "upload with a crashing check: $code $(head -c 300 body)"
grep -q "event=elf_check .*reason=the DWARF worker crashed" bad.log ||
	fail "no crash in the log: $(grep elf_check bad.log | tail -1)"
touch "$T/hang"
curl -s -m 60 -o hang.out -w '%{http_code}' -X PUT --data-binary @fx0 \
	"$URL/api/v1/debuginfo/$B_fx0" >hang.res &
hang_pid=$!
for _ in $(seq 100); do # the check is running (hung) before /metrics is asked, at most 10 s
	pgrep -f "^sleep 600" >/dev/null && break
	sleep 0.1
done
pgrep -f "^sleep 600" >/dev/null || fail "the hanging check never started"
timed bad-m "$URL/metrics"
read -r mcode msec <bad-m.res
wait "$hang_pid"
[ "$(cat hang.res)" = 400 ] && grep -q '"error":"the upload is not usable' hang.out &&
	ok "worker hung checking the upload: killed at its deadline, 400" ||
	fail "upload with a hanging check: $(cat hang.res) $(head -c 300 hang.out)"
grep -q "event=elf_check .*reason=the DWARF worker ran past its deadline" bad.log ||
	fail "no deadline in the log: $(grep elf_check bad.log | tail -1)"
[ "$mcode" = 200 ] && ok "/metrics answered while the check hung: ${msec}s" ||
	fail "/metrics during the hung check: $mcode $msec"
expect "nothing stored for it" 404 GET "/api/v1/debuginfo/$B_fx0"
[ "$(tmp_files "$T/data-bad")" = 0 ] && ok "nothing left in the store's tmp dir" ||
	fail "left in tmp: $(find "$T/data-bad/tmp" -mindepth 1)"
stop_pid "$FSD_PID" || fail "fleetsymd did not exit cleanly (status $?)"
finish
