#!/usr/bin/env python3
"""Helper for bench/symbolize.sh (python3 stdlib only).

  addrs DEBUGFILE N SEED      print N random text addresses: a random byte inside a random
                              FUNC symbol of nonzero size (in an executable section) of the
                              file's .symtab, chosen with a fixed seed
  names FLEETSYM_A_OUT LLVM_OUT N
                              compare the innermost function name per address between
                              `fleetsym-symbolize -a -f -i -C` output and llvm-symbolizer output
  median V...                 median of the numbers given
"""
import random
import re
import statistics
import struct
import sys

SHF_EXECINSTR = 0x4
SHT_SYMTAB = 2
STT_FUNC = 2
SHN_LORESERVE = 0xFF00


def func_symbols(path):
    """(value, size) of every sized STT_FUNC in .symtab that lies in an executable section."""
    with open(path, "rb") as f:
        ehdr = f.read(64)
        if ehdr[:4] != b"\x7fELF" or ehdr[4] != 2 or ehdr[5] != 1:
            sys.exit(f"{path}: not a little-endian ELF64 file")
        shoff, = struct.unpack_from("<Q", ehdr, 0x28)
        shentsize, shnum = struct.unpack_from("<HH", ehdr, 0x3A)
        f.seek(shoff)
        raw = f.read(shentsize * shnum)
        shdrs = [struct.unpack_from("<IIQQQQIIQQ", raw, i * shentsize) for i in range(shnum)]
        syms = set()
        for sh in shdrs:
            if sh[1] != SHT_SYMTAB:
                continue
            off, size, entsize = sh[4], sh[5], sh[9] or 24
            f.seek(off)
            data = f.read(size)
            for i in range(size // entsize):
                _name, info, _other, shndx, value, sz = struct.unpack_from(
                    "<IBBHQQ", data, i * entsize)
                if (info & 0xF) != STT_FUNC or sz == 0 or shndx == 0 or shndx >= SHN_LORESERVE:
                    continue
                if shndx < len(shdrs) and shdrs[shndx][2] & SHF_EXECINSTR:
                    syms.add((value, sz))
    if not syms:
        sys.exit(f"{path}: no sized FUNC symbols in .symtab")
    return sorted(syms)


def cmd_addrs(path, n, seed):
    syms = func_symbols(path)
    rng = random.Random(int(seed))
    out = []
    for _ in range(int(n)):
        value, size = rng.choice(syms)
        out.append("0x%x" % (value + rng.randrange(size)))
    sys.stdout.write("\n".join(out) + "\n")
    print(f"{len(syms)} sized FUNC symbols in executable sections", file=sys.stderr)


ADDR_LINE = re.compile(r"^0x[0-9a-f]+$")
INLINED_HEAD = re.compile(r"^(.*?) inlined (?:at|from) .* in .*$")


def fleetsym_names(path):
    """Innermost function name per address from `-a -f -i -C` output."""
    names, expect_name = [], False
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            line = line.rstrip("\n")
            if ADDR_LINE.match(line):
                expect_name = True
                continue
            if expect_name:
                m = INLINED_HEAD.match(line)
                names.append(m.group(1) if m else line)
                expect_name = False
    return names


def llvm_names(path):
    """Innermost function name per address: first line of each blank-line separated record."""
    names, start = [], True
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line:
                start = True
                continue
            if start:
                names.append(line)
                start = False
    return names


def cmd_names(fs_path, llvm_path, n):
    n = int(n)
    a, b = fleetsym_names(fs_path), llvm_names(llvm_path)
    if len(a) != n or len(b) != n:
        print(f"ERROR records: fleetsym {len(a)}, llvm-symbolizer {len(b)}, expected {n}")
        sys.exit(1)
    same = sum(1 for x, y in zip(a, b) if x == y)
    unknown_fs = sum(1 for x in a if x == "??")
    unknown_llvm = sum(1 for x in b if x == "??")
    print(f"{same} {n} {unknown_fs} {unknown_llvm}")
    # a few examples of disagreement, for the report
    shown = 0
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y and shown < 5:
            print(f"  #{i}: fleetsym '{x[:90]}' vs llvm '{y[:90]}'", file=sys.stderr)
            shown += 1


def main(argv):
    if len(argv) < 2:
        sys.exit(__doc__)
    cmd, args = argv[1], argv[2:]
    if cmd == "addrs" and len(args) == 3:
        cmd_addrs(*args)
    elif cmd == "names" and len(args) == 3:
        cmd_names(*args)
    elif cmd == "median" and args:
        print(statistics.median(float(x) for x in args))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
