#!/usr/bin/env python3
"""Stack-level checks of table unwinding, for tests/run-agent-unwind.sh and bench/agent.sh.

  stacks PROFILE --comm C [--pid P] --elf FILE... --sym BIN [--chain F,G,...]
  stacks QUERY.json [--chain ...] [--perf ...]   (fleetsymd's /api/v1/query answer, names
                                                  from the service; --comm only for --perf)
         [--min-entry X] [--min-chain X] [--perf PERF_SCRIPT] [--min-perf-ratio X]
         [--top N] [--min-samples N]
      Symbolizes every user frame of C's samples (build ID -> one of the --elf files, file
      offset -> ELF address, fleetsym-symbolize with /usr/lib/debug for stripped Debian files)
      and prints the share of samples whose stack reaches the process entry
      (__libc_start_call_main, or a thread's start: start_thread / clone3). With --chain
      (leaf first): the share of samples with leaf F that show the whole chain in order. With
      --perf (the text of `perf script -F comm,pid,ip,sym`): perf's entry share on the same
      run, and the hottest --top stacks compared frame by frame (function names, no inlines).
"""
import argparse
import collections
import fnmatch
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import agent_pprof  # noqa: E402
from agent_check import build_id, count, file_offset, pt_loads, symbolize, to_vaddr  # noqa: E402

ENTRY = ("__libc_start_call_main", "start_thread", "__clone3", "clone3", "__GI___clone3")


def agent_stacks(a):
    p = agent_pprof.load(a.profile)
    elfs = {}
    for e in a.elf:
        try:
            elfs[build_id(e)] = (e, pt_loads(e))
        except Exception:  # noqa: BLE001 - a missing optional file
            pass
    mine = [s for s in p["samples"] if (a.comm is None or s["labels"].get("comm") == a.comm) and
            (a.pid is None or s["labels"].get("pid") in a.pid)]
    frames, want = [], collections.defaultdict(set)
    for s in mine:
        fr = []
        for lid in s["locs"]:
            loc = p["locations"][lid]
            m = p["mappings"][loc["mapping_id"]]
            if m["filename"] == "[kernel.kallsyms]":
                continue
            b, off, _ = file_offset(p, lid)
            if b in elfs:
                v = to_vaddr(elfs[b][1], off)
                want[b].add(v)
                fr.append((b, v))
            else:
                fr.append((None, "%s+0x%x" % (m["filename"] or "?", off)))
        frames.append((s, fr))
    # the physical function: the outermost of each address's inline chain
    names = {b: {v: ch[-1][0] if ch else "??" for v, ch in symbolize(a.sym, elfs[b][0], vs).items()}
             for b, vs in want.items()}
    out = []
    for s, fr in frames:
        stack = [names[b].get(v, "??") if b else v for b, v in fr]
        out.append((count(p, s), stack))
    return out


def json_stacks(path, period_ns):
    """[(samples, [names leaf first])] from fleetsymd's query answer in format=json: a tree
    from the outermost frame down, each node with its self value (ns: PERIOD_NS a sample);
    inlined nodes are left out (physical functions, as compared with perf);
    frames the service could not name (FILE+0xOFF: no debug info, no symbols) become ??."""
    import json
    j = json.load(open(path))
    out = []

    def walk(n, path_):
        name = n.get("name", "??")
        if "+0x" in name or name.startswith("0x"):
            name = "??"
        here = path_ if n.get("inlined") or n is j["root"] else path_ + [name]
        if n.get("self", 0) and n is not j["root"]:
            out.append((n["self"], list(reversed(here))))
        for c in n.get("children", []):
            walk(c, here)

    walk(j["root"], [])
    return [(max(1, round(v / period_ns)), st) for v, st in out]


def perf_stacks(path, comm):
    """[(1, [names leaf first])] from `perf script -F comm,pid,ip,sym` text. perf lists an
    address's inline chain on lines of their own (innermost first): the last line of each
    address is its physical function, like the agent's names here."""
    out, cur, keep = [], None, False

    def flush():
        if cur is not None and keep:
            names, last_ip = [], None
            for ip, name in cur:
                if ip == last_ip:
                    names[-1] = name
                else:
                    names.append(name)
                last_ip = ip
            out.append((1, names))

    for line in open(path, errors="replace"):
        line = line.rstrip("\n")
        if not line.strip():
            flush()
            cur = None
            continue
        if cur is None:
            keep = bool(line.split()) and line.split()[0] == comm
            cur = []
            continue
        parts = line.split(None, 1)
        name = parts[1] if len(parts) > 1 else "[unknown]"
        name = name.replace(" (inlined)", "").split("+0x")[0].strip()
        if name.startswith("(") or "[unknown]" in name:
            name = "??"
        cur.append((parts[0], name))
    flush()
    return out


def entry_share(stacks):
    tot = sum(n for n, _ in stacks)
    ok = sum(n for n, st in stacks if any(f in ENTRY for f in st))
    return ok, tot


def has_chain(stack, chain):
    """CHAIN (leaf first, shell patterns) is a subsequence of STACK."""
    i = 0
    for f in stack:
        if i < len(chain) and fnmatch.fnmatchcase(f, chain[i]):
            i += 1
    return i == len(chain)


