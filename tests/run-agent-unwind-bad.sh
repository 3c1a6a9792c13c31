#!/usr/bin/env bash
# run alone
# Table unwinding on bad input, with real BPF: one fleetsym-agent run samples, side by side,
#   - a program whose .eh_frame was overwritten with garbage (it still runs: nothing throws),
#   - a program with no CFI at all (no .eh_frame, no .eh_frame_hdr),
#   - a program that dlopen()s, calls into and dlclose()s a library over and over (its code is
#     unmapped while sampled),
#   - a program burning in anonymous executable memory (JIT-like: no file, no table),
#   - and a healthy -O2 program.
# The agent must load (no verifier rejection), keep running and exit cleanly; every fallback
# is counted (tables that failed, frames through frame pointers, in anonymous code); the
# healthy program's stacks stay whole (>= 95 % reach __libc_start_call_main).
set -u
. "$(dirname "$0")/lib/agent_common.sh"
cd "$T" || exit 1
UNW="$TESTS/lib/agent_unwind.py"
L=/lib/x86_64-linux-gnu
fails=0
fail() {
	echo "FAIL: $*"
	fails=$((fails + 1))
}

nofp=(-O2 -g -fomit-frame-pointer -Wl,--build-id)
"${CC:-gcc}" "${nofp[@]}" "$TESTS/data/src/unw_work.c" -o unw_work.full -ldl || exit 1
"${CC:-gcc}" "${nofp[@]}" -fPIC -shared "$TESTS/data/src/unw_lib.c" -o unw_lib.so || exit 1
strip -o unw_work unw_work.full || exit 1
cp unw_work unw_churn && cp unw_work unw_jit || exit 1
# garbage .eh_frame, the section's bytes replaced in place, in a build of its own build ID (a
# table is built once per build ID and shared: same ID, same bytes)
"${CC:-gcc}" -O2 -g -fomit-frame-pointer -Wl,--build-id=0x0123456789abcdef0123456789abcdef01234567 \
	"$TESTS/data/src/unw_work.c" -o unw_garbage -ldl || exit 1
python3 - unw_garbage <<'PY' || exit 1
import random, struct, sys
path = sys.argv[1]
data = bytearray(open(path, "rb").read())
shoff, = struct.unpack_from("<Q", data, 0x28)
shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3a)
def sh(i):
    return struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize)
stroff = sh(shstrndx)[4]
rnd = random.Random(12)
for i in range(shnum):
    name_off, _, _, _, off, size = sh(i)[:6]
    end = data.index(b"\0", stroff + name_off)
    if data[stroff + name_off:end] == b".eh_frame":
        data[off + 16:off + size] = bytes(rnd.randrange(256) for _ in range(size - 16))
        open(path, "wb").write(data)
        print("garbage .eh_frame: %d bytes" % (size - 16))
        sys.exit(0)
sys.exit("no .eh_frame")
PY
"${CC:-gcc}" -O2 -g -fomit-frame-pointer -fno-asynchronous-unwind-tables -fno-unwind-tables \
	-Wl,--no-ld-generated-unwind-info "$TESTS/data/src/unw_work.c" -o unw_nocfi -ldl || exit 1
objcopy --remove-section .eh_frame --remove-section .eh_frame_hdr unw_nocfi || exit 1
has eh_frame readelf -SW unw_nocfi && { echo "FAIL: unw_nocfi still has CFI"; exit 1; }

start_agent agent.err --output prof.pb.gz --frequency 99 --interval 60s -v
agent=$AGENT_PID
sleep 1
bg ./unw_garbage chain 6
bg ./unw_nocfi chain 6
bg ./unw_churn churn 6 "$T/unw_lib.so"
bg ./unw_jit jit 6
bg ./unw_work chain 6
p_ok=$BG
wait "${PIDS[@]:1}"
kill -INT "$agent"
timeout 30 tail --pid="$agent" -f /dev/null
wait "$agent"
rc=$?
[ "$rc" = 0 ] || fail "agent exited with $rc"
tail -1 agent.err | tr ' ' '\n' | grep -E '^unw_' | tr '\n' ' '
echo
for c in unw_garbage unw_nocfi unw_churn unw_jit; do
	n=$(python3 "$TESTS/lib/agent_pprof.py" --summary prof.pb.gz | grep -c "\"comm\": \"$c\"")
	echo "$c: $n distinct sampled stacks"
	[ "$n" -gt 0 ] || fail "no samples of $c"
done
[ "$(stat_field agent.err unw_tables_failed)" -ge 1 ] 2>/dev/null ||
	fail "files without usable CFI are not counted (unw_tables_failed)"
[ "$(stat_field agent.err unw_frames_fp_anon)" -gt 0 ] 2>/dev/null ||
	fail "frames in anonymous code are not counted (unw_frames_fp_anon)"
[ "$(stat_field agent.err unw_frames_fp)" -gt 0 ] 2>/dev/null ||
	fail "frame-pointer steps are not counted (unw_frames_fp)"
[ "$(stat_field agent.err bad_records)" = 0 ] || fail "malformed records"
echo "--- the healthy program"
python3 "$UNW" stacks prof.pb.gz --sym "$SYM" --pid "$p_ok" --min-samples 20 \
	--elf unw_work.full --elf $L/libc.so.6 \
	--chain burn,chain_c,chain_b,chain_a,main,__libc_start_call_main || fail "healthy program"
[ $fails = 0 ] || exit 1
echo "PASS"
