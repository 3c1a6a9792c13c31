#!/usr/bin/env bash
# run alone
# fleetsym-agent's own cost, sampling the whole host at 19 Hz and at 99 Hz while a CPU-bound
# fixture runs: the agent's CPU (schedstat CPU time of its threads over 5 s of steady state,
# i.e. once start-up is over: after two seconds in a row in which the agent used under 2 % of
# a CPU, at most 30 s after start; its unwind table builders' CPU is shown apart: they work
# once per new binary sampled on the host), its RSS (VmRSS, VmHWM), and the BPF program's cost
# per run from kernel.bpf_stats_enabled (run_time_ns / run_cnt of do_sample in bpftool).
# Budgets checked: RSS <= 32 MB in steady state and <= 56 MB at its peak (while building a
# table: libdw's state and the file's CFI pages, released after each), both besides the unwind
# rows of the host's binaries (bounded by --unwind-memory; how many binaries run is the host's
# business); CPU <= 2 % of one CPU; BPF <= 50 us per sample.
set -u
. "$(dirname "$0")/lib/agent_common.sh"
command -v bpftool >/dev/null || skip "bpftool not installed"
cd "$T"
build_fixture
fail=0
BPF_STATS_OLD=$(sysctl -n kernel.bpf_stats_enabled)
sysctl -qw kernel.bpf_stats_enabled=1
bg ./agent_work burn 30

# CPU time of PID's threads in ns (schedstat: precise, where /proc/PID/stat has ticks): all but
# the unwind table builders (threads "unw-build": once per binary, reported apart), or with
# a second argument only those
cpu_ns() {
	local t s=0 c
	for t in /proc/"$1"/task/*; do
		c=$(cat "$t/comm" 2>/dev/null)
		if [ "${2:-}" = build ] && [ "$c" != unw-build ]; then continue; fi
		if [ -z "${2:-}" ] && [ "$c" = unw-build ]; then continue; fi
		s=$((s + $(awk '{print $1}' "$t/schedstat" 2>/dev/null || echo 0)))
	done
	echo "$s"
}

for hz in 19 99; do
	bg "$AGENT" --output "$T/host-$hz.pb.gz" --frequency "$hz" --duration 60 2>"agent-$hz.err"
	agent=$BG
	sleep 1
	quiet=0
	for settle in $(seq 2 30); do
		c0=$(cpu_ns "$agent")
		sleep 1
		if [ $(($(cpu_ns "$agent") - c0)) -lt 20000000 ]; then
			quiet=$((quiet + 1))
			[ $quiet = 2 ] && break
		else
			quiet=0
		fi
	done
	echo "$hz Hz: start-up over after ${settle} s"
	t0=$(date +%s%N) c0=$(cpu_ns "$agent") b0=$(cpu_ns "$agent" build)
	sleep 5
	t1=$(date +%s%N) c1=$(cpu_ns "$agent") b1=$(cpu_ns "$agent" build)
	echo "$hz Hz: unwind table building meanwhile: $(((b1 - b0) / 1000000)) ms of CPU" \
		"(new binaries sampled on the host; once each)"
	rss=$(awk '/^VmRSS/ {print $2}' "/proc/$agent/status")
	hwm=$(awk '/^VmHWM/ {print $2}' "/proc/$agent/status")
	# the agent's own programs: the prog_id of its BPF fds (bpftool here lists no pids)
	for f in /proc/"$agent"/fdinfo/*; do awk '/^prog_id:/ {print $2}' "$f" 2>/dev/null; done |
		sort -u >prog_ids
	bpftool prog show -j >progs.json
	kill -INT "$agent"
	wait "$agent"
	grep 'fleetsym-agent: stats' "agent-$hz.err"
	rows=$(stat_field "agent-$hz.err" unw_rows_used)
	san=0 # a sanitizer build's RSS says nothing of the budgets
	grep -qa __asan_init "$AGENT" && san=1
	python3 - "$hz" "$agent" "$san" "$t0" "$t1" "$c0" "$c1" "$rss" "$hwm" "${rows:-0}" <<'PY' || fail=1
import json, sys
hz, agent = int(sys.argv[1]), int(sys.argv[2])
t0, t1, c0, c1, rss, hwm, rows = (int(x) for x in sys.argv[4:11])
# the unwind rows of the binaries sampled on this host (8 bytes each, capped by
# --unwind-memory) live in the agent's RSS too: how many depends on the host, not the agent
tables = rows * 8 // 1024
cpu = 100.0 * (c1 - c0) / (t1 - t0)
ids = set(int(x) for x in open("prog_ids").read().split())
progs = [p for p in json.load(open("progs.json")) if p.get("name") == "do_sample" and p["id"] in ids]
runs = sum(p.get("run_cnt", 0) for p in progs)
ns = sum(p.get("run_time_ns", 0) for p in progs)
per = ns / runs if runs else float("nan")
print("%d Hz: agent CPU %.2f%% of one CPU (steady state), RSS %d KiB (peak %d KiB), of which "
      "unwind tables %d KiB; BPF do_sample %d runs, %.0f ns per run"
      % (hz, cpu, rss, hwm, tables, runs, per))
ok = True
if sys.argv[3] == "1":
    print("note: sanitizer build: budgets not checked")
    sys.exit(0)
for good, what in ((rss - tables <= 32 * 1024, "RSS <= 32 MB besides the unwind tables"),
                   (hwm - tables <= 56 * 1024, "peak RSS <= 56 MB besides the unwind tables"),
                   (cpu <= 2.0, "CPU <= 2%"),
                   (runs > 0 and per <= 50000, "BPF <= 50 us per sample")):
    print("%s %d Hz: %s" % ("ok  " if good else "FAIL", hz, what))
    ok &= good
sys.exit(0 if ok else 1)
PY
done
exit $fail