def repeats_ok(stack, repeat):
    return all(stack.count(f) >= n for f, n in repeat)


def norm(stack):
    """Names only, leaf first; ?? kept."""
    return tuple(stack)


def same(s, q):
    """Frame by frame equal, ?? (no symbol on one side) matching anything."""
    return len(s) == len(q) and all(x == y or "??" in (x, y) for x, y in zip(s, q))


def cmd_stacks(a):
    st = json_stacks(a.profile, 1e9 / a.frequency) if a.profile.endswith(".json") \
        else agent_stacks(a)
    ok, tot = entry_share(st)
    rc = 0
    share = ok / tot if tot else 0
    print("agent: %d samples of %s, %.1f %% reach the entry" % (
        tot, a.comm or "pid %s" % ",".join(map(str, a.pid or [])) if not
        a.profile.endswith(".json") else a.profile, 100 * share))
    if tot < a.min_samples:
        print("FAIL: fewer than %d samples" % a.min_samples)
        rc = 1
    if a.min_entry is not None and share < a.min_entry:
        print("FAIL: entry share %.1f %% < %.1f %%" % (100 * share, 100 * a.min_entry))
        rc = 1
    if a.chain:
        chains = [c.split(",") for c in a.chain]
        rep = [(r.split("=")[0], int(r.split("=")[1])) for r in a.repeat]

        def leaf_of(s):
            return s and any(fnmatch.fnmatchcase(s[0], c[0]) for c in chains)

        def passes(s):
            return any(has_chain(s, c) for c in chains) and repeats_ok(s, rep)

        leafs = [(n, s) for n, s in st if leaf_of(s)]
        good = sum(n for n, s in leafs if passes(s))
        lt = sum(n for n, _ in leafs)
        cs = good / lt if lt else 0
        print("chain %s%s: %d of %d samples with that leaf (%.1f %%)" % (
            " | ".join(" <- ".join(c) for c in chains),
            "".join(" (%s x%d)" % r for r in rep), good, lt, 100 * cs))
        bad = collections.Counter(tuple(s) for n, s in leafs if not passes(s))
        for s, n in bad.most_common(3):
            print("  without the chain (%d): %s" % (n, " <- ".join(s)[:600]))
        if lt == 0 or cs < a.min_chain:
            print("FAIL: chain share %.1f %% < %.1f %%" % (100 * cs, 100 * a.min_chain))
            rc = 1
    if a.perf:
        ps = perf_stacks(a.perf, a.comm)
        pok, ptot = entry_share(ps)
        pshare = pok / ptot if ptot else 0
        ratio = share / pshare if pshare else 0
        print("perf --call-graph dwarf: %d samples, %.1f %% reach the entry; agent/perf = %.3f"
              % (ptot, 100 * pshare, ratio))
        if a.min_perf_ratio is not None and ptot and ratio < a.min_perf_ratio:
            print("FAIL: agent/perf entry share ratio %.3f < %.3f" % (ratio, a.min_perf_ratio))
            rc = 1
        acnt = collections.Counter()
        for n, s in st:
            acnt[norm(s)] += n
        pcnt = collections.Counter()
        for n, s in ps:
            pcnt[norm(s)] += n
        nsame = 0
        # stacks seen once may simply not be among perf's samples: the hot ones are compared
        top = [(s, n) for s, n in acnt.most_common(a.top) if n >= 2]
        for s, n in top:
            if any(same(s, q) for q in pcnt):
                nsame += 1
                continue
            # the perf stack that agrees longest: first differing frame
            def agree(q):
                return next((i for i, (x, y) in enumerate(zip(s, q))
                             if x != y and "??" not in (x, y)), min(len(s), len(q)))
            best = max(pcnt, key=lambda q: (agree(q), pcnt[q]), default=())
            k = agree(best)
            print("  %d samples differ at frame %d (agent %s / perf %s): %s" % (
                n, k, s[k] if k < len(s) else "-", best[k] if k < len(best) else "-",
                " <- ".join(s[:k + 2])))
        print("hottest %d agent stacks (2+ samples): %d also among perf's stacks frame by frame"
              % (len(top), nsame))
    return rc


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("stacks")
    s.add_argument("profile")
    s.add_argument("--comm")
    s.add_argument("--pid", type=int, action="append")
    s.add_argument("--elf", action="append", default=[])
    s.add_argument("--sym")
    s.add_argument("--chain", action="append", default=[],
                   help="repeatable: a sample passes if one chain with its leaf matches")
    s.add_argument("--repeat", action="append", default=[], help="F=N: F at least N times")
    s.add_argument("--min-entry", type=float)
    s.add_argument("--min-chain", type=float, default=0.95)
    s.add_argument("--min-samples", type=int, default=1)
    s.add_argument("--frequency", type=float, default=99, help="the agent's, for .json input")
    s.add_argument("--perf")
    s.add_argument("--min-perf-ratio", type=float)
    s.add_argument("--top", type=int, default=20)
    a = ap.parse_args()
    sys.exit(cmd_stacks(a))


if __name__ == "__main__":
    main()
