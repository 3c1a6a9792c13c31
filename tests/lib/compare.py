#!/usr/bin/env python3
"""Compare fleetsym-symbolize with eu-addr2line 0.188 on random addresses, exactly.

  compare.py --ours BIN -e FILE [--eu-e FILE] [--symtab FILE] [--ref-e FILE]
             [--ours-opt ARG]... [--self-ref FILE] -n N --seed S [--flags "-f -i -C"]
             [--min N] [--show N] [--cache-dir DIR]

Picks N distinct random addresses (a random byte inside a random FUNC symbol with a size, from
the .symtab of --symtab, default the eu-addr2line file), runs ours (-e FILE plus --ours-opt
arguments) and eu-addr2line (-e --eu-e, default FILE) once each with all the addresses on
stdin and `-a` added to FLAGS, splits both outputs into one block per address and compares the
blocks. Our -p is eu-addr2line's --pretty-print; every other flag is passed to both as is.
Exits 0 when every block is identical or normalised (below), 1 otherwise; prints the counts and
the first differing blocks side by side.

The one normalisation, counted and reported separately:
  eu-addr2line 0.188 can print fewer inline callers than the address has. The case was first
  put down to libdw (dwarf_getscopes() continuing from an inlined subroutine's abstract origin
  when the innermost scope is a DW_TAG_lexical_block nested in it), and it does show up at such
  addresses, e.g. inside glibc's inlined ifunc selectors. What makes the callers go missing,
  though, is in src/addr2line.c: handle_address() passes &addr to dwfl_lineinfo(), which
  overwrites it with the start address of the line-table row, and the -i part then looks the
  scopes up at that row start, not at the address. When the row starts outside the inlined
  subroutine, eu prints the innermost frame (-f and the source line are still taken at the
  address) but none of its callers. A block where eu's lines are a strict prefix of ours
  (ours only has more inline-caller lines at the end) is accepted only if our whole chain
  (function names and file:line, columns dropped since binutils prints none) equals binutils
  `addr2line -f -i -C` on --ref-e (default the --symtab file) at that address, and our block
  holds exactly that many frames. Everything else must match byte for byte.

Blocks that differ in other ways are not accepted. For each one the report says whether eu's
lines are what ours prints at the start of the line-table row (the same eu behaviour, with
callers that differ instead of missing), so that a difference of that kind is told at once
from a wrong answer.

eu-addr2line is slow on C++ (about 8 ms an address on the fixture), so with --cache-dir its
output for the same file, flags and addresses is kept and reused, e.g. by the index runs.
With --self-ref FILE the reference is ours on FILE instead (no normalisation): a consistency
check, e.g. of a stripped file with its debug file against the unstripped original.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import symtest  # noqa: E402


def frames_in_block(lines, flags):
    """How many frames a block of ours prints, from its shape under FLAGS."""
    if "-p" in flags:
        return len(lines)  # the address line holds the innermost frame
    body = len(lines) - 1
    return body // 2 if "-f" in flags else body


def head_lines(flags):
    """Lines of a block before the inline callers: address, [function,] source line."""
    if "-p" in flags:
        return 1
    return 3 if "-f" in flags else 2


def run_ours(args, elf, flags, addrs, width, what="ours"):
    argv = [args.ours, "-e", elf] + args.ours_opt + flags
    return symtest.split_blocks(symtest.run_batch(argv, addrs, what), addrs, width, what)


def normalise(args, flags, addrs, width, ours, candidates):
    """Split CANDIDATES (indexes where eu's block is a strict prefix of ours) into the
    accepted ones and [(index, note)] of the rejected ones."""
    if not candidates:
        return [], []
    cand = [addrs[k] for k in candidates]
    canon = ["-a", "-f", "-i", "-C"]
    oc = symtest.addr2line_chains(run_ours(args, args.elf, canon, cand, width,
                                           "ours (-f -i -C)"))
    bc = symtest.addr2line_chains(symtest.split_blocks(
        symtest.run_batch(["addr2line", "-e", args.ref_e] + canon, cand, "addr2line"),
        cand, width, "addr2line"))
    ok, bad = [], []
    for j, k in enumerate(candidates):
        nframes = frames_in_block(ours[k], flags)
        if oc[j] == bc[j] and nframes == len(oc[j]):
            ok.append(k)
        else:
            why = ("chains differ from binutils" if oc[j] != bc[j] else
                   "the block has %d frames, the chain %d" % (nframes, len(oc[j])))
            bad.append((k, "not normalised, %s:\n  ours  (-f -i -C): %s\n"
                        "  addr2line:        %s"
                        % (why, symtest.fmt_chain(oc[j]), symtest.fmt_chain(bc[j]))))
    return ok, bad


def explain_row_start(args, flags, addrs, width, eu, ours, diffs):
    """{index: row start} of the differing blocks whose eu lines are our head at the address
    followed by our callers at the start of its line-table row."""
    if not diffs or "-i" not in flags:
        return {}
    rows = symtest.line_row_starts(args.ref_e)
    starts = {k: symtest.row_start(rows, addrs[k]) for k, _ in diffs}
    keys = sorted(k for k, r in starts.items() if r is not None and r != addrs[k])
    if not keys:
        return {}
    at = [starts[k] for k in keys]
    got = run_ours(args, args.elf, flags, at, width, "ours (row starts)")
    h = head_lines(flags)
    return {k: starts[k] for j, k in enumerate(keys)
            if eu[k][:h] == ours[k][:h] and eu[k][h:] == got[j][h:]}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ours", required=True)
    ap.add_argument("-e", dest="elf", required=True, help="file given to ours")
    ap.add_argument("--eu-e", help="file given to eu-addr2line (default: -e)")
    ap.add_argument("--symtab", help="file whose .symtab the addresses come from")
    ap.add_argument("--ref-e", help="file given to binutils addr2line (default: --symtab)")
    ap.add_argument("--ours-opt", action="append", default=[])
    ap.add_argument("--self-ref", metavar="FILE",
                    help="reference is ours on FILE, not eu-addr2line; no normalisation")
    ap.add_argument("-n", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--flags", default="-f -i -C")
    ap.add_argument("--min", type=int, help="fail if fewer addresses were compared")
    ap.add_argument("--show", type=int, default=10, help="differing blocks to print")
    ap.add_argument("--cache-dir", help="keep reference outputs here and reuse them")
    args = ap.parse_args()
    args.eu_e = args.eu_e or args.elf
    args.symtab = args.symtab or args.self_ref or args.eu_e
    args.ref_e = args.ref_e or args.symtab

    flags = args.flags.split()
    if "-a" not in flags:
        flags.append("-a")
    label = "[%s]%s" % (" ".join(args.flags.split()),
                        " " + " ".join(args.ours_opt) if args.ours_opt else "")
    label += " -e %s" % os.path.basename(args.elf)
    if args.self_ref:
        ref_name = "ours on " + os.path.basename(args.self_ref)
        label += " vs " + ref_name
        ref_argv = [args.ours, "-e", args.self_ref] + flags
    else:
        ref_name = "eu-addr2line"
        if args.eu_e != args.elf:
            label += " (eu-addr2line -e %s)" % os.path.basename(args.eu_e)
        ref_argv = (["eu-addr2line", "-e", args.eu_e] +
                    ["--pretty-print" if f == "-p" else f for f in flags])

    addrs = symtest.random_addrs(args.symtab, args.n, args.seed)
    width = symtest.elf_addr_width(args.eu_e)
    ours = run_ours(args, args.elf, flags, addrs, width)
    ref = symtest.split_blocks(symtest.run_cached(ref_argv, addrs, ref_name, args.cache_dir),
                               addrs, width, ref_name)

    same, candidates, diffs = 0, [], []
    for k in range(len(addrs)):
        o, r = ours[k], ref[k]
        if o == r:
            same += 1
        elif not args.self_ref and "-i" in flags and len(r) < len(o) and o[:len(r)] == r:
            candidates.append(k)
        else:
            diffs.append((k, None))
    normalised, rejected = normalise(args, flags, addrs, width, ours, candidates)
    diffs = sorted(diffs + rejected)

    if args.self_ref:
        print("%s: %d addresses compared, %d identical, %d different"
              % (label, len(addrs), same, len(diffs)))
        explained = {}
    else:
        print("%s: %d addresses compared, %d identical, %d normalised (eu-addr2line prints "
              "fewer inline callers, ours matches binutils), %d different"
              % (label, len(addrs), same, len(normalised), len(diffs)))
        explained = explain_row_start(args, flags, addrs, width, ref, ours, diffs)
        if diffs and "-i" in flags:
            print("%s: %d of the %d differences are eu-addr2line taking the inline callers at "
                  "the start of the line-table row (ours there prints eu's lines)"
                  % (label, len(explained), len(diffs)))
    for k, note in diffs[:args.show]:
        print(symtest.side_by_side(addrs[k], ref[k], ours[k], ref_name, "ours"))
        if note:
            print("  " + note)
        if k in explained:
            print("  eu's lines = ours' first %d here + ours' callers at the line-table row "
                  "start 0x%x" % (head_lines(flags), explained[k]))
    if len(diffs) > args.show:
        print("... and %d more differing blocks" % (len(diffs) - args.show))
    if args.min is not None and len(addrs) < args.min:
        print("FAIL: only %d addresses, want >= %d" % (len(addrs), args.min))
        return 1
    return 1 if diffs else 0


if __name__ == "__main__":
    sys.exit(main())
