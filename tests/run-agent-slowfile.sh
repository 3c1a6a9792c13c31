#!/usr/bin/env bash
# run alone
# A mapped file that never answers does not stall the agent. A process loads a shared library
# from a FUSE file system (tests/lib/fuse_hang.py, in a private mount namespace) and spins in
# it; then the file system's server is stopped (SIGSTOP) and stops answering: opening or reading that file waits for good, as on a dead NFS or FUSE
# server. The agent reads that file's build ID when it learns the process's mappings; that read
# must happen off the sampling thread: the agent keeps sampling the process, its frames keep
# their build IDs, and it exits on time (--duration 4) with rc 0. The old agent read build IDs
# on its sampling thread and hung there until the server died.
set -u
. "$(dirname "$0")/lib/agent_common.sh"
[ -c /dev/fuse ] || skip "no /dev/fuse"
command -v unshare >/dev/null || skip "unshare not installed"
cd "$T"
fail=0
cat >spin.c <<'C'
volatile unsigned long spins;
void spin(void)
{
	for (;;)
		spins++;
}
C
cat >mapper.c <<'C'
#include <dlfcn.h>
#include <stdio.h>
#include <unistd.h>
/* load argv[1] (on the FUSE file system), say so, then spin in its code */
int main(int argc, char **argv)
{
	void *h = dlopen(argv[1], RTLD_NOW);
	void (*spin)(void) = h ? (void (*)(void))dlsym(h, "spin") : NULL;

	if (!spin) {
		fprintf(stderr, "%s\n", dlerror());
		return 1;
	}
	printf("mapped %d\n", (int)getpid());
	fflush(stdout);
	spin();
	return 0;
}
C
"${CC:-gcc}" -O1 -fno-omit-frame-pointer -shared -fPIC -Wl,--build-id -o libspin.so spin.c &&
	"${CC:-gcc}" -O1 -fno-omit-frame-pointer -Wl,--build-id -o mapper mapper.c -ldl || exit 1
SPIN_BID=$(readelf -nW libspin.so | sed -n 's/.*Build ID: *//p')
mkdir mnt
# the server and the mapper in a private mount namespace: the mount is gone with them
bg unshare -m --propagation private bash -c '
	python3 "$1" "$2/mnt" "$2/libspin.so" >server.out 2>&1 &
	for _ in $(seq 100); do grep -qs mounted server.out && break; sleep 0.1; done
	exec "$2/mapper" "$2/mnt/lib.so" >mapper.out' _ "$TESTS/lib/fuse_hang.py" "$T"
NS=$BG
for _ in $(seq 100); do grep -q mapped mapper.out 2>/dev/null && break; sleep 0.1; done
grep -q mapped mapper.out || { cat server.out mapper.out; echo "FAIL: the mapper did not start"; exit 1; }
work=$(awk '{print $2}' mapper.out)
server=$(pgrep -f "fuse_hang.py $T/mnt")
PIDS+=("$work" $server)
grep lib.so "/proc/$work/maps"
kill -STOP "$server" # from now on the file system answers nothing, as a hung server
if timeout -s KILL 2 cat "/proc/$work/map_files/$(awk '/lib.so/ {print $1}' "/proc/$work/maps")" >/dev/null 2>&1; then
	echo "FAIL: the FUSE file still answers"
	exit 1
fi
echo "ok   the mapped file no longer answers (cat through map_files timed out)"

start=$(date +%s%N)
# LeakSanitizer's exit check stops every thread with ptrace, which a thread waiting on the hung
# file system does not allow: a sanitizer build waits forever there. Leaks are checked by the
# other agent tests.
export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0
start_agent agent.err --output "$T/p.pb.gz" --pid "$work" --duration 4 --frequency 99 -v
rc=0
for _ in $(seq 300); do kill -0 "$AGENT_PID" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$AGENT_PID" 2>/dev/null; then
	echo "FAIL: the agent still runs 30 s after its start (--duration 4): stuck"
	grep -E 'State|Name' "/proc/$AGENT_PID/status"
	for t in /proc/$AGENT_PID/task/*; do echo "thread $t: $(cat $t/comm) $(grep State $t/status)"; head -4 $t/stack; done
	exit 1
fi
wait "$AGENT_PID" || rc=$?
ms=$((($(date +%s%N) - start) / 1000000)) # no bc: fresh machines lack it
secs=$((ms / 1000)).$(printf %03d $((ms % 1000)))
stats=$(grep 'fleetsym-agent: stats' agent.err | tail -1)
samples=$(stat_field agent.err samples)
late=$(stat_field agent.err buildid_late)
qfull=$(stat_field agent.err buildid_queue_full)
added=$(stat_field agent.err buildid_workers_added)
echo "agent: rc=$rc in ${secs}s, samples=$samples buildid_reads=$(stat_field agent.err buildid_reads) buildid_late=$late buildid_queue_full=$qfull buildid_workers_added=$added"
if [ "$rc" = 0 ] && [ "$ms" -lt 15000 ] && [ "${samples:-0}" -ge 20 ] &&
	[ "${late:-0}" -ge 1 ] && [ "${added:-0}" -ge 1 ]; then
	echo "ok   the agent sampled and exited on time, the hung file's build ID left unknown, another reader started for the files behind it"
else
	echo "FAIL: want rc 0 within 15 s, >= 20 samples, the hung file counted late, a reader added"
	tail -5 agent.err
	fail=1
fi
# the frames in the hung file are kept, in a mapping of that file without a build ID
python3 - "$TESTS/lib" p.pb.gz "$T/mnt/lib.so" <<'PY' || fail=1
import sys
sys.path.insert(0, sys.argv[1])
import agent_pprof
p = agent_pprof.load(sys.argv[2])
n = sum(s["value"][0] for s in p["samples"]) // p["period"]
hung = [m for m in p["mappings"].values() if m.get("filename") == sys.argv[3]]
locs = {l for s in p["samples"] for l in s["locs"]
        if p["locations"][l]["mapping_id"] in {m["id"] for m in hung}}
ok = n >= 20 and hung and all(not m.get("build_id") for m in hung) and locs
print("%s profile: %d samples, %d locations in %s, mapped without a build ID" %
      ("ok  " if ok else "FAIL", n, len(locs), sys.argv[3]))
sys.exit(0 if ok else 1)
PY
kill -9 $server "$work" 2>/dev/null
wait "$NS" 2>/dev/null
exit $fail
