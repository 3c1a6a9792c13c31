#!/usr/bin/env bash
# bench/agent.sh - fleetsym-agent's overhead. Not part of `make check` (root, BTF; ~3-5 min).
#
#   sudo bench/agent.sh            (env: RUNS=7 ROUNDS=6)
#
# A fixed amount of CPU-bound work (tests/data/src/agent_shares.c `rounds ROUNDS 1`: one
# thread, ~0.5 s of CPU per round, built -O2 with default flags, i.e. without frame pointers,
# and stripped, as on a host) runs RUNS times in each of four configurations, alternated run by
# run (the order rotates every repetition):
#   none      nothing sampling
#   agent19   fleetsym-agent --frequency 19, whole host (as deployed), --output; user stacks
#             unwound in BPF from .eh_frame tables
#   agent99   the same at 99 Hz
#   perf99    perf record -F 99 --call-graph dwarf -e cpu-clock on the workload (perf starts
#             it): what it takes perf to get the same stacks
# The workload reports its own CPU time (CLOCK_PROCESS_CPUTIME_ID: the kernel charges the
# sampling interrupt and the BPF program to the task they interrupt - this kernel has no
# IRQ_TIME_ACCOUNTING - and not steal time) and its wall time. The slowdown is the median of
# a configuration over the median of `none` (CPU time: the main figure on a shared machine;
# wall time is shown but moves with the other load), with a 95 % bootstrap interval and
# the median of the paired ratios (each run against the `none` run of its repetition).
# Also: the agent's CPU during the workload (schedstat of its threads, % of one CPU), its
# cpu_ms and peak RSS (maxrss_kb) from its exit stats line; perf's CPU and peak RSS (GNU time,
# minus the workload's own CPU); and, in one extra run per frequency with
# kernel.bpf_stats_enabled=1 (restored at exit), the BPF program's cost per run
# (run_time_ns / run_cnt of do_sample in bpftool; the tail-called unwinder runs inside it), i.e.
# the direct cost per sample, per unwound frame, and what it implies at that frequency; the
# agent's BPF map memory (bytes_memlock of its maps) beside its RSS, and the distinct binaries
# it built tables for; the table build time and size for libc, python3.11 and the largest
# libjvm.so installed. Targets: <= 0.3 % slowdown at 19 Hz, <= 1 % at 99 Hz, agent RSS + BPF
# map memory <= 100 MB. Output also in build/bench/agent-<date>.txt.
set -uo pipefail
export LC_ALL=C
unset DEBUGINFOD_URLS
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${BUILD:-$ROOT/build}
AGENT=$BUILD/bin/fleetsym-agent
RUNS=${RUNS:-7}
ROUNDS=${ROUNDS:-6}
die() {
	echo "bench/agent.sh: $*" >&2
	exit 1
}
[ "$(id -u)" = 0 ] || die "needs root (BPF, perf, sysctl)"
[ -r /sys/kernel/btf/vmlinux ] || die "the kernel has no BTF"
[ "$RUNS" -ge 5 ] 2>/dev/null || die "RUNS must be >= 5"
for tool in perf bpftool python3 strip "${CC:-gcc}"; do
	command -v "$tool" >/dev/null || die "$tool not installed"
done
[ -x "$AGENT" ] || make -C "$ROOT" "$AGENT" >/dev/null || die "cannot build $AGENT"

