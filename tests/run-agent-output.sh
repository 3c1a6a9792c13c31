#!/usr/bin/env bash
# run alone
# fleetsym-agent --output: a profile file is written whole and renamed in, then its directory
# is fsync'd (without it a crash after the rename can bring back the old name or none); the
# strace of a real run shows the fsync of the directory after the rename. An output that
# exists and is not a regular file (a FIFO here) is written in place, not replaced by a file.
set -u
. "$(dirname "$0")/lib/agent_common.sh"
command -v strace >/dev/null || skip "strace not installed"
cd "$T"
fail=0

# 1. a regular file: write, fsync, rename, then fsync of the directory, in that order
mkdir out
# (LeakSanitizer cannot run under ptrace: a sanitizer build checks leaks in case 2 only)
ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0 timeout 60 strace -f -qq -e trace=fsync,rename,renameat,renameat2,openat -o trace.txt \
	"$AGENT" --output "$T/out/p.pb.gz" --duration 1 --frequency 49 2>agent.err
rc=$?
python3 - "$T/out" trace.txt "$rc" <<'PY' || fail=1
import re, sys
d, lines, rc = sys.argv[1], open(sys.argv[2]).read().splitlines(), int(sys.argv[3])
# strace -f splits a call that another thread interrupts into "<unfinished ...>" and
# "<... NAME resumed>" lines (each prefixed by its pid): join them back into one call
calls, pending = [], {}
for l in lines:
    pid, _, rest = l.partition(" ")
    if rest.endswith("<unfinished ...>"):
        pending[pid] = rest[: -len("<unfinished ...>")]
    elif rest.startswith("<... ") and " resumed>" in rest:
        calls.append(pending.pop(pid, "") + rest.split(" resumed>", 1)[1])
    else:
        calls.append(rest)
fds, steps = {}, []
for l in calls:
    m = re.search(r'openat\(AT_FDCWD, "([^"]*)".*\) = (\d+)$', l)
    if m:
        fds[m.group(2)] = m.group(1)
    m = re.search(r'fsync\((\d+)\s*\)\s*= 0', l)
    if m and fds.get(m.group(1), "").startswith(d):
        steps.append(("fsync", fds[m.group(1)]))
    m = re.search(r'rename(?:at2?)?\(.*"([^"]*)", .*"([^"]*)".*= 0', l)
    if m and m.group(2).startswith(d):
        steps.append(("rename", m.group(2)))
print("agent rc=%d, steps on %s: %s" % (rc, d, steps))
ren = [i for i, s in enumerate(steps) if s[0] == "rename"]
ok = rc == 0 and ren and steps[ren[-1]][1] == d + "/p.pb.gz"
ok = ok and any(s == ("fsync", d) for s in steps[ren[-1] + 1:])
ok = ok and any(s[0] == "fsync" and s[1].startswith(d + "/p.pb.gz.tmp") for s in steps[:ren[-1]])
print("%s the file fsync'd, renamed in, then its directory fsync'd" % ("ok  " if ok else "FAIL"))
sys.exit(0 if ok else 1)
PY
left=$(find out -name '*.tmp*' | wc -l)
if [ -s out/p.pb.gz ] && gzip -t out/p.pb.gz && [ "$left" = 0 ]; then
	echo "ok   out/p.pb.gz: $(stat -c %s out/p.pb.gz) bytes, a whole gzip, no temp file left"
else
	echo "FAIL out/p.pb.gz missing or not whole, or $left temp files left"
	fail=1
fi

# 2. a FIFO: written in place (a reader gets the profile); replacing it would leave the
# reader waiting (bounded by its timeout) and a regular file where the FIFO was
mkfifo fifo
timeout 30 cat fifo >from_fifo &
reader=$!
PIDS+=("$reader")
rc=0
timeout 60 "$AGENT" --output "$T/fifo" --duration 1 --frequency 49 2>fifo.err || rc=$?
wait "$reader"
rrc=$?
if [ "$rc" = 0 ] && [ "$rrc" = 0 ] && [ -p fifo ] && gzip -t from_fifo; then
	echo "ok   --output FIFO: agent rc=0, the reader got $(stat -c %s from_fifo) bytes of gzip, the FIFO is still a FIFO"
else
	echo "FAIL --output FIFO: agent rc=$rc, reader rc=$rrc, fifo: $(stat -c %F fifo), got $(stat -c %s from_fifo) bytes"
	cat fifo.err
	fail=1
fi
exit $fail
