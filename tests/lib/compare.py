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

Four normalisations, each named, counted and reported separately, and each accepted only
when an independent reference (binutils addr2line or llvm-symbolizer) agrees with ours. They are eu-addr2line
0.188 behaviours, not questions of what the DWARF says (llvm-symbolizer agrees with ours too):

  prefix    eu-addr2line prints fewer inline callers than the address has. src/addr2line.c's
            handle_address() passes &addr to dwfl_lineinfo(), which overwrites it with the
            start address of the line-table row, and the -i part then looks the scopes up at
            that row start, not at the address. When the row starts outside the inlined
            subroutine, eu prints the innermost frame (-f and the source line are still taken
            at the address) but none of its callers. Accepted when eu's lines are a strict
            prefix of ours and our whole chain (names and file:line; binutils prints no
            columns) equals binutils `addr2line -f -i -C` at the address.
  row-start the same mechanism when the row start lies in another inline instance: eu prints
            the callers of the row start, not of the address. Accepted when eu's lines are our
            head at the address followed by our callers at the row start, and our chain at the
            address equals binutils' or llvm-symbolizer's there.
  outer     eu-addr2line's "NAME inlined at SITE in OUTER" head line: eu names OUTER after the
            function that encloses the inlined function's definition when there is one (its
            dwarf_getscopes continues from the abstract origin, e.g. main for a lambda), else
            after the ELF symbol; ours always names the ELF symbol at the address. Accepted
            when the blocks are identical once " in OUTER" is dropped from that line.
  gap       an address with no DWARF function outside every CU's ranges (crt1.o's _start):
            libdwfl gives such gaps to the CU before them and eu prints that CU's last line
            row; ours prints ??:0. Accepted when only the source line differs, ours is ??:0
            and binutils addr2line has no line there either.

Everything else must match byte for byte.

eu-addr2line is slow on C++ (about 8 ms an address on the fixture), so with --cache-dir its
output for the same file, flags and addresses is kept and reused, e.g. by the index runs.
With --self-ref FILE the reference is ours on FILE instead (no normalisation): a consistency
check, e.g. of a stripped file with its debug file against the unstripped original.
"""
import argparse
import os
import re
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


OUTER_RE = re.compile(r"^(.* inlined (?:at|from) \S+) in .*$")


def strip_outer(block):
    """The block without the " in OUTER" part of a non-pretty inlined head line."""
    for i, l in enumerate(block[1:3], 1):
        m = OUTER_RE.match(l)
        if m:
            return block[:i] + [m.group(1)] + block[i + 1:]
    return block


def binutils_chains(args, addrs, width):
    canon = ["-a", "-f", "-i", "-C"]
    return symtest.addr2line_chains(symtest.split_blocks(
        symtest.run_batch(["addr2line", "-e", args.ref_e] + canon, addrs, "addr2line"),
        addrs, width, "addr2line"))


def ours_chains(args, addrs, width):
    canon = ["-a", "-f", "-i", "-C"]
    return symtest.addr2line_chains(run_ours(args, args.elf, canon, addrs, width,
                                             "ours (-f -i -C)"))


def llvm_linkage_chains(args, addrs):
    return symtest.llvm_chains(symtest.run_batch(
        ["llvm-symbolizer", "--obj=" + args.ref_e, "--inlining", "--demangle",
         "--functions=linkage", "--output-style=JSON"], addrs, "llvm-symbolizer"), addrs)


def accept_row_start(args, flags, addrs, width, explained):
    """Of the row-start explained blocks, those whose chain at the address (names and
    file:line) binutils addr2line or llvm-symbolizer confirms: binutils names an inlined
    operator after its caller at some addresses, llvm-symbolizer then has it right."""
    keys = sorted(explained)
    if not keys:
        return []
    at = [addrs[k] for k in keys]
    oc, bc = ours_chains(args, at, width), binutils_chains(args, at, width)
    lc = llvm_linkage_chains(args, at)
    return [k for j, k in enumerate(keys) if oc[j] == bc[j] or same_but_outer(oc[j], lc[j])]


def same_but_outer(ours, llvm):
    """Equal chains, except that llvm-symbolizer names the outermost frame after the ELF
    symbol (its --use-symbol-table default)."""
    return (len(ours) == len(llvm) and ours[:-1] == llvm[:-1] and ours and
            ours[-1][1] == llvm[-1][1])


def accept_gap(args, flags, addrs, width, ref, ours, keys):
    """Blocks differing only in the source line, ours ??:0, binutils without a line either."""
    cand = []
    for k in keys:
        o, r = ours[k], ref[k]
        d = [i for i in range(min(len(o), len(r))) if o[i] != r[i]]
        if len(o) == len(r) and len(d) == 1 and o[d[0]].endswith("??:0"):
            cand.append(k)
    if not cand:
        return []
    out = symtest.run_batch(["addr2line", "-e", args.ref_e], [addrs[k] for k in cand],
                            "addr2line").split("\n")
    return [k for j, k in enumerate(cand) if out[j].startswith("??:")]


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

    same, outer, candidates, diffs = 0, 0, [], []
    for k in range(len(addrs)):
        o, r = ours[k], ref[k]
        if o == r:
            same += 1
            continue
        if not args.self_ref:
            o, r = strip_outer(o), strip_outer(r)
            if o == r:
                outer += 1
                continue
        if not args.self_ref and "-i" in flags and len(r) < len(o) and o[:len(r)] == r:
            candidates.append(k)
        else:
            diffs.append((k, None))
    normalised, rejected = normalise(args, flags, addrs, width, ours, candidates)
    diffs = sorted(diffs + rejected)

    explained = {}
    if args.self_ref:
        print("%s: %d addresses compared, %d identical, %d different"
              % (label, len(addrs), same, len(diffs)))
    else:
        explained = explain_row_start(args, flags, addrs, width,
                                      [strip_outer(b) for b in ref],
                                      [strip_outer(b) for b in ours], diffs)
        row_ok = set(accept_row_start(args, flags, addrs, width, explained))
        rest = [k for k, _ in diffs if k not in row_ok]
        gap_ok = set(accept_gap(args, flags, addrs, width, ref, ours, rest))
        diffs = [(k, n) for k, n in diffs if k not in row_ok and k not in gap_ok]
        print("%s: %d addresses compared, %d identical, normalised: %d prefix, %d row-start, "
              "%d outer, %d gap (see compare.py); %d different"
              % (label, len(addrs), same, len(normalised), len(row_ok), outer, len(gap_ok),
                 len(diffs)))
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
