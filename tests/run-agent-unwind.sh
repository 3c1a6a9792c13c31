#!/usr/bin/env bash
# run alone
# Table unwinding (issue 12) with real BPF and a real fleetsymd: programs built here without
# frame pointers, and Debian's own python3.11 and xz, sampled by one fleetsym-agent run at 99 Hz
# shipping to fleetsymd (the fixtures' debug info uploaded, Debian's from /usr/lib/debug:
# libc6-dbg, libpython3.11-dbg). The stacks are named by fleetsymd (GET /api/v1/query,
# format=json, per pid) and each workload's known call chain must show whole, to main and
# __libc_start_call_main, in >= 95 % of the samples with its leaf (the first samples of a new
# binary are taken while its table is built: frame pointers then):
#   unw_work chain    C -O2:          burn <- chain_c <- chain_b <- chain_a <- main
#   unw_work recurse  200-deep recursion (about 205 frames, past bpf_get_stack's 127)
#   unw_work qsort    qsort (libc) calling back cmp_slow; memcpy from copy_loop
#   unw_work signal   a SIGALRM handler burning CPU, through the signal frame
#   unw_work dlopen   a library dlopen'ed 1.5 s after the agent started, calling back
#   unw_cxx           C++ -O2: templates, std::function, a lambda, throw/catch
#   unw_short         60 processes of 50 ms each
# Then python3.11 running a Python loop and xz compressing run under the agent and under
# `perf record --call-graph dwarf` at the same time (after a first one-second run of each: the
# comparison is of the steady state): the agent's share of samples reaching the entry must be
# >= 99 % of perf's; the hottest stacks are compared frame by frame (printed).
# The agent's counters must show table frames and stops at the entry, and no verifier trouble.
set -u
. "$(dirname "$0")/lib/service.sh"
. "$(dirname "$0")/lib/agent_common.sh"
cd "$T" || exit 1
UNW="$TESTS/lib/agent_unwind.py"
L=/lib/x86_64-linux-gnu
PY=/usr/bin/python3.11
[ -x "$PY" ] || skip "Debian's python3.11 is not installed"
command -v xz >/dev/null || skip "xz not installed"
command -v "${CXX:-g++}" >/dev/null || skip "no C++ compiler"
[ -n "$(ls /usr/lib/debug/.build-id/*/*.debug 2>/dev/null | head -1)" ] ||
	skip "no detached debug info (libc6-dbg) for libc's names"
fails=0
fail() {
	echo "FAIL: $*"
	fails=$((fails + 1))
}

nofp=(-O2 -g -fomit-frame-pointer -Wl,--build-id)
"${CC:-gcc}" "${nofp[@]}" "$TESTS/data/src/unw_work.c" -o unw_work.full -ldl || exit 1
"${CC:-gcc}" "${nofp[@]}" -fPIC -shared "$TESTS/data/src/unw_lib.c" -o unw_lib.full || exit 1
"${CXX:-g++}" "${nofp[@]}" "$TESTS/data/src/unw_cxx.cc" -o unw_cxx.full || exit 1
strip -o unw_work unw_work.full && strip -o unw_lib.so unw_lib.full && strip -o unw_cxx unw_cxx.full &&
	cp unw_work unw_short || exit 1
head -c 40000000 /dev/urandom >data.bin

start_fleetsymd unwind --data-dir "$T/data" --debug-dir /usr/lib/debug --request-timeout 60
for f in unw_work.full unw_lib.full unw_cxx.full; do
	"$BUILD/bin/fleetsym-upload" --server "$URL" "$f" >up.txt 2>&1 ||
		{ cat up.txt; echo "FAIL: upload of $f"; exit 1; }
done
start_agent agent.err --server "$URL" --label service=unwind --frequency 99 --interval 2s -v
agent=$AGENT_PID
sleep 1

# phase 1: the fixtures, side by side; the dlopen happens 1.5 s into its run
bg ./unw_work chain 6
p_chain=$BG
bg ./unw_work recurse 6
p_rec=$BG
bg ./unw_work qsort 6
p_qsort=$BG
bg ./unw_work signal 6
p_sig=$BG
bg ./unw_work dlopen 6 "$T/unw_lib.so"
p_dl=$BG
bg sh -c 'exec ./unw_cxx 6 >/dev/null'
p_cxx=$BG
for _ in $(seq 60); do ./unw_short short; done
wait $p_chain $p_rec $p_qsort $p_sig $p_dl $p_cxx

# phase 2: Debian's binaries under the agent and perf at once. A first run of each, for a
# second, is the agent's first sight of these binaries (their tables are built then, counted
# as unw_pending meanwhile); the runs compared with perf come after, as on a host where the
# binaries run all day.
export HOME="$T/home"
mkdir -p "$HOME"
timeout 1 "$PY" -c 'while True: pass'
timeout 1 xz -6 -T1 -c data.bin >/dev/null
sleep 0.5
bg "$PY" -c '
import time
def inner(n):
    s = 0
    for i in range(n):
        s += i * i
    return s
