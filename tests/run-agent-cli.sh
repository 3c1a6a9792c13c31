#!/usr/bin/env bash
# run alone
# fleetsym-agent's command line and failures: usage errors (exit 2), a missing process,
# cgroup or token file (exit 1, saying which), no privileges (exit 1, saying what is missing),
# and the --cgroup filter on a real cgroup v2 directory (only its tasks, labelled with it).
set -u
. "$(dirname "$0")/lib/agent_common.sh"
cd "$T"
fail=0
# expect NAME RC REGEX -- command...
expect() {
	local name=$1 want_rc=$2 want=$3 rc=0
	shift 4
	timeout 30 "$@" >out.txt 2>err.txt || rc=$?
	if [ "$rc" = "$want_rc" ] && grep -Eq -e "$want" err.txt; then
		echo "ok   $name: rc=$rc, $(grep -E -e "$want" err.txt | head -1)"
	else
		echo "FAIL $name: rc=$rc (want $want_rc), stderr: $(head -3 err.txt)"
		fail=1
	fi
}

expect no-mode 2 'one of --server URL and --output FILE' -- "$AGENT"
expect both-modes 2 'one of --server' -- "$AGENT" --server http://127.0.0.1:1 --output x
expect nine-servers 2 "bad value 'http://127.0.0.1:9' for --server" -- "$AGENT" --server http://127.0.0.1:1 --server http://127.0.0.1:2 --server http://127.0.0.1:3 --server http://127.0.0.1:4 --server http://127.0.0.1:5 --server http://127.0.0.1:6 --server http://127.0.0.1:7 --server http://127.0.0.1:8 --server http://127.0.0.1:9
expect bad-frequency 2 "bad value '0' for --frequency" -- "$AGENT" --output x --frequency 0
expect bad-interval 2 "bad value '1ms' for --interval" -- "$AGENT" --output x --interval 1ms
expect bad-duration 2 "bad value '5parsecs' for --duration" -- "$AGENT" --output x --duration 5parsecs
expect bad-label 2 'wants KEY=VALUE' -- "$AGENT" --output x --label 'no equals'
expect bad-label-key 2 'wants KEY=VALUE' -- "$AGENT" --output x --label '9x=1'
expect unknown-flag 2 'usage' -- "$AGENT" --output x --bogus
expect extra-arg 2 "unexpected argument 'extra'" -- "$AGENT" --output x extra
expect no-process 1 'no process 2147483646' -- "$AGENT" --output x --pid 2147483646
expect no-cgroup 1 '--cgroup /no/such/cgroup: No such file' -- "$AGENT" --output x --cgroup /no/such/cgroup
expect no-token 1 'token file' -- "$AGENT" --server http://127.0.0.1:1 --token-file "$T/none"
if command -v setpriv >/dev/null; then
	expect unprivileged 1 'not privileged: run as root, or with CAP_BPF and CAP_PERFMON' -- \
		setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all \
		"$AGENT" --output /dev/null --duration 1
	grep -q 'cannot start sampling' err.txt || { echo "FAIL: no summary line"; fail=1; }
else
	echo "note: setpriv not installed, unprivileged case left out"
fi

# the capabilities of agent/fleetsym-agent.service, as user nobody, are enough for everything:
# samples, build IDs of mapped files, kernel names
build_fixture
caps=$(sed -n 's/^AmbientCapabilities=//p' "$TESTS/../agent/fleetsym-agent.service" |
	tr 'A-Z' 'a-z' | sed 's/cap_/+/g; s/ /,/g')
echo "unit's capabilities: $caps"
if command -v setpriv >/dev/null && [ -n "$caps" ]; then
	bg ./agent_work sys 6
	work=$BG
	chmod 755 "$T"
	mkdir -p "$T/nobody" && chown 65534:65534 "$T/nobody"
	rc=0
	timeout 30 setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps="-all,$caps" \
		--ambient-caps="-all,$caps" "$AGENT" --output "$T/nobody/caps.pb.gz" --duration 2 \
		--frequency 99 --pid "$work" 2>caps.err || rc=$?
	cat caps.err
	kill "$work"
	if [ "$rc" = 0 ] && python3 "$CHECK" kernel nobody/caps.pb.gz --comm agent_work --min-samples 20 \
		--entry-file libc.so; then
		echo "ok   the unit's capabilities suffice (as nobody)"
	else
		echo "FAIL: as nobody with the unit's capabilities (rc=$rc)"
		fail=1
	fi
fi

# --cgroup: a fixture inside a fresh cgroup v2 directory, another one outside
cg2=$(awk '$3 == "cgroup2" {print $2; exit}' /proc/self/mounts)
[ -n "$cg2" ] || skip "no cgroup v2 mounted"
cgname="fleetsym-agent-test-$$"
cg="$cg2/$cgname"
mkdir "$cg" || { echo "FAIL: cannot create $cg"; exit 1; }
trap 'agent_cleanup; rmdir "$cg" 2>/dev/null' EXIT
bg ./agent_work burn 10
inside=$BG
bg ./agent_work burn 10
outside=$BG
echo "$inside" >"$cg/cgroup.procs" || { echo "FAIL: cannot move $inside into $cg"; exit 1; }
timeout 30 "$AGENT" --output "$T/cg.pb.gz" --frequency 99 --duration 2 --cgroup "/$cgname" 2>cg.err
rc=$?
cat cg.err
[ "$rc" = 0 ] || { echo "FAIL: agent exited with $rc"; fail=1; }
python3 - "$TESTS/lib" cg.pb.gz "$inside" "/$cgname" <<'PY' || fail=1
import collections, sys
sys.path.insert(0, sys.argv[1])
import agent_pprof
p = agent_pprof.load(sys.argv[2])
inside, cg = int(sys.argv[3]), sys.argv[4]
by = collections.Counter()
for s in p["samples"]:
    by[(s["labels"].get("pid"), s["labels"].get("cgroup"))] += s["value"][0] // p["period"]
print("samples by (pid, cgroup): %s" % dict(by))
ok = by and set(by) == {(inside, cg)} and sum(by.values()) >= 20
print("%s --cgroup: only the task in %s, labelled with it" % ("ok  " if ok else "FAIL", cg))
sys.exit(0 if ok else 1)
PY
kill "$inside" "$outside" 2>/dev/null
wait "$inside" "$outside" 2>/dev/null
exit $fail
