#!/usr/bin/env python3
"""Writes an unsymbolized pprof of demo/workload.c in the agent's layout, for the web UI test.

  webui_pprof.py --app APP --lib LIB --sym FLEETSYM-SYMBOLIZE --variant v1|v2 --time UNIX OUT

APP and LIB are the unstripped builds (their symbols pick the addresses; the profile itself
carries only build IDs and file offsets, as fleetsym-agent's does): one mapping per build ID
with memory_start = file_offset = 0, so each location's address is the file offset
(ARCHITECTURE.md "Addresses"); non-leaf frames point inside their call, like return
addresses minus one. The leaf of the hot stack is an address of hash_block() that lies in the
inlined mix(), found with fleetsym-symbolize. "v2" doubles hash_block's samples, as the
workload's v2 does.
"""
import argparse
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mkpprof  # noqa: E402  (the one pprof writer of the tests)


def elf_info(path):
    """Build ID, PT_LOAD (vaddr, offset, filesz) list, and {function: (vaddr, size)}."""
    notes = subprocess.run(["readelf", "-nW", path], capture_output=True, text=True).stdout
    bid = re.search(r"Build ID: ([0-9a-f]+)", notes).group(1)
    loads = []
    for line in subprocess.run(["readelf", "-lW", path], capture_output=True,
                               text=True).stdout.splitlines():
        p = line.split()
        if p and p[0] == "LOAD":
            loads.append((int(p[2], 16), int(p[1], 16), int(p[4], 16)))
    syms = {}
    for line in subprocess.run(["readelf", "-sW", path], capture_output=True,
                               text=True).stdout.splitlines():
        p = line.split()
        if len(p) >= 8 and p[3] == "FUNC" and p[2].isdigit() and int(p[2]) > 0:
            syms[p[7].split("@")[0]] = (int(p[1], 16), int(p[2]))
    return bid, loads, syms


def file_off(loads, vaddr):
    for va, off, size in loads:
        if va <= vaddr < va + size:
            return vaddr - va + off
    raise ValueError("address 0x%x in no PT_LOAD" % vaddr)


def inlined_addr(sym, app, func, inner):
    """An address of FUNC whose innermost frame is the inlined INNER (fleetsym-symbolize -f -i
    prints, per address, the address and then function and file:line lines, innermost first)."""
    va, size = func
    addrs = ["0x%x" % a for a in range(va, va + size)]
    out = subprocess.run([sym, "-e", app, "-f", "-i", "-a"], input="\n".join(addrs) + "\n",
                         capture_output=True, text=True).stdout.splitlines()
    for i, line in enumerate(out):
        if line.startswith("0x") and i + 1 < len(out) and out[i + 1].split()[0] == inner:
            return int(line, 16)
    raise ValueError("no address of the function is in the inlined %s" % inner)


def call_site(app, caller, callee):
    """An address inside the call of CALLEE in CALLER (objdump -d): what a return address
    minus one points to."""
    va, size = caller
    dis = subprocess.run(["objdump", "-d", "--no-show-raw-insn", "--start-address=%#x" % va,
                          "--stop-address=%#x" % (va + size), app],
                         capture_output=True, text=True).stdout
    m = re.search(r"^\s*([0-9a-f]+):\s+call\s+[0-9a-f]+ <%s(@plt)?>" % re.escape(callee), dis, re.M)
    if not m:
        raise ValueError("no call of %s in the caller" % callee)
    return int(m.group(1), 16) + 1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--app", required=True)
    ap.add_argument("--lib", required=True)
    ap.add_argument("--sym", required=True)
    ap.add_argument("--variant", default="v1")
    ap.add_argument("--time", type=int, required=True)
    ap.add_argument("--app-name", default="/opt/demo/demo-workload")
    ap.add_argument("--lib-name", default="/opt/demo/libdemocodec.so")
    ap.add_argument("out")
    a = ap.parse_args()

    app_bid, app_loads, app_syms = elf_info(a.app)
    lib_bid, lib_loads, lib_syms = elf_info(a.lib)
    period = 10_101_010  # 99 Hz

    def mid(syms, name):
        va, size = syms[name]
        return va + size // 2

    hot = inlined_addr(a.sym, a.app, app_syms["hash_block"], "mix")
    A = lambda va: (0, file_off(app_loads, va))
    L = lambda va: (1, file_off(lib_loads, va))
    site = lambda caller, callee: A(call_site(a.app, app_syms[caller], callee))
    main_ = site("main", "handle_request")
    caller = lambda callee: [A(call_site(a.app, app_syms["handle_request"], callee)), main_]
    stacks = [
        (1000 if a.variant == "v2" else 500, [A(hot)] + caller("hash_block")),
        (350, [A(mid(app_syms, "parse_request"))] + caller("parse_request")),
        (140, [L(mid(lib_syms, "codec_compress")), site("compress_reply", "codec_compress")] +
         caller("compress_reply")),
        (10, [A(mid(app_syms, "log_line"))] + caller("log_line")),
    ]

    mkpprof.write({
        "type": ["cpu", "nanoseconds"], "period": period,
        "time_ns": a.time * 1_000_000_000, "duration_ns": 10_000_000_000,
        "mappings": [{"build_id": app_bid, "filename": a.app_name},
                     {"build_id": lib_bid, "filename": a.lib_name}],
        "samples": [{"frames": [list(f) for f in frames], "value": count * period,
                     "labels": {"pid": 4242, "comm": "demo-workload"}}
                    for count, frames in stacks],
    }, a.out)
    print("%s: %s %s (build ID %s), %s (build ID %s), hot 0x%x" % (
        a.out, a.variant, os.path.basename(a.app), app_bid, os.path.basename(a.lib), lib_bid, hot))


if __name__ == "__main__":
    main()