def outer():
    t = time.time()
    while time.time() - t < 12:
        inner(10000)
outer()'
p_py=$BG
bg sh -c 'exec xz -6 -T1 -c data.bin >/dev/null'
p_xz=$BG
sleep 1
have_perf=0
if command -v perf >/dev/null &&
	perf record -q -F 99 --call-graph dwarf -p "$p_py,$p_xz" -o perf.data -- sleep 8 \
		>perf.log 2>&1; then
	perf script -i perf.data -F comm,pid,ip,sym >perf.txt 2>/dev/null && have_perf=1
else
	echo "perf record --call-graph dwarf failed: no perf comparison"
	cat perf.log
	sleep 8
fi
kill "$p_py" "$p_xz" 2>/dev/null
kill -INT "$agent"
wait "$agent"
rc=$?
[ "$rc" = 0 ] || fail "agent exited with $rc"
grep -q 'sent=[1-9]' agent.err || fail "the agent sent no profile"
grep -q 'dropped_exit=0' agent.err || fail "profiles dropped at exit"

# query SELECTOR FILE: fleetsymd's named stacks (format=json) for the run
query() {
	curl -s -G -o "$2" -w '%{http_code}' "$URL/api/v1/query" --data-urlencode "query=$1" \
		--data-urlencode "from=now-30m" --data-urlencode "to=now" \
		--data-urlencode "format=json" | grep -q 200 || { cat "$2"; echo; fail "query $1"; }
}
check() { # check NAME SELECTOR ARGS... : agent_unwind.py stacks on fleetsymd's answer
	local name=$1 sel=$2 f
	f="q-$(echo "$name" | tr -c 'a-zA-Z0-9\n' _).json"
	shift 2
	echo "--- $name"
	query "{service=\"unwind\",$sel}" "$f"
	python3 "$UNW" stacks "$f" "$@" || fail "$name"
}
check "C -O2" "pid=\"$p_chain\"" --min-samples 20 \
	--chain burn,chain_c,chain_b,chain_a,main,__libc_start_call_main
check "recursion" "pid=\"$p_rec\"" --min-samples 20 --repeat recurse=201 \
	--chain burn,recurse,main,__libc_start_call_main
check "qsort callback" "pid=\"$p_qsort\"" --min-samples 10 \
	--chain 'cmp_slow,msort_with_tmp,*qsort_r,sort_loop,main,__libc_start_call_main'
# memcpy from copy_loop, and from qsort's merge
check "memcpy" "pid=\"$p_qsort\"" --min-samples 10 \
	--chain '__mem*,copy_loop,main,__libc_start_call_main' \
	--chain '__mem*,msort_with_tmp,*qsort_r,sort_loop,main,__libc_start_call_main'
check "signal handler" "pid=\"$p_sig\"" --min-samples 10 \
	--chain burn,chain_a,on_alarm,sig_wait,main,__libc_start_call_main
# dl_run is main's tail call: main's frame is gone before any sample, for every unwinder
check "dlopen" "pid=\"$p_dl\"" --min-samples 10 \
	--chain burn,burn_cb,lib_inner,lib_burn,dl_run,__libc_start_call_main
check "C++" "pid=\"$p_cxx\"" --min-samples 20 \
	--chain 'burn_cxx,*operator()*,Worker<int>::step*,run_lambda*,main,__libc_start_call_main'
check "50 ms processes" 'comm="unw_short"' --min-samples 10 \
	--chain burn,chain_c,chain_b,chain_a,main,__libc_start_call_main
for w in python3.11:$p_py xz:$p_xz; do
	if [ $have_perf = 1 ]; then
		check "${w%%:*} vs perf" "pid=\"${w##*:}\"" --comm "${w%%:*}" --min-samples 50 \
			--perf perf.txt --min-perf-ratio 0.99 --top 20
	else
		check "${w%%:*}" "pid=\"${w##*:}\"" --min-samples 50 --min-entry 0.97
	fi
done

echo "--- agent counters"
tail -1 agent.err | tr ' ' '\n' | grep -E '^unw_' | tr '\n' ' '
echo
[ "$(stat_field agent.err unw_frames_table)" -gt 0 ] 2>/dev/null || fail "no frames unwound by table"
[ "$(stat_field agent.err unw_stop_entry)" -gt 0 ] 2>/dev/null || fail "no walk reached the entry"
[ "$(stat_field agent.err unw_tables)" -gt 3 ] 2>/dev/null || fail "fewer tables than binaries"
[ $fails = 0 ] && [ "$failed" = 0 ] || exit 1
echo "PASS"