T=$(mktemp -d /tmp/fleetsym-bench-agent.XXXXXX)
PIDS=()
BPF_STATS_OLD=$(sysctl -n kernel.bpf_stats_enabled)
cleanup() {
	local p
	for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
	sysctl -qw kernel.bpf_stats_enabled="$BPF_STATS_OLD"
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
mkdir -p "$BUILD/bench" "$T/home"
OUT="$BUILD/bench/agent-$(date +%Y%m%d-%H%M%S).txt"
log() { echo "$*" | tee -a "$OUT"; }

cd "$T" || exit 1
"${CC:-gcc}" -O2 -g -pthread -Wl,--build-id \
	"$ROOT/tests/data/src/agent_shares.c" -o agent_shares.full || die "fixture build"
strip -o agent_shares agent_shares.full
# perf's build-ID cache (~/.debug) stays in $T
export HOME=$T/home
# GNU time (perf's total CPU and peak RSS), when installed
GNU_TIME=()
/usr/bin/time -f %M true >/dev/null 2>&1 &&
	GNU_TIME=(/usr/bin/time -f "perf_total_cpu_s=%U+%S perf_maxrss_kb=%M" -o ptime.txt)

log "bench/agent.sh $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(hostname): $(nproc) CPUs" \
	"($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), kernel $(uname -r)," \
	"load average $(cut -d' ' -f1-3 /proc/loadavg)"
log "workload: agent_shares rounds $ROUNDS 1 (-O2, no frame pointers, stripped, one thread)," \
	"$RUNS runs per configuration, alternated; agent whole host, --output, table unwinding;" \
	"perf record -F 99 --call-graph dwarf -e cpu-clock on the workload"

cpu_ns() { cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{s += $1} END {printf "%d\n", s}'; }
stat_field() { tr ' ' '\n' <"$1" | awk -F= -v k="$2" '$1 == k {print $2}'; }

# start_agent HZ: the agent sampling the whole host, ready (its "sampling" line) -> $APID
start_agent() {
	rm -f agent.err
	"$AGENT" --output "$T/agent.pb.gz" --frequency "$1" -v 2>agent.err &
	APID=$!
	PIDS+=("$APID")
	for _ in $(seq 300); do
		grep -q 'info: sampling' agent.err && return 0
		kill -0 "$APID" 2>/dev/null || break
		sleep 0.1
	done
	cat agent.err >&2
	die "the agent did not start"
}

# stop_agent: SIGINT, bounded wait (then SIGKILL), its stats line in agent.stats
stop_agent() {
	kill -INT "$APID" 2>/dev/null
	for _ in $(seq 300); do kill -0 "$APID" 2>/dev/null || break; sleep 0.1; done
	kill -9 "$APID" 2>/dev/null
	wait "$APID" 2>/dev/null
	grep 'fleetsym-agent: stats' agent.err | tail -1 >agent.stats
	[ -s agent.stats ] || { cat agent.err >&2; die "no stats line from the agent"; }
}

work() { timeout 300 ./agent_shares rounds "$ROUNDS" 1; }

# one_run CONFIG ITER: appends a row to results.tsv
one_run() {
	local cfg=$1 it=$2 a0 a1 t0 t1 extra=""
	case $cfg in
	none)
		work >w.out || die "workload failed"
		;;
	agent19 | agent99)
		start_agent "${cfg#agent}"
		t0=$(date +%s%N) a0=$(cpu_ns "$APID")
		work >w.out || die "workload failed"
		t1=$(date +%s%N) a1=$(cpu_ns "$APID")
		stop_agent
		extra="agent_cpu_ns=$((a1 - a0)) agent_win_ns=$((t1 - t0))"
		extra+=" agent_cpu_ms=$(stat_field agent.stats cpu_ms)"
		extra+=" agent_maxrss_kb=$(stat_field agent.stats maxrss_kb)"
		extra+=" agent_samples=$(stat_field agent.stats samples)"
		extra+=" agent_ringbuf_full=$(stat_field agent.stats ringbuf_full)"
		;;
	perf99)
		# perf starts the workload, which waits for ./go: perf's CPU is read (schedstat) from
		# then until the workload exits, i.e. without perf's start-up and post-processing
		rm -f go
		"${GNU_TIME[@]}" perf record -F 99 --call-graph dwarf -e cpu-clock -o perf.data -- \
			./agent_shares rounds "$ROUNDS" 1 go >w.out 2>perf.err &
		local top=$! ppid="" wpid=""
		PIDS+=("$top")
		for _ in $(seq 100); do
			ppid=$top
			[ ${#GNU_TIME[@]} = 0 ] || ppid=$(pgrep -x perf -P "$top")
			[ -n "$ppid" ] && wpid=$(pgrep -x agent_shares -P "$ppid") && break
			sleep 0.1
		done
		[ -n "$wpid" ] || die "the workload did not start under perf"
		t0=$(date +%s%N) a0=$(cpu_ns "$ppid")
		touch go
		while kill -0 "$wpid" 2>/dev/null; do sleep 0.05; done
		t1=$(date +%s%N) a1=$(cpu_ns "$ppid")
		wait "$top" || die "perf record failed: $(cat perf.err)"
		extra="perf_cpu_ns=$((a1 - a0)) perf_win_ns=$((t1 - t0))"
		[ ${#GNU_TIME[@]} = 0 ] || extra+=" $(tail -1 ptime.txt)"
		extra+=" perf_samples=$(sed -n 's/.*(\([0-9]*\) samples).*/\1/p' perf.err)"
		;;
	esac
	printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$cfg" "$it" "$(stat_field w.out cpu_ns)" \
		"$(stat_field w.out wall_ns)" "$extra" "$(stat_field w.out round_cpu_ns)" \
		>>results.tsv
	printf '  %-8s run %d: cpu %.3f s, wall %.3f s %s\n' "$cfg" "$it" \
		"$(stat_field w.out cpu_ns)e-9" "$(stat_field w.out wall_ns)e-9" "$extra"
}

CONFIGS=(none agent19 agent99 perf99)
: >results.tsv
work >/dev/null # warm-up
for it in $(seq "$RUNS"); do
	for k in 0 1 2 3; do
		one_run "${CONFIGS[$(((k + it) % 4))]}" "$it"
	done
done

# The BPF program's cost: one more agent run per frequency with kernel.bpf_stats_enabled=1.
: >bpf.tsv
for hz in 19 99; do
	sysctl -qw kernel.bpf_stats_enabled=1
	start_agent "$hz"
	work >/dev/null
	for f in /proc/"$APID"/fdinfo/*; do awk '/^prog_id:/ {print $2}' "$f" 2>/dev/null; done |
		sort -u >prog_ids
	for f in /proc/"$APID"/fdinfo/*; do awk '/^map_id:/ {print $2}' "$f" 2>/dev/null; done |
		sort -u >map_ids
	bpftool prog show -j >progs.json
	bpftool map show -j >maps.json
	stop_agent
	sysctl -qw kernel.bpf_stats_enabled="$BPF_STATS_OLD"
	frames=$(($(stat_field agent.stats unw_frames_table) + $(stat_field agent.stats unw_frames_fp)))
	python3 - "$hz" "$(stat_field agent.stats samples)" "$frames" \
		"$(stat_field agent.stats unw_stacks)" "$(stat_field agent.stats maxrss_kb)" \
		"$(stat_field agent.stats unw_tables)" >>bpf.tsv <<'PY'
import json, sys
ids = set(int(x) for x in open("prog_ids").read().split())
mids = set(int(x) for x in open("map_ids").read().split())
progs = [p for p in json.load(open("progs.json")) if p.get("name") == "do_sample" and p["id"] in ids]
maps = sum(m.get("bytes_memlock", 0) for m in json.load(open("maps.json")) if m["id"] in mids)
print("%s\t%d\t%d\t%s\t%s\t%s\t%s\t%d\t%s" % (
    sys.argv[1], sum(p.get("run_cnt", 0) for p in progs),
    sum(p.get("run_time_ns", 0) for p in progs), sys.argv[2], sys.argv[3], sys.argv[4],
    sys.argv[5], maps, sys.argv[6]))
PY
done

log "load average at the end $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - results.tsv bpf.tsv <<'PY' | tee -a "$OUT"
import random, statistics as st, sys

rows, rounds = {}, {}
for line in open(sys.argv[1]):
    cfg, it, cpu, wall, extra, rcpu = line.rstrip("\n").split("\t")
    kv = {}
    for w in extra.split():
        k, v = w.split("=", 1)
        kv[k] = sum(float(x) for x in v.split("+")) if v else float("nan")
    rows.setdefault(cfg, []).append(dict(it=int(it), cpu=int(cpu) / 1e9, wall=int(wall) / 1e9, **kv))
    rounds.setdefault(cfg, []).append([int(x) / 1e9 for x in rcpu.split(",") if x])
bpf = {}
for line in open(sys.argv[2]):
    hz, cnt, ns, samples, frames, stacks, rss, maps, tables = line.split()
    num = lambda x: int(x) if x.isdigit() else 0  # noqa: E731
    bpf[int(hz)] = (int(cnt), int(ns), num(samples), num(frames), num(stacks), num(rss),
                    num(maps), num(tables))

base = rows["none"]
rnd = random.Random(1)


def slowdown(cfg, key):
    med, lo, hi = boot_ratio([r[key] for r in rows[cfg]], [r[key] for r in base])
    pb = {r["it"]: r[key] for r in base}
    paired = 100.0 * (st.median(r[key] / pb[r["it"]] for r in rows[cfg] if r["it"] in pb) - 1)
    return med, lo, hi, paired


def boot_ratio(xs, bs):
    med = 100.0 * (st.median(xs) / st.median(bs) - 1)
    boot = sorted(100.0 * (st.median(rnd.choices(xs, k=len(xs))) /
                           st.median(rnd.choices(bs, k=len(bs))) - 1) for _ in range(2000))
    return med, boot[50], boot[1949]


def p10(xs):
    xs = sorted(xs)
    return xs[len(xs) // 10]


def boot_rounds(xr, br, stat=st.median):
    """STAT (median, p10) of the runs' pooled rounds; the interval resamples whole runs (the
    rounds of one run share its machine state, so they are no independent draws)."""
    pool = lambda runs: [x for r in runs for x in r]  # noqa: E731
    med = 100.0 * (stat(pool(xr)) / stat(pool(br)) - 1)
    boot = sorted(100.0 * (stat(pool(rnd.choices(xr, k=len(xr)))) /
                           stat(pool(rnd.choices(br, k=len(br)))) - 1) for _ in range(2000))
    return med, boot[50], boot[1949]


def spread(cfg, key):
    xs = [r[key] for r in rows[cfg]]
    return 100.0 * (max(xs) - min(xs)) / st.median(xs)


print()
print("Workload slowdown (median of %d runs each vs none; 95%% bootstrap interval; median of "
      "paired ratios). CPU = the workload's own CPU time (main figure), wall = its wall time."
      % len(base))
print("%-8s %8s %9s %20s %8s | %8s %9s %20s %8s" % (
    "config", "cpu_s", "slow_cpu", "cpu 95% interval", "paired", "wall_s", "slow_wall",
    "wall 95% interval", "paired"))
print("%-8s %8.3f %9s %20s %8s | %8.3f %9s %20s %8s   (run-to-run spread: cpu %.1f%%, wall "
      "%.1f%%)" % ("none", st.median(r["cpu"] for r in base), "-", "-", "-",
                   st.median(r["wall"] for r in base), "-", "-", "-", spread("none", "cpu"),
                   spread("none", "wall")))
res = {}
for cfg in ("agent19", "agent99", "perf99"):
    if cfg not in rows:
        continue
    c = slowdown(cfg, "cpu")
    w = slowdown(cfg, "wall")
    res[cfg] = c
    print("%-8s %8.3f %+8.2f%% [%+7.2f%%, %+7.2f%%] %+7.2f%% | %8.3f %+8.2f%% "
          "[%+7.2f%%, %+7.2f%%] %+7.2f%%"
          % (cfg, st.median(r["cpu"] for r in rows[cfg]), c[0], c[1], c[2], c[3],
             st.median(r["wall"] for r in rows[cfg]), w[0], w[1], w[2], w[3]))

print()
print("Per round (the CPU time of each ~0.5 s round of the workload's thread, the runs' rounds "
      "pooled, %d per configuration: a burst of interference spoils a round, not a run; median "
      "and 10th percentile (interference only adds time; the profiler's cost is in every round); "
      "the intervals resample runs)" % sum(len(r) for r in rounds["none"]))
print("%-8s %9s %9s %20s | %9s %9s %20s" % ("config", "median_s", "slow_cpu", "95% interval",
                                             "p10_s", "slow_cpu", "95% interval"))
pool = lambda cfg: [x for r in rounds[cfg] for x in r]  # noqa: E731
print("%-8s %9.4f %9s %20s | %9.4f %9s %20s" % ("none", st.median(pool("none")), "-", "-",
                                                 p10(pool("none")), "-", "-"))
rres, qres = {}, {}
for cfg in ("agent19", "agent99", "perf99"):
    if cfg in rounds:
        rres[cfg] = boot_rounds(rounds[cfg], rounds["none"])
        qres[cfg] = boot_rounds(rounds[cfg], rounds["none"], p10)
        print("%-8s %9.4f %+8.2f%% [%+7.2f%%, %+7.2f%%] | %9.4f %+8.2f%% [%+7.2f%%, %+7.2f%%]"
              % ((cfg, st.median(pool(cfg))) + rres[cfg] + (p10(pool(cfg)),) + qres[cfg]))

print()
print("Profilers' own cost (medians over the runs; peak RSS: the largest)")
print("%-8s %12s %14s %12s %12s %10s" % ("config", "cpu % of 1", "cpu_ms total", "peak RSS", "samples",
                                       "ringbuf_full"))
agent_rss = 0
for cfg in ("agent19", "agent99"):
    rs = rows.get(cfg, [])
    if not rs:
        continue
    pct = st.median(100.0 * r["agent_cpu_ns"] / r["agent_win_ns"] for r in rs)
    rss = max(r["agent_maxrss_kb"] for r in rs)
    agent_rss = max(agent_rss, rss)
    print("%-8s %11.2f%% %14.0f %9.1f MB %12.0f %10.0f   (cpu during the workload: schedstat, "
          "whole host sampled; cpu_ms: whole run incl. start-up and the pprof write)"
          % (cfg, pct, st.median(r["agent_cpu_ms"] for r in rs), rss / 1024.0,
             st.median(r["agent_samples"] for r in rs), max(r["agent_ringbuf_full"] for r in rs)))
rs = rows.get("perf99", [])
if rs:
    pct = st.median(100.0 * r["perf_cpu_ns"] / r["perf_win_ns"] for r in rs)
    tot = st.median(1000.0 * (r["perf_total_cpu_s"] - r["cpu"]) for r in rs) \
        if "perf_total_cpu_s" in rs[0] else float("nan")
    rss = max(r["perf_maxrss_kb"] for r in rs) if "perf_maxrss_kb" in rs[0] else float("nan")
    print("%-8s %11.2f%% %14.0f %9.1f MB %12.0f %10s   (perf record during the workload "
          "(schedstat), only the workload sampled; cpu_ms: GNU time minus the workload's own, "
          "incl. start-up and build-ID post-processing)"
          % ("perf99", pct, tot, rss / 1024.0, st.median(r.get("perf_samples", 0) for r in rs),
             "-"))

print()
print("BPF program do_sample with the tail-called unwinder (kernel.bpf_stats_enabled=1, one "
      "extra run per frequency)")
implied = {}
mem_total = 0
for hz, (cnt, ns, samples, frames, stacks, rss, maps, tables) in sorted(bpf.items()):
    per = ns / cnt if cnt else float("nan")
    implied[hz] = 100.0 * per * hz / 1e9
    fps = frames / stacks if stacks else float("nan")
    print("%3d Hz: %d runs, %.0f ns per run (%d samples kept by the agent; %.1f user frames "
          "unwound per stack: %.0f ns per frame, fixed costs included); at %d Hz that is "
          "%.3f%% of each sampled CPU's time" % (hz, cnt, per, samples, fps,
                                                 per / fps if fps == fps and fps else float("nan"),
                                                 hz, implied[hz]))
    mem_total = max(mem_total, rss * 1024 + maps)
    print("        agent peak RSS %.1f MB + BPF maps %.1f MB = %.1f MB; tables for %d distinct "
          "binaries" % (rss / 1024.0, maps / 1048576.0, (rss * 1024 + maps) / 1048576.0, tables))

print()
print("Targets, on the CPU-time slowdown of the run medians (then per round: median, 10th "
      "percentile): "
      "ok = the 95% interval is under the target, MISS = over it, UNRESOLVED = it straddles "
      "the target (this machine's noise is larger than the target)")


def verdict(lo, hi, target):
    return "ok" if hi <= target else "MISS" if lo > target else "UNRESOLVED"


for cfg, hz, target in (("agent19", 19, 0.3), ("agent99", 99, 1.0)):
    if cfg not in res:
        continue
    med, lo, hi, paired = res[cfg]
    rmed, rlo, rhi = rres.get(cfg, (float("nan"),) * 3)
    qmed, qlo, qhi = qres.get(cfg, (float("nan"),) * 3)
    print("%s/%s/%s slowdown at %d Hz <= %.1f%%: runs %+.2f%% [%+.2f%%, %+.2f%%] (paired "
          "%+.2f%%), rounds median %+.2f%% [%+.2f%%, %+.2f%%], p10 %+.2f%% [%+.2f%%, %+.2f%%]; "
          "run-to-run noise %.1f%%; the BPF program alone implies %.3f%%"
          % (verdict(lo, hi, target), verdict(rlo, rhi, target), verdict(qlo, qhi, target), hz,
             target, med, lo, hi, paired, rmed, rlo, rhi, qmed, qlo, qhi, spread("none", "cpu"),
             implied.get(hz, float("nan"))))
good = 0 < mem_total <= 100 << 20
print("%s agent peak RSS + BPF map memory <= 100 MB: %.1f MB" % (
    "ok" if good else "MISS", mem_total / 1048576.0))
PY
log ""
log "Unwind tables (fleetsym-agent --unwind-table: what the worker builds once per build ID)"
for f in /lib/x86_64-linux-gnu/libc.so.6 /usr/bin/python3.11 \
	$(ls -S /usr/lib/jvm/*/lib/server/libjvm.so 2>/dev/null | head -1); do
	[ -r "$f" ] && log "$("$AGENT" --unwind-table "$f" 2>&1)"
done
echo "results: $OUT"
