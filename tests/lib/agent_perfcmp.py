#!/usr/bin/env python3
"""fleetsym-agent against perf: the self-function shares of one process in the agent's pprof
and in `perf report --no-children --sort symbol`, side by side (tests/run-agent-perf.sh).

  agent_perfcmp.py --profile AGENT.pb.gz --pid P --exe FULL --sym fleetsym-symbolize
                   --perf-report REPORT.txt [--design f=pct ...] [--top 10] [--max-diff 5]
                   [--min-samples N]

Agent side: every sample of pid P (all its threads); its self function is the innermost
frame: a kernel frame by its kallsyms name, a user frame by the outermost function of the
chain that fleetsym-symbolize gives for (build ID, file offset -> ELF address) in FULL (the
unstripped build of the running executable, same build ID), or in the mapped file itself for
other build IDs (libc, ld.so: their own symbol tables), else "[file]+0xoffset".
perf side: REPORT is `perf report --no-children --sort symbol --stdio -g none -n` output.

Checks: enough samples on both sides, and for every function in the union of both top-N
lists |agent - perf| <= max-diff percentage points. The design shares, where given, are
printed next to them (and the design's functions must be the top ones on both sides).
"""
import argparse
import collections
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import agent_check  # noqa: E402
import agent_pprof  # noqa: E402

KERNEL = "[kernel.kallsyms]"


def agent_shares(a):
    p = agent_pprof.load(a.profile)
    mine = [s for s in p["samples"] if s["labels"].get("pid") == a.pid]
    exe_bid = agent_check.build_id(a.exe)
    leaves = []  # (count, ("k", name) | ("u", exe_path, vaddr) | ("?", label))
    want = collections.defaultdict(set)  # exe path -> vaddrs
    loads_of, bid_of = {a.exe: agent_check.pt_loads(a.exe)}, {}
    for s in mine:
        n = agent_check.count(p, s)
        if not s["locs"]:
            leaves.append((n, ("?", "[no frames]")))
            continue
        loc = p["locations"][s["locs"][0]]
        m = p["mappings"][loc["mapping_id"]]
        if m["filename"] == KERNEL:
            leaves.append((n, ("k", loc["names"][0] if loc["names"] else "[kernel]")))
            continue
        bid, off, _ = agent_check.file_offset(p, s["locs"][0])
        path = None
        if bid and bid == exe_bid:
            path = a.exe
        elif bid and m["filename"].startswith("/") and os.path.isfile(m["filename"]):
            if m["filename"] not in bid_of:
                bid_of[m["filename"]] = agent_check.build_id(m["filename"])
            if bid_of[m["filename"]] == bid:
                path = m["filename"]
                loads_of.setdefault(path, agent_check.pt_loads(path))
        vaddr = agent_check.to_vaddr(loads_of[path], off) if path else None
        if vaddr is None:
            label = "[%s]+0x%x" % (os.path.basename(m["filename"]) or "unknown", off)
            leaves.append((n, ("?", label)))
            continue
        want[path].add(vaddr)
        leaves.append((n, ("u", path, vaddr)))
    names = {path: agent_check.symbolize(a.sym, path, vs) for path, vs in want.items()}
    out = collections.Counter()
    for n, leaf in leaves:
        if leaf[0] == "u":
            chain = names[leaf[1]].get(leaf[2], [])
            name = chain[-1][0] if chain and chain[-1][0] != "??" else \
                "[%s]+0x%x" % (os.path.basename(leaf[1]), leaf[2])
        else:
            name = leaf[1]
        out[name] += n
    return out


LINE = re.compile(r"^\s*([0-9.]+)%\s+(\d+)\s+\[(.)\]\s+(.*?)\s*(?:-\s+-\s*)?$")


def perf_shares(path):
    """{symbol: (overhead %, samples)} and the total sample count (the sum of the rows: the
    header's "# Samples: 1K" is rounded) of a perf report."""
    out, total = {}, 0
    with open(path) as f:
        for line in f:
            if line.startswith("#"):
                continue
            m = LINE.match(line)
            if m:
                pct, n, name = float(m.group(1)), int(m.group(2)), m.group(4)
                old = out.get(name, (0.0, 0))
                out[name] = (old[0] + pct, old[1] + n)
                total += n
    return out, total


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--profile", required=True)
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--exe", required=True)
    ap.add_argument("--sym", required=True)
    ap.add_argument("--perf-report", required=True)
    ap.add_argument("--design", action="append", default=[])
    ap.add_argument("--top", type=int, default=10)
    ap.add_argument("--max-diff", type=float, default=5.0)
    ap.add_argument("--min-samples", type=int, default=300)
    a = ap.parse_args()

    ag = agent_shares(a)
    an = sum(ag.values())
    pf, pn = perf_shares(a.perf_report)
    design = {k: float(v) for k, v in (d.split("=", 1) for d in a.design)}
    ash = {k: 100.0 * v / max(an, 1) for k, v in ag.items()}
    psh = {k: v[0] for k, v in pf.items()}
    atop = [k for k, _ in sorted(ash.items(), key=lambda kv: -kv[1])[:a.top]]
    ptop = [k for k, _ in sorted(psh.items(), key=lambda kv: -kv[1])[:a.top]]
    rows = list(dict.fromkeys(ptop + atop))
    rows.sort(key=lambda k: -(psh.get(k, 0) + ash.get(k, 0)))

    print("self functions of pid %d: fleetsym-agent %d samples, perf %d samples (99 Hz both)"
          % (a.pid, an, pn))
    print("%-4s %-28s %8s %8s %8s %8s %7s %7s" % ("rank", "function", "design%", "agent%",
                                                  "perf%", "diff_pp", "agent_n", "perf_n"))
    worst, bad = 0.0, []
    for i, k in enumerate(rows, 1):
        d = ash.get(k, 0.0) - psh.get(k, 0.0)
        worst = max(worst, abs(d))
        if abs(d) > a.max_diff:
            bad.append(k)
        print("%-4d %-28s %8s %8.2f %8.2f %+8.2f %7d %7d" % (
            i, k[:28], ("%.1f" % design[k]) if k in design else "-", ash.get(k, 0.0),
            psh.get(k, 0.0), d, ag.get(k, 0), pf.get(k, (0, 0))[1]))
    print("largest difference %.2f pp (budget %.1f pp) over the union of both top-%d lists"
          % (worst, a.max_diff, a.top))

    ok = True

    def check(good, what):
        nonlocal ok
        print("%s %s" % ("ok  " if good else "FAIL", what))
        ok &= bool(good)

    check(an >= a.min_samples, "agent: at least %d samples of the workload (%d)"
          % (a.min_samples, an))
    check(pn >= a.min_samples, "perf: at least %d samples of the workload (%d)"
          % (a.min_samples, pn))
    check(0.67 <= an / max(pn, 1) <= 1.5, "sample counts agree within a factor 1.5 "
          "(agent/perf %.2f)" % (an / max(pn, 1)))
    if design:
        nd = len(design)
        check(set(atop[:nd]) == set(design), "agent's top %d are the workload's functions %s"
              % (nd, atop[:nd]))
        check(set(ptop[:nd]) == set(design), "perf's top %d are the workload's functions %s"
              % (nd, ptop[:nd]))
    check(not bad, "every top-%d function within %.1f pp %s" % (a.top, a.max_diff,
                                                                bad if bad else ""))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
