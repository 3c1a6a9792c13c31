"""Shared pieces of the symbolizer comparison tests (Python 3, stdlib only).

Random addresses inside FUNC symbols, batch runs of a symbolizer with all addresses on stdin,
splitting the output into one block per address, and parsing inline chains out of the output
of our tool, binutils addr2line and llvm-symbolizer so that they can be compared frame by
frame. Used by compare.py (exact comparison with eu-addr2line) and chains.py (three-way
comparison of inline chains).
"""
import bisect
import hashlib
import json
import os
import random
import re
import subprocess
import sys

TIMEOUT = 100  # seconds per reference run; each test must stay well under 2 minutes


def die(msg):
    print("error: " + msg, file=sys.stderr)
    sys.exit(2)


def elf_addr_width(path):
    """Hex digits of an address as eu-addr2line -a and ours print them (16 for ELFCLASS64)."""
    with open(path, "rb") as f:
        ident = f.read(5)
    if ident[:4] != b"\x7fELF":
        die("%s: not an ELF file" % path)
    return 16 if ident[4] == 2 else 8


def func_symbols(path):
    """(value, size) of the FUNC symbols with nonzero size defined in PATH's .symtab (its
    .dynsym if it has no .symtab), deduplicated and sorted."""
    out = subprocess.run(["readelf", "-sW", path], capture_output=True, text=True,
                         timeout=TIMEOUT, check=True).stdout
    tables = {}
    cur = None
    for line in out.splitlines():
        m = re.match(r"Symbol table '([^']+)'", line)
        if m:
            cur = tables.setdefault(m.group(1), set())
            continue
        f = line.split()
        # Num: Value Size Type Bind Vis Ndx Name
        if cur is None or len(f) < 7 or not f[0].endswith(":"):
            continue
        if f[3] != "FUNC" or f[6] in ("UND", "ABS"):
            continue
        size = int(f[2], 0)
        if size > 0:
            cur.add((int(f[1], 16), size))
    syms = tables.get(".symtab") or tables.get(".dynsym")
    if not syms:
        die("%s: no FUNC symbols with a size" % path)
    return sorted(syms)


def random_addrs(symfile, n, seed):
    """N distinct addresses, each a random byte inside a random FUNC symbol of SYMFILE."""
    syms = func_symbols(symfile)
    rng = random.Random(seed)
    total = sum(s for _, s in syms)
    n = min(n, total)
    seen, addrs = set(), []
    while len(addrs) < n:
        value, size = rng.choice(syms)
        a = value + rng.randrange(size)
        if a not in seen:
            seen.add(a)
            addrs.append(a)
    return addrs


def run_batch(argv, addrs, what, check=True):
    """Run ARGV once with every address on stdin ("0x..." one per line); return stdout."""
    stdin = "".join("0x%x\n" % a for a in addrs)
    try:
        p = subprocess.run(argv, input=stdin, capture_output=True, text=True,
                           timeout=TIMEOUT, errors="replace")
    except subprocess.TimeoutExpired:
        die("%s timed out after %ds: %s" % (what, TIMEOUT, " ".join(argv)))
    if check and p.returncode != 0:
        sys.stderr.write(p.stderr[-3000:])
        die("%s exited with %d: %s" % (what, p.returncode, " ".join(argv)))
    return p.stdout


def run_cached(argv, addrs, what, cache_dir):
    """run_batch(), its output kept in CACHE_DIR (if given) under a key made of ARGV, the
    size and mtime of every file ARGV names, and ADDRS."""
    if not cache_dir:
        return run_batch(argv, addrs, what)
    stamp = []
    for a in argv:
        if os.path.isfile(a):
            st = os.stat(a)
            stamp.append([os.path.abspath(a), st.st_size, st.st_mtime_ns])
    key = hashlib.sha256(json.dumps([argv, stamp, addrs]).encode()).hexdigest()
    path = os.path.join(cache_dir, key + ".out")
    if os.path.exists(path):
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    out = run_batch(argv, addrs, what)
    os.makedirs(cache_dir, exist_ok=True)
    with open(path + ".tmp", "w", encoding="utf-8", errors="replace") as f:
        f.write(out)
    os.replace(path + ".tmp", path)
    return out


