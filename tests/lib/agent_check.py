#!/usr/bin/env python3
"""Checks on the agent's pprof output, for tests/run-agent-*.sh. Each subcommand prints its
numbers and exits 1 when a check fails.

  hot PROFILE --pid P --comm C --exe FULL --func F [--caller G] --sym BIN [--only-pid]
      The fixture's samples exist, carry pid and comm, their leaf frames sit in a mapping with
      FULL's build ID, and (file offset -> ELF address via PT_LOAD -> fleetsym-symbolize -e FULL)
      the outermost function of the leaf is F in at least --min-share of them; with --caller,
      the next frame's chain has G inlined (the return address minus 1 points into the call).
  fork PROFILE --parent P --comm C --exe FULL --func F --sym BIN --children FILE
      Samples of the short-lived children whose pids FILE lists: their leaf frames have FULL's
      build ID and symbolize to F.
  kernel PROFILE --comm C [--entry-file LIB] [--min-kernel-share F]
      C's samples carry kernel frames in the mapping [kernel.kallsyms], named with functions
      from /proc/kallsyms, with a user frame under them (in LIB: the syscall wrapper's file).
      Which functions the kernel runs inside a syscall is the host's business, not checked.
  ship DIR --expect-label K=V ... [--min N]
      Every body the test receiver stored in DIR is a gzip'd pprof that decodes, and its query
      string has the labels.
"""
import argparse
import collections
import gzip
import json
import os
import struct
import subprocess
import sys
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import agent_pprof  # noqa: E402

failed = False


def check(ok, what):
    global failed
    print("%s %s" % ("ok  " if ok else "FAIL", what))
    if not ok:
        failed = True


def build_id(path):
    out = subprocess.run(["readelf", "-nW", path], capture_output=True, text=True,
                         check=True).stdout
    for line in out.splitlines():
        if "Build ID:" in line:
            return line.split("Build ID:")[1].strip()
    return ""


def pt_loads(path):
    """[(p_offset, p_vaddr, p_filesz)] of an ELF64 little-endian file."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:4] != b"\x7fELF" or data[4] != 2:
        raise SystemExit("%s: not ELF64" % path)
    phoff, = struct.unpack_from("<Q", data, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    out = []
    for i in range(phnum):
        p_type, _, p_offset, p_vaddr, _, p_filesz = struct.unpack_from(
            "<IIQQQQ", data, phoff + i * phentsize)
        if p_type == 1:
            out.append((p_offset, p_vaddr, p_filesz))
    return out


def to_vaddr(loads, off):
    for p_offset, p_vaddr, p_filesz in loads:
        if p_offset <= off < p_offset + p_filesz:
            return off - p_offset + p_vaddr
    return None


def file_offset(p, lid):
    """(build ID, file offset) of a location: the rule of ARCHITECTURE.md's Addresses."""
    loc = p["locations"][lid]
    m = p["mappings"][loc["mapping_id"]]
    return m["build_id"], loc["address"] - m["memory_start"] + m["file_offset"], m


def symbolize(sym, exe, vaddrs):
    """{vaddr: [(function, inlined)] innermost first} through fleetsym-symbolize --json."""
    vaddrs = sorted(set(v for v in vaddrs if v is not None))
    if not vaddrs:
        return {}
    out = subprocess.run([sym, "-e", exe, "--json"], input="\n".join("0x%x" % v for v in vaddrs),
                         capture_output=True, text=True, timeout=300).stdout
    res = {}
    for v, line in zip(vaddrs, out.splitlines()):
        j = json.loads(line)
        res[v] = [(fr.get("function", "??"), fr.get("inlined", False)) for fr in j["frames"]]
    return res


def count(p, s):
    return s["value"][0] // p["period"] if p["period"] else 1


