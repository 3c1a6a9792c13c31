#!/usr/bin/env python3
"""Compare the inline chains of fleetsym-symbolize with llvm-symbolizer and binutils addr2line.

  chains.py --ours BIN -e FILE --debug DEBUGFILE [--ours-opt ARG]... -n N --seed S
            [--min N] [--min-agree FRACTION] [--show N]

For a file where eu-addr2line is no reference (on GCC LTO builds 0.188 prints no inline frames
at all), this checks ours against two independent implementations. N random addresses (a
random byte inside a random FUNC symbol of DEBUGFILE's .symtab) go once through each of

  ours:      BIN -e FILE [--ours-opt...] -a -f -i -C
  binutils:  addr2line -e DEBUGFILE -a -f -i -C
  llvm:      llvm-symbolizer --obj=DEBUGFILE --inlining --demangle --functions=short
             --output-style=JSON

and each answer becomes a chain [(function, "file:line"), ...], innermost frame first. Where
llvm and binutils agree with each other, ours must be the same chain; where they disagree the
address is left out and counted. Exits 1 on any difference, or if fewer than --min addresses
were compared or the references agree on less than --min-agree of them (so that the check
cannot pass by excluding everything).

Normalisations, applied to every chain alike, and why:
  - Columns are dropped: binutils addr2line prints none.
  - binutils' " (discriminator N)" suffix is dropped: neither ours nor llvm print it.
  - A frame without line information is "??:0" for all three (binutils prints "??:?" and
    llvm an empty file name with line 0).
  - Our first line for an inlined innermost frame reads "NAME inlined at SITE in OUTER" (the
    eu-addr2line format): only NAME is kept; SITE is the next frame's location anyway and
    OUTER is the ELF symbol, which neither reference prints.
  - llvm-symbolizer runs with --functions=short, not linkage: with linkage names it replaces
    the outermost frame's name by the ELF symbol's (here e.g. "method_repr.lto_priv.0.cold"
    for DWARF's "method_repr"), while ours and binutils print the DWARF name. The fixture is
    C, where the short name is the whole DW_AT_name.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import symtest  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ours", required=True)
    ap.add_argument("-e", dest="elf", required=True, help="file given to ours")
    ap.add_argument("--debug", required=True, help="debug file, given to the references")
    ap.add_argument("--ours-opt", action="append", default=[])
    ap.add_argument("-n", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--min", type=int, help="fail if fewer addresses were compared")
    ap.add_argument("--min-agree", type=float, default=0.8,
                    help="fail if llvm and binutils agree on a smaller fraction")
    ap.add_argument("--show", type=int, default=10)
    args = ap.parse_args()

    addrs = symtest.random_addrs(args.debug, args.n, args.seed)
    width = symtest.elf_addr_width(args.debug)
    canon = ["-a", "-f", "-i", "-C"]
    ours = symtest.addr2line_chains(symtest.split_blocks(symtest.run_batch(
        [args.ours, "-e", args.elf] + args.ours_opt + canon, addrs, "ours"),
        addrs, width, "ours"))
    bu = symtest.addr2line_chains(symtest.split_blocks(symtest.run_batch(
        ["addr2line", "-e", args.debug] + canon, addrs, "addr2line"),
        addrs, width, "addr2line"))
    llvm = symtest.llvm_chains(symtest.run_batch(
        ["llvm-symbolizer", "--obj=" + args.debug, "--inlining", "--demangle",
         "--functions=short", "--output-style=JSON"], addrs, "llvm-symbolizer"), addrs)

    agree, excluded, diffs, inlined = 0, [], [], 0
    for k, a in enumerate(addrs):
        if llvm[k] != bu[k]:
            excluded.append(k)
            continue
        if len(llvm[k]) > 1:
            inlined += 1
        if ours[k] == llvm[k]:
            agree += 1
        else:
            diffs.append(k)

    label = " ".join(args.ours_opt) or "from DWARF"
    print("[%s] %d addresses: %d where llvm-symbolizer and addr2line agree (%d of them with "
          "inline frames), ours the same on %d, different on %d; %d excluded "
          "(llvm-symbolizer != addr2line)"
          % (label, len(addrs), len(addrs) - len(excluded), inlined, agree, len(diffs),
             len(excluded)))
    for k in diffs[:args.show]:
        print("--- 0x%x\n  references: %s\n  ours:       %s"
              % (addrs[k], symtest.fmt_chain(llvm[k]), symtest.fmt_chain(ours[k])))
    if len(diffs) > args.show:
        print("... and %d more" % (len(diffs) - args.show))
    if excluded:
        like_bu = sum(1 for k in excluded if ours[k] == bu[k])
        like_llvm = sum(1 for k in excluded if ours[k] == llvm[k])
        print("[%s] of the %d excluded, ours = addr2line on %d, = llvm-symbolizer on %d, "
              "neither on %d" % (label, len(excluded), like_bu, like_llvm,
                                 len(excluded) - like_bu - like_llvm))
    for k in excluded[:3]:
        print("--- excluded 0x%x\n  llvm:      %s\n  addr2line: %s\n  ours:      %s"
              % (addrs[k], symtest.fmt_chain(llvm[k]), symtest.fmt_chain(bu[k]),
                 symtest.fmt_chain(ours[k])))
    ok = not diffs
    if args.min is not None and len(addrs) < args.min:
        print("FAIL: only %d addresses, want >= %d" % (len(addrs), args.min))
        ok = False
    if len(addrs) - len(excluded) < args.min_agree * len(addrs):
        print("FAIL: the references agree on too few addresses (want >= %.0f%%)"
              % (100 * args.min_agree))
        ok = False
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