def split_blocks(text, addrs, width, what):
    """Split -a output into one list of lines per address. A block starts with the line
    "0x<addr padded to WIDTH>" (or "0x...: " with pretty-print) of the next expected address,
    so nothing in a block can be mistaken for the start of the next one."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    heads = ["0x%0*x" % (width, a) for a in addrs]
    blocks, i = [], 0
    for k, head in enumerate(heads):
        if i >= len(lines) or not (lines[i] == head or lines[i].startswith(head + ":")):
            got = lines[i] if i < len(lines) else "<end of output>"
            die("%s: cannot split output: expected %s (address #%d), got %r"
                % (what, head, k, got))
        j = i + 1
        nxt = heads[k + 1] if k + 1 < len(heads) else None
        while j < len(lines) and not (nxt and (lines[j] == nxt or
                                               lines[j].startswith(nxt + ":"))):
            j += 1
        blocks.append(lines[i:j])
        i = j
    if i != len(lines):
        die("%s: %d lines of output after the last address" % (what, len(lines) - i))
    return blocks


LOC_RE = re.compile(r"^(.*?):(\d+|\?)(?::(\d+))?(?: \(discriminator \d+\))?$")


def loc_noncol(loc):
    """'file:line[:col][ (discriminator n)]' -> 'file:line' ('??:?' of binutils -> '??:0')."""
    m = LOC_RE.match(loc)
    if not m:
        return loc
    line = m.group(2)
    if m.group(1) == "??":
        return "??:0"
    return "%s:%s" % (m.group(1), "0" if line == "?" else line)


def addr2line_chains(blocks):
    """Chains [(function, 'file:line'), ...] innermost first from -a -f -i blocks of our
    tool, eu-addr2line or binutils addr2line (not pretty-printed). The first function line
    of ours and eu's reads "NAME inlined at SITE in OUTER" when the innermost frame is inlined;
    only NAME is kept, the caller frames are on the following lines anyway."""
    chains = []
    for b in blocks:
        body = b[1:]
        chain = []
        for k in range(0, len(body) - 1, 2):
            name = body[k]
            if k == 0:
                name = re.sub(r" inlined( (at|from) .*)? in .*$", "", name)
            chain.append((name, loc_noncol(body[k + 1])))
        if len(body) % 2:
            chain.append(("<odd line>", body[-1]))
        chains.append(chain)
    return chains


def llvm_chains(text, addrs):
    """Chains from llvm-symbolizer --output-style=JSON (one JSON object per line)."""
    chains = []
    objs = [json.loads(l) for l in text.splitlines() if l.strip()]
    if len(objs) != len(addrs):
        die("llvm-symbolizer: %d answers for %d addresses" % (len(objs), len(addrs)))
    for a, o in zip(addrs, objs):
        if int(o.get("Address", "0x0"), 16) != a:
            die("llvm-symbolizer: answer for %s where 0x%x was expected" % (o.get("Address"), a))
        chain = []
        for fr in o.get("Symbol", []):
            name = fr.get("FunctionName") or "??"
            file = fr.get("FileName") or "??"
            line = fr.get("Line", 0) if file != "??" else 0
            chain.append((name, "%s:%d" % (file, line)))
        chains.append(chain)
    return chains


def line_row_starts(path):
    """Sorted (address, is_end_sequence) of every row of PATH's line tables, from objdump."""
    p = subprocess.run(["objdump", "--dwarf=decodedline", path], capture_output=True,
                       text=True, timeout=TIMEOUT, errors="replace")
    rows = set()
    for line in p.stdout.splitlines():
        m = re.search(r"\s(-|\d+)\s+(0x[0-9a-f]+)(\s|$)", line)
        if m:
            rows.add((int(m.group(2), 16), m.group(1) == "-"))
    return sorted(rows)


def row_start(rows, addr):
    """Address of the line-table row holding ADDR, as dwfl_lineinfo() reports it; None."""
    k = bisect.bisect_right(rows, (addr, True)) - 1
    # Where a row and an end_sequence share an address, libdw sorts the end_sequence first,
    # so the row wins: (a, False) sorts before (a, True) here, hence the step back.
    if k > 0 and rows[k][1] and rows[k - 1] == (rows[k][0], False):
        k -= 1
    if k < 0 or rows[k][1]:
        return None
    return rows[k][0]


def fmt_chain(chain):
    return " <- ".join("%s @ %s" % fr for fr in chain) or "(empty)"


def side_by_side(addr, left, right, lname, rname):
    """The two blocks for ADDR, line by line, '!' marking the lines that differ."""
    out = ["--- 0x%x" % addr]
    w = min(max([len(lname)] + [len(l) for l in left]), 90)
    out.append("  %-*s | %s" % (w, lname, rname))
    for k in range(max(len(left), len(right))):
        l = left[k] if k < len(left) else ""
        r = right[k] if k < len(right) else ""
        out.append("%s %-*s | %s" % ("!" if l != r or k >= len(left) or k >= len(right)
                                       else " ", w, l, r))
    return "\n".join(out)
