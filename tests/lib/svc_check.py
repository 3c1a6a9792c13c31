#!/usr/bin/env python3
"""Check fleetsymd's /api/v1/symbolize answers for random addresses of one ELF file.

  svc_check.py --url URL --elf UNSTRIPPED --sym FLEETSYM_SYMBOLIZE -n N --seed S
               [--kind vaddr|offset] [--build-id ID] [--expect-pending]

Picks N random addresses inside FUNC symbols of UNSTRIPPED, asks the service in one request
(as file offsets, through UNSTRIPPED's PT_LOAD headers, with --kind offset), and compares:
  1. every frame (function, linkage name, file, line, column, inlined) with the symbol engine
     run offline on UNSTRIPPED (fleetsym-symbolize --json): must be identical;
  2. the inline chain of file:line with eu-addr2line -i on UNSTRIPPED: identical, or eu's
     lines a strict prefix of ours (eu-addr2line 0.188 drops inline callers when the line row
     starts outside the inlined subroutine; tests/lib/compare.py explains) -- counted;
  3. the innermost function with eu-addr2line -f where it is not inlined.
Prints the counts; exits 1 on any mismatch. With --expect-pending every address must come
back unknown and the answer must say pending.
"""
import argparse
import json
import random
import subprocess
import sys
import time
import urllib.request


def func_syms(path):
    out = subprocess.run(["readelf", "-sW", path], capture_output=True, text=True, check=True).stdout
    syms = set()
    for line in out.splitlines():
        f = line.split()
        if len(f) >= 8 and f[3] == "FUNC" and f[6] != "UND" and int(f[2], 0) > 0:
            syms.add((int(f[1], 16), int(f[2], 0)))
    return sorted(syms)


def loads(path):
    out = subprocess.run(["readelf", "-lW", path], capture_output=True, text=True, check=True).stdout
    segs = []
    for line in out.splitlines():
        f = line.split()
        if f and f[0] == "LOAD":
            segs.append((int(f[1], 16), int(f[2], 16), int(f[4], 16)))  # offset, vaddr, filesz
    return segs


def to_offset(segs, addr):
    for off, va, sz in segs:
        if va <= addr < va + sz:
            return addr - va + off
    return None


def ask(url, bid, kind, addrs):
    body = json.dumps({"build_id": bid, "kind": kind, "addresses": [hex(a) for a in addrs]})
    req = urllib.request.Request(url + "/api/v1/symbolize", data=body.encode(), method="POST")
    t0 = time.time()
    with urllib.request.urlopen(req, timeout=120) as r:
        ans = json.loads(r.read())
    return ans, time.time() - t0


def engine(sym, elf, addrs):
    out = subprocess.run([sym, "-e", elf, "--json"], input="".join(f"{a:#x}\n" for a in addrs),
                         capture_output=True, text=True, check=True).stdout
    return [json.loads(l) for l in out.splitlines()]


def eu_blocks(elf, addrs, flags):
    out = subprocess.run(["eu-addr2line", "-a", *flags, "-e", elf],
                         input="".join(f"{a:#x}\n" for a in addrs),
                         capture_output=True, text=True, check=True).stdout.splitlines()
    blocks, cur = [], None
    for l in out:
        if l.startswith("0x"):
            cur = []
            blocks.append(cur)
        else:
            cur.append(l)
    return blocks


def src(fr):
    if not fr.get("file"):
        return "??:0"
    return f'{fr["file"]}:{fr["line"]}'


def drop_col(line):
    """eu-addr2line -i prints a caller's column from the line table row, not the call site's
    DW_AT_call_column (its -f head line shows the latter); columns are compared with the
    engine only."""
    parts = line.rsplit(":", 2)
    return ":".join(parts[:2]) if len(parts) == 3 and parts[2].isdigit() else line


def norm(fr):
    return {k: fr.get(k) for k in ("function", "linkage_name", "file", "line", "column", "inlined")
            if fr.get(k) is not None}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--elf", required=True)
    ap.add_argument("--sym", required=True)
    ap.add_argument("--build-id", required=True)
    ap.add_argument("-n", type=int, default=500)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--kind", default="vaddr")
    ap.add_argument("--expect-pending", action="store_true")
    ap.add_argument("--no-eu", action="store_true",
                    help="compare with the engine only (C++: eu-addr2line -i's caller lines "
                         "follow its own rules, which tests/run-compare-cxx.sh covers)")
    a = ap.parse_args()

    rnd = random.Random(a.seed)
    syms = func_syms(a.elf)
    addrs = sorted({s + rnd.randrange(sz) for s, sz in (rnd.choice(syms) for _ in range(a.n))})
    query = addrs
    if a.kind == "offset":
        segs = loads(a.elf)
        query = [to_offset(segs, x) for x in addrs]
        assert None not in query
    ans, secs = ask(a.url, a.build_id, a.kind, query)
    res = ans["results"]
    if len(res) != len(addrs):
        print(f"FAIL: {len(res)} results for {len(addrs)} addresses")
        return 1
    if a.expect_pending:
        bad = [r for r in res if "unknown" not in r["frames"][0]]
        print(f"{len(res)} addresses in {secs:.2f}s: status={ans['status']} "
              f"pending={ans['pending']} reason={ans.get('reason')!r}")
        return 0 if not bad and ans["pending"] else 1
    if ans["status"] != "found":
        print(f"FAIL: status {ans['status']}: {ans.get('reason')}")
        return 1
    ref = engine(a.sym, a.elf, addrs)
    if not a.no_eu:
        eu_i = [[drop_col(l) for l in b] for b in eu_blocks(a.elf, addrs, ["-i"])]
        eu_f = eu_blocks(a.elf, addrs, ["-f", "-C"])
    exact = prefix = names = symtab_only = 0
    bad = []
    for i, addr in enumerate(addrs):
        ours = res[i]["frames"]
        if a.kind == "offset" and int(res[i].get("vaddr", "0x0"), 16) != addr:
            bad.append((addr, "vaddr", res[i].get("vaddr"), hex(addr)))
            continue
        if [norm(f) for f in ours] != [norm(f) for f in ref[i]["frames"]]:
            bad.append((addr, "engine", ours, ref[i]["frames"]))
            continue
        if a.no_eu:
            continue
        if ours[0].get("source") != "dwarf":
            symtab_only += 1  # e.g. _start from crt1.o: eu-addr2line borrows a line of
            continue          # the CU before it; compared with the engine only
        chain = [src(f) for f in ours]
        if chain == eu_i[i]:
            exact += 1
        elif len(eu_i[i]) < len(chain) and chain[:len(eu_i[i])] == eu_i[i]:
            prefix += 1
        else:
            bad.append((addr, "eu-addr2line -i", chain, eu_i[i]))
            continue
        if not ours[0].get("inlined") and ours[0].get("function"):
            if eu_f[i][0] != ours[0]["function"]:
                bad.append((addr, "eu-addr2line -f", ours[0]["function"], eu_f[i][0]))
                continue
            names += 1
    print(f"{len(addrs)} addresses ({a.kind}) in {secs:.3f}s: engine identical "
          f"{len(addrs) - len([b for b in bad if b[1] == 'engine'])}, eu-addr2line -i identical "
          f"{exact}, eu prefix (0.188 drops callers) {prefix}, names checked {names}, "
          f"no DWARF (engine only) {symtab_only}, bad {len(bad)}")
    for b in bad[:5]:
        print(f"  {b[0]:#x} vs {b[1]}:\n    ours {b[2]}\n    ref  {b[3]}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