def cmd_hot(a):
    p = agent_pprof.load(a.profile)
    bid, loads = build_id(a.exe), pt_loads(a.exe)
    mine = [s for s in p["samples"] if s["labels"].get("pid") == a.pid]
    others = [s for s in p["samples"] if s["labels"].get("pid") != a.pid]
    n = sum(count(p, s) for s in mine)
    print("profile: %d samples in total, %d of pid %d; period %d ns, duration %.2f s"
          % (sum(count(p, s) for s in p["samples"]), n, a.pid, p["period"],
             p["duration_nanos"] / 1e9))
    check(p["sample_type"] == [("cpu", "nanoseconds")], "sample type cpu/nanoseconds")
    check(n >= a.min_samples, "at least %d samples of the fixture (%d)" % (a.min_samples, n))
    check(all(s["labels"].get("comm") == a.comm for s in mine), "comm label is %s" % a.comm)
    check(all("tid" in s["labels"] for s in mine), "tid label present")
    if a.only_pid:
        check(not others, "no samples of other processes with --pid (%d)" % len(others))
    leaf_bid = leaf_kernel_resolved = 0
    vaddrs, per_sample = [], []
    for s in mine:
        user = [lid for lid in s["locs"]
                if p["mappings"][p["locations"][lid]["mapping_id"]]["filename"]
                != "[kernel.kallsyms]"]
        if not user:
            per_sample.append((s, None, None))
            continue
        b, off, m = file_offset(p, user[0])
        leaf = to_vaddr(loads, off) if b == bid else None
        if b == bid:
            leaf_bid += count(p, s)
            if m["memory_start"] == 0 and m["file_offset"] == 0:
                leaf_kernel_resolved += count(p, s)
        caller = None
        if len(user) > 1:
            cb, coff, _ = file_offset(p, user[1])
            caller = to_vaddr(loads, coff) if cb == bid else None
        vaddrs += [leaf, caller]
        per_sample.append((s, leaf, caller))
    print("leaf frames with the fixture's build ID %s: %d of %d (%d resolved by the kernel "
          "at sample time)" % (bid, leaf_bid, n, leaf_kernel_resolved))
    check(n and leaf_bid >= 0.9 * n, "leaf frames carry the fixture's build ID (>= 90%)")
    syms = symbolize(a.sym, a.exe, vaddrs)
    hot = with_caller = 0
    funcs = collections.Counter()
    for s, leaf, caller in per_sample:
        chain = syms.get(leaf, [])
        outer = chain[-1][0] if chain else "?"
        funcs[outer] += count(p, s)
        if outer != a.func:
            continue
        hot += count(p, s)
        cchain = syms.get(caller, [])
        if a.caller and any(f == a.caller and inl for f, inl in cchain):
            with_caller += count(p, s)
    top = funcs.most_common(5)
    print("self functions of the fixture: %s" % ", ".join(
        "%s %.1f%%" % (f, 100.0 * c / max(n, 1)) for f, c in top))
    share = hot / max(n, 1)
    check(share >= a.min_share, "%s is the hot function: %.1f%% of samples (>= %.0f%%)"
          % (a.func, 100 * share, 100 * a.min_share))
    if a.caller:
        cs = with_caller / max(hot, 1)
        check(cs >= 0.8, "caller frame (return address - 1) symbolizes to %s inlined: %.1f%% "
              "of %s samples (>= 80%%)" % (a.caller, 100 * cs, a.func))


def cmd_fork(a):
    p = agent_pprof.load(a.profile)
    bid, loads = build_id(a.exe), pt_loads(a.exe)
    # the fixture's own children only: other processes of the same name may run on the host
    children = set(open(a.children).read().split())
    kids = [s for s in p["samples"]
            if s["labels"].get("comm") == a.comm and str(s["labels"].get("pid")) in children]
    n = sum(count(p, s) for s in kids)
    pids = set(s["labels"]["pid"] for s in kids)
    good, kernel_resolved, vaddrs, leaves = 0, 0, [], []
    for s in kids:
        user = [lid for lid in s["locs"]
                if p["mappings"][p["locations"][lid]["mapping_id"]]["filename"]
                != "[kernel.kallsyms]"]
        leaf = None
        if user:
            b, off, m = file_offset(p, user[0])
            if b == bid:
                leaf = to_vaddr(loads, off)
                if m["memory_start"] == 0 and m["file_offset"] == 0:
                    kernel_resolved += count(p, s)
        leaves.append((s, leaf))
        vaddrs.append(leaf)
    syms = symbolize(a.sym, a.exe, vaddrs)
    for s, leaf in leaves:
        chain = syms.get(leaf, [])
        if chain and chain[-1][0] == a.func:
            good += count(p, s)
    cov = good / max(n, 1)
    print("children: %d samples from %d short-lived pids; %d (%.1f%%) have a leaf frame with "
          "the fixture's build ID that symbolizes to %s; %d resolved by the kernel at sample "
          "time" % (n, len(pids), good, 100 * cov, a.func, kernel_resolved))
    check(len(pids) >= a.min_children, "samples from >= %d children (%d)"
          % (a.min_children, len(pids)))
    check(cov >= a.min_share, "coverage >= %.0f%% (%.1f%%)" % (100 * a.min_share, 100 * cov))


def kallsyms_names():
    names = set()
    with open("/proc/kallsyms") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 3:
                names.add(parts[2])
    return names


def cmd_kernel(a):
    """What the product promises, whatever this kernel calls inside a syscall: kernel frames
    named from /proc/kallsyms, sitting on the user frame that entered the kernel (for a
    syscall-heavy fixture, libc's syscall wrapper)."""
    p = agent_pprof.load(a.profile)
    ks = kallsyms_names()
    mine = [s for s in p["samples"] if s["labels"].get("comm") == a.comm]
    n = sum(count(p, s) for s in mine)
    with_k = with_user = on_entry = 0
    names, entry_files = collections.Counter(), collections.Counter()
    bad_names, unnamed = set(), 0
    for s in mine:
        kinds, files = [], []
        for lid in s["locs"]:
            loc = p["locations"][lid]
            m = p["mappings"][loc["mapping_id"]]
            k = m["filename"] == "[kernel.kallsyms]"
            kinds.append(k)
            files.append(m["filename"])
            if k:
                if not loc["names"]:
                    unnamed += 1
                for nm in loc["names"]:
                    names[nm] += count(p, s)
                    if nm not in ks:
                        bad_names.add(nm)
        if kinds and kinds[0]:
            with_k += count(p, s)
            if not all(kinds):
                with_user += count(p, s)
                entry = os.path.basename(files[kinds.index(False)])
                entry_files[entry] += count(p, s)
                if a.entry_file and entry.startswith(a.entry_file):
                    on_entry += count(p, s)
    print("%s: %d samples, %d with kernel frames (%d of them with user frames below)"
          % (a.comm, n, with_k, with_user))
    print("kernel functions (samples with the function on the stack): %s"
          % ", ".join("%s %d" % kv for kv in names.most_common(12)))
    print("user file entering the kernel: %s"
          % ", ".join("%s %d" % kv for kv in entry_files.most_common(4)))
    check(n >= a.min_samples, "at least %d samples (%d)" % (a.min_samples, n))
    check(with_k >= a.min_kernel_share * max(n, 1), "kernel frames in >= %.0f%% of samples (%.1f%%)"
          % (100 * a.min_kernel_share, 100.0 * with_k / max(n, 1)))
    check(with_user >= 0.5 * max(with_k, 1), "user frames under the kernel frames")
    check(not bad_names, "every kernel frame name is in /proc/kallsyms %s"
          % (sorted(bad_names)[:5] if bad_names else ""))
    check(unnamed == 0 or unnamed < 0.05 * sum(names.values()),
          "kernel frames named (%d unnamed)" % unnamed)
    if a.entry_file:
        check(on_entry >= 0.9 * max(with_user, 1), "kernel frames sit on %s (%d of %d)"
              % (a.entry_file, on_entry, with_user))


def cmd_ship(a):
    files = sorted(f for f in os.listdir(a.dir) if f.endswith(".body"))
    want = dict(kv.split("=", 1) for kv in a.expect_label)
    total, times, paths, bad = 0, [], set(), 0
    for f in files:
        body = open(os.path.join(a.dir, f), "rb").read()
        meta = json.load(open(os.path.join(a.dir, f[:-5] + ".json")))
        q = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(meta["path"]).query))
        ok = (meta["path"].startswith("/api/v1/ingest?") and "host" in q and
              all(q.get(k) == v for k, v in want.items()) and body[:2] == b"\x1f\x8b" and
              (not a.token or meta.get("authorization") == "Bearer " + a.token))
        if not ok:
            print("FAIL %s: POST %s, %d bytes, starts %r, authorization %r"
                  % (f, meta["path"], len(body), body[:2], meta.get("authorization")))
            bad += 1
            continue
        paths.add(meta["path"])
        p = agent_pprof.load(gzip.decompress(body))
        total += sum(count(p, s) for s in p["samples"])
        times.append((p["time_nanos"], p["duration_nanos"], meta.get("t_recv", 0)))
    check(not bad, "%d bodies: gzip'd pprof that decodes, POST %s%s"
          % (len(files), " ".join(sorted(paths)), ", bearer token" if a.token else ""))
    print("received %d profiles, %d samples" % (len(files), total))
    check(len(files) >= a.min, "at least %d profiles" % a.min)
    with open(os.path.join(a.dir, "summary.json"), "w") as f:
        json.dump({"profiles": len(files), "samples": total, "times": times}, f)


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    h = sub.add_parser("hot")
    h.add_argument("profile")
    h.add_argument("--pid", type=int, required=True)
    h.add_argument("--comm", required=True)
    h.add_argument("--exe", required=True)
    h.add_argument("--func", required=True)
    h.add_argument("--caller")
    h.add_argument("--sym", required=True)
    h.add_argument("--only-pid", action="store_true")
    h.add_argument("--min-samples", type=int, default=50)
    h.add_argument("--min-share", type=float, default=0.8)
    f = sub.add_parser("fork")
    f.add_argument("profile")
    f.add_argument("--parent", type=int, required=True)
    f.add_argument("--comm", required=True)
    f.add_argument("--exe", required=True)
    f.add_argument("--func", required=True)
    f.add_argument("--sym", required=True)
    f.add_argument("--min-children", type=int, default=10)
    f.add_argument("--children", required=True, help="file of the children's pids, one a line")
    f.add_argument("--min-share", type=float, default=0.9)
    k = sub.add_parser("kernel")
    k.add_argument("profile")
    k.add_argument("--comm", required=True)
    k.add_argument("--entry-file", help="the file of the user frame under the kernel frames")
    k.add_argument("--min-kernel-share", type=float, default=0.25)
    k.add_argument("--min-samples", type=int, default=50)
    s = sub.add_parser("ship")
    s.add_argument("dir")
    s.add_argument("--expect-label", action="append", default=[])
    s.add_argument("--token")
    s.add_argument("--min", type=int, default=1)
    a = ap.parse_args()
    {"hot": cmd_hot, "fork": cmd_fork, "kernel": cmd_kernel, "ship": cmd_ship}[a.cmd](a)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
