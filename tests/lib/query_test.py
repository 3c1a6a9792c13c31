#!/usr/bin/env python3
"""The query side of fleetsymd end to end (tests/run-query.sh builds the fixtures and starts
the server; this drives it):

  query_test.py --url URL --dir DIR --sym FLEETSYM_SYMBOLIZE

DIR holds fx (-O2 -g, non-PIE: file offsets differ from addresses), fx.debug (objcopy
--only-keep-debug: zeroed program headers), other (never uploaded) and bench, bench.debug.

1. Agent-like unsymbolized profiles (one mapping per build ID, addresses = file offsets, from
   readelf/nm/objdump: leaves deep in inline chains, callers at return address - 1 in main)
   are ingested for two windows with different hot functions, BEFORE fx's debug info exists:
   queries show fx+0x... frames, folded sums to the total, /missing ranks fx first.
2. fx.debug is uploaded (curl PUT): the next query has names, file:line and inline chains,
   each stack equal to fleetsym-symbolize on fx; go tool pprof -top and -raw read the pprof
   answer; the diff of the two windows shows the hot function moving, with both totals.
3. Numbers: 100 profiles x 1,000 samples of a bigger stack mix over bench: query latency with
   cold caches, then warm.
Prints "ok ..." lines; exits 1 after the first failed check group.
"""
import argparse
import json
import os
import random
import re
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mkpprof  # noqa: E402

PERIOD = 10101010  # 99 Hz in ns
failed = False


def ok(msg):
    print("ok   " + msg, flush=True)


def fail(msg):
    global failed
    print("FAILED: " + msg, flush=True)
    failed = True


def run(*cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, check=True, **kw).stdout


def build_id(path):
    m = re.search(r"Build ID: ([0-9a-f]+)", run("readelf", "-n", path))
    return m.group(1)


def loads(path):
    segs = []
    for line in run("readelf", "-lW", path).splitlines():
        f = line.split()
        if f and f[0] == "LOAD":
            segs.append((int(f[1], 16), int(f[2], 16), int(f[4], 16)))  # offset, vaddr, filesz
    return segs


def to_off(segs, va):
    for off, vaddr, size in segs:
        if vaddr <= va < vaddr + size:
            return va - vaddr + off
    raise ValueError("0x%x in no segment" % va)


def funcs(path):
    """name -> (address, size) of the functions in the symbol table (the dynamic one when the
    file is stripped)."""
    out = {}
    for args in (["-S"], ["-D", "-S"]):
        for line in run("nm", *args, path).splitlines():
            f = line.split()
            if len(f) == 4 and f[2] in "tTiW" and int(f[1], 16):
                out.setdefault(f[3], (int(f[0], 16), int(f[1], 16)))
        if out:
            return out
    return out


def symbolize(sym, path, vaddrs):
    out = run(sym, "-e", path, "-f", "-i", "--json", *["0x%x" % v for v in vaddrs])
    chains = {}
    for line in out.splitlines():
        a = json.loads(line)
        chains[int(a["address"], 16)] = [
            {"function": f.get("function"), "file": f.get("file"), "line": f.get("line", 0),
             "inlined": f.get("inlined", False)} for f in a["frames"]]
    return chains


def plan(d, sym):
    """Leaves (deepest inline chain in each function) and call sites in main, with their
    offsets and the engine's chains."""
    fx = os.path.join(d, "fx")
    fn = funcs(fx)
    segs = loads(fx)
    leaves = {}
    for name in ("consume", "digest", "classify"):
        lo, size = fn[name]
        ch = symbolize(sym, fx, range(lo, lo + size))
        best = max(sorted(ch), key=lambda a: (len(ch[a]), -a))
        leaves[name] = best
    insns, in_main = [], False
    for line in run("objdump", "-d", "--no-show-raw-insn", fx).splitlines():
        if re.match(r"^[0-9a-f]+ <main>:", line):
            in_main = True
        elif in_main and not line.strip():
            break
        elif in_main and re.match(r"^\s+[0-9a-f]+:", line):
            insns.append((int(line.split(":")[0], 16), line))
    calls = {}  # callee -> return address - 1, as the agent ships non-leaf frames
    for (_, text), (nxt, _) in zip(insns, insns[1:]):
        m = re.search(r"\scall\s+[0-9a-f]+ <(\w+)>", text)
        if m:
            calls.setdefault(m.group(1), nxt - 1)
    sites = {n: calls[n] for n in leaves}
    chains = symbolize(sym, fx, list(leaves.values()) + list(sites.values()))
    p = {"bid": build_id(fx), "leaf": {}, "site": {}}
    for n in leaves:
        p["leaf"][n] = {"va": leaves[n], "off": to_off(segs, leaves[n]), "chain": chains[leaves[n]]}
        p["site"][n] = {"va": sites[n], "off": to_off(segs, sites[n]), "chain": chains[sites[n]]}
    other = os.path.join(d, "other")
    p["other_bid"] = build_id(other)
    lo, _ = funcs(other)["digest"]
    p["other_off"] = to_off(loads(other), lo + 4)
    return p


def profiles(p, t0_ns, weights, n=10, per=100):
    """N profiles in [t0, t0 + n*10s) with PER samples each, drawn by WEIGHTS."""
    maps = [{"build_id": p["bid"], "filename": "/opt/app/fx"},
            {"build_id": p["other_bid"], "filename": "/opt/app/other"}]
    stacks = {n_: [[0, p["leaf"][n_]["off"]], [0, p["site"][n_]["off"]]] for n_ in p["leaf"]}
    stacks["other"] = [[1, p["other_off"]]]
    rnd = random.Random(t0_ns)
    out, counts = [], {}
    names = sorted(weights)
    for i in range(n):
        samples = []
        for _ in range(per):
            k = rnd.choices(names, [weights[x] for x in names])[0]
            counts[k] = counts.get(k, 0) + 1
            samples.append({"frames": stacks[k], "value": PERIOD, "labels": {"comm": "fx"}})
        out.append({"type": ["cpu", "nanoseconds"], "period": PERIOD,
                    "time_ns": t0_ns + i * 10_000_000_000, "duration_ns": 10_000_000_000,
                    "mappings": maps, "samples": samples})
    return out, counts


def http(url, data=None, method=None, headers=None):
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def ingest(url, prof, labels):
    body = __import__("gzip").compress(mkpprof.encode(prof))
    st, _, b = http(url + "/api/v1/ingest?" + urllib.parse.urlencode(labels), body, "POST")
    if st not in (200, 201, 202, 204):
        raise RuntimeError("ingest: %d %s" % (st, b[:300]))


def q(url, path, **params):
    st, h, b = http(url + path + "?" + urllib.parse.urlencode(params))
    if st != 200:
        raise RuntimeError("%s %s: %d %s" % (path, params, st, b[:400]))
    return h, b


def folded_lines(b):
    out = {}
    for line in b.decode().splitlines():
        path, v = line.rsplit(" ", 1)
        out[path] = out.get(path, 0) + int(v)
    return out


def expected_folded(p, counts):
    out = {}
    for k, c in counts.items():
        if k == "other":
            path = "other+0x%x" % p["other_off"]
        else:
            names = [f["function"] for f in reversed(p["site"][k]["chain"])]
            names += [f["function"] for f in reversed(p["leaf"][k]["chain"])]
            path = ";".join(names)
        out[path] = out.get(path, 0) + c * PERIOD
    return out


def walk(node, path=()):
    yield path, node
    for c in node["children"]:
        yield from walk(c, path + (c["name"],))


def before_upload(url, p, w, counts_all, total):
    h, b = q(url, "/api/v1/query", query='{service="fx"}', format="folded", **w)
    lines = folded_lines(b)
    s = sum(lines.values())
    if s != total or int(h.get("X-Fleetsym-Total", -1)) != total:
        return fail("folded sum %d, header %s, expected %d" % (s, h.get("X-Fleetsym-Total"), total))
    leafs = {"fx+0x%x" % p["leaf"][n]["off"] for n in p["leaf"]}
    sites = {"fx+0x%x" % p["site"][n]["off"] for n in p["site"]}
    for path in lines:
        fr = path.split(";")
        if fr[-1] not in leafs | {"other+0x%x" % p["other_off"]} or (len(fr) > 1 and fr[0] not in sites):
            return fail("unexpected unsymbolized stack %s" % path)
    ok("before the upload: %d folded stacks of fx+0x... frames (e.g. %s), sum %d = total"
       % (len(lines), next(iter(lines)), s))
    _, b = q(url, "/api/v1/query", query='{service="fx"}', format="json", **w)
    j = json.loads(b)
    unres = [n for _, n in walk(j["root"]) if n.get("unresolved")]
    if not unres or any(n["build_id"] not in (p["bid"], p["other_bid"]) for n in unres):
        return fail("json unresolved nodes: %s" % unres[:2])
    st = {x["build_id"]: x["status"] for x in j["build_ids"]}
    if st.get(p["bid"]) != "missing":
        return fail("json build_ids: %s" % j["build_ids"])
    ok("json: %d unresolved nodes carry their build ID; fx listed as %s" % (len(unres), st[p["bid"]]))
    _, b = q(url, "/api/v1/missing", **w)
    m = json.loads(b)["missing"]
    share = counts_all["other"] / sum(counts_all.values())
    if not m or m[0]["build_id"] != p["bid"] or abs(m[0]["share"] - (1 - share)) > 1e-6:
        return fail("/missing: %s" % m[:2])
    if "/opt/app/fx" not in m[0]["files"] or not m[0]["fix"].startswith("fleetsym-upload --server http://"):
        return fail("/missing files/fix: %s" % m[0])
    other = [x for x in m if x["build_id"] == p["other_bid"]]
    if not other or abs(other[0]["share"] - share) > 1e-6:
        return fail("/missing other: %s (share %.4f)" % (other, share))
    ok("/missing ranks fx first (%d samples, share %.2f, fix: %s), other second (share %.3f)"
       % (m[0]["samples"] // PERIOD, m[0]["share"], m[0]["fix"], other[0]["share"]))


def after_upload(url, p, w, counts_all, total, d):
    h, b = q(url, "/api/v1/query", query='{service="fx"}', format="folded", **w)
    got, want = folded_lines(b), expected_folded(p, counts_all)
    if got != want:
        return fail("folded after upload:\n  got  %s\n  want %s" % (got, want))
    ok("after the upload: folded stacks equal fleetsym-symbolize's chains on fx, e.g. %s"
       % max(got, key=got.get))
    _, b = q(url, "/api/v1/query", query='{service="fx"}', format="json", **w)
    j = json.loads(b)
    by_path = {path: n for path, n in walk(j["root"])}
    checked = 0
    for n_ in p["leaf"]:
        names = tuple(f["function"] for f in reversed(p["site"][n_]["chain"]))
        chain = list(reversed(p["leaf"][n_]["chain"]))
        for i, f in enumerate(chain):
            path = names + tuple(x["function"] for x in chain[:i + 1])
            node = by_path.get(path)
            if not node:
                return fail("json: no node %s" % (path,))
            if (node["file"], node["line"], node["inlined"]) != (f["file"], f["line"], f["inlined"]):
                return fail("json node %s: %s:%s inlined=%s, engine %s:%s inlined=%s" % (
                    path, node["file"], node["line"], node["inlined"], f["file"], f["line"],
                    f["inlined"]))
            checked += 1
    st = {x["build_id"]: x for x in j["build_ids"]}[p["bid"]]
    if st["status"] != "found" or st.get("offsets") != "rebuilt program headers":
        return fail("json build_ids after upload: %s" % st)
    ok("json: %d nodes on the hot paths have the engine's file:line and inlined flags; fx "
       "offsets mapped through %s" % (checked, st["offsets"]))
    if j["total"] != total or j["root"]["total"] != total:
        return fail("json totals %s %s != %d" % (j["total"], j["root"]["total"], total))
    # pprof through go tool pprof
    _, b = q(url, "/api/v1/query", query='{service="fx"}', format="pprof", **w)
    pb = os.path.join(d, "q.pb.gz")
    open(pb, "wb").write(b)
    env = dict(os.environ, PPROF_TMPDIR=d, HOME=d, PPROF_BINARY_PATH=os.path.join(d, "none"))
    top = subprocess.run(["go", "tool", "pprof", "-top", "-nodecount=5", pb],
                         capture_output=True, text=True, env=env)
    hot = max((k for k in counts_all if k != "other"), key=lambda k: counts_all[k])
    leaf = p["leaf"][hot]["chain"][0]["function"]
    rows = [l.replace(" (inline)", "").split() for l in top.stdout.splitlines()
            if re.match(r"^\s*[0-9.]+[a-z]*s\s", l)]
    if top.returncode or not rows or rows[0][-1] != leaf:
        return fail("go tool pprof -top (want %s first):\n%s%s" % (leaf, top.stdout, top.stderr))
    pct = float(rows[0][1].rstrip("%"))
    same = [k for k in p["leaf"] if p["leaf"][k]["chain"][0]["function"] == leaf]
    want = 100.0 * sum(counts_all.get(k, 0) for k in same) / sum(counts_all.values())
    if abs(pct - want) > 0.01:
        return fail("pprof -top flat%% %.2f, expected %.2f" % (pct, want))
    raw = subprocess.run(["go", "tool", "pprof", "-raw", pb], capture_output=True, text=True,
                         env=env).stdout
    lf = p["leaf"][hot]["chain"][0]
    needle = "%s %s:%d" % (lf["function"], lf["file"], lf["line"])
    if needle not in raw or p["bid"] not in raw:
        return fail("go tool pprof -raw lacks '%s' or the build ID:\n%s" % (needle, raw[:1500]))
    inl = [f["function"] for f in p["leaf"][hot]["chain"]]
    ok("go tool pprof -top lists %s first (flat %.2f%% = expected); -raw has '%s', the inline "
       "chain %s and the build ID" % (leaf, pct, needle, " <- ".join(inl)))


def diff_check(url, p, wa, wb, ca, cb):
    _, b = q(url, "/api/v1/diff", base='{service="fx"}', base_from=wa["from"], base_to=wa["to"],
             query='{service="fx"}', format="json", **wb)
    j = json.loads(b)
    ta, tb = sum(ca.values()) * PERIOD, sum(cb.values()) * PERIOD
    if j["base_total"] != ta or j["total"] != tb:
        return fail("diff totals %s/%s, expected %d/%d" % (j["base_total"], j["total"], ta, tb))
    deltas = {}
    for path, n in walk(j["root"]):
        for k in p["leaf"]:
            if len(path) == len(p["site"][k]["chain"]) + 1 and path[-1] == p["leaf"][k]["chain"][-1]["function"]:
                deltas[k] = n["delta"]
    for k in p["leaf"]:
        want = cb.get(k, 0) / sum(cb.values()) - ca.get(k, 0) / sum(ca.values())
        if abs(deltas.get(k, 99) - want) > 1e-5:
            return fail("diff delta of %s: %s, expected %.5f" % (k, deltas.get(k), want))
    _, b = q(url, "/api/v1/diff", base='{service="fx"}', base_from=wa["from"], base_to=wa["to"],
             query='{service="fx"}', format="folded", normalize="0", **wb)
    la = lb = 0
    for line in b.decode().splitlines():
        _, x, y = line.rsplit(" ", 2)
        la += int(x)
        lb += int(y)
    if (la, lb) != (ta, tb):
        return fail("diff folded sums %d/%d, expected %d/%d" % (la, lb, ta, tb))
    ok("diff: base total %d, new total %d; deltas of share: %s; folded columns sum to both totals"
       % (ta, tb, ", ".join("%s %+.3f" % kv for kv in sorted(deltas.items()))))
    # a traffic-only change: the same window against itself
    _, b = q(url, "/api/v1/diff", base='{service="fx"}', base_from=wa["from"], base_to=wa["to"],
             query='{service="fx",host=~".*"}', format="json", **wa)
    j = json.loads(b)
    worst = max(abs(n.get("delta", 0)) for _, n in walk(j["root"]))
    if worst > 1e-9:
        return fail("a window against itself has delta %g" % worst)


def bench(url, elf, debug, nprof=100, nsamp=1000, nstacks=4000, service="bench"):
    """NPROF profiles x NSAMP samples over ELF (a Zipf-like mix of NSTACKS stacks 8-30 deep
    over its functions), DEBUG uploaded after the ingest: query latency with cold caches (the
    results cache empty, the symbols never opened), then warm."""
    bid = build_id(elf)
    segs = loads(elf)
    text = sorted((lo, size) for _, (lo, size) in funcs(elf).items() if size > 16)
    rnd = random.Random(7)
    addrs = [to_off(segs, lo + rnd.randrange(size)) for lo, size in text
             for _ in range(max(1, 6000 // len(text)))]
    # stacks are walks down a random call tree from a few roots (so they share prefixes, as
    # real ones do), each call site picking among its callees with Zipf-like odds
    callees = {}
    stacks = set()
    for _ in range(nstacks * 4):
        path = (addrs[rnd.randrange(3)],)
        for _ in range(rnd.randint(8, 30)):
            if path not in callees:
                callees[path] = rnd.sample(addrs, rnd.randint(1, 6))
            ks = callees[path]
            path += (rnd.choices(ks, [1.0 / (i + 1) for i in range(len(ks))])[0],)
        stacks.add(path)
        if len(stacks) == nstacks:
            break
    stacks = [[[0, a] for a in reversed(path)] for path in sorted(stacks)]
    rnd.shuffle(stacks)
    weights = [1.0 / (i + 1) for i in range(len(stacks))]  # Zipf-like
    t0 = int(time.time() * 1e9) - 1800 * 10**9
    t = time.monotonic()
    for i in range(nprof):
        # aggregated per stack, as the agent ships them: NSAMP samples, fewer sample rows
        picked = {}
        for k in rnd.choices(range(len(stacks)), weights, k=nsamp):
            picked[k] = picked.get(k, 0) + 1
        samples = [{"frames": stacks[k], "value": c * PERIOD} for k, c in picked.items()]
        ingest(url, {"type": ["cpu", "nanoseconds"], "period": PERIOD,
                     "time_ns": t0 + i * 10**10, "duration_ns": 10**10,
                     "mappings": [{"build_id": bid, "filename": elf}],
                     "samples": samples}, {"service": service, "host": "h%d" % (i % 10)})
    t_ingest = time.monotonic() - t
    st, _, b = http(url + "/api/v1/debuginfo/" + bid, open(debug, "rb").read(), "PUT")
    if st not in (200, 201):
        return fail("bench upload: %d %s" % (st, b[:200]))
    w = {"query": '{service="%s"}' % service, "from": "%.3f" % (t0 / 1e9 - 1),
         "to": "%.3f" % (t0 / 1e9 + nprof * 10 + 1)}

    def timed(fmt):
        t = time.monotonic()
        _, body = q(url, "/api/v1/query", format=fmt, **w)
        return time.monotonic() - t, body

    cold, body = timed("json")
    j = json.loads(body)
    if j["total"] != nprof * nsamp * PERIOD:
        return fail("bench: total %s, expected %d" % (j["total"], nprof * nsamp * PERIOD))
    warm = [timed("json")[0] for _ in range(5)]
    warm_pp = [timed("pprof")[0] for _ in range(3)]
    warm_fold = [timed("folded")[0] for _ in range(3)]
    ok("numbers: %s: %d profiles x %d samples (ingest %.1f s over HTTP from one client), %d "
       "distinct stacks, %d distinct locations, %d unknown: json cold %.0f ms, warm %.0f ms "
       "(median of 5); pprof warm %.0f ms; folded warm %.0f ms"
       % (os.path.basename(elf), nprof, nsamp, t_ingest, len(stacks), j["locations"],
          j["unknown_locations"], cold * 1e3, statistics.median(warm) * 1e3,
          statistics.median(warm_pp) * 1e3, statistics.median(warm_fold) * 1e3))
    return j


def pending(url, p, timeout_s):
    """Against a fleetsymd whose debuginfod never answers: the query waits --request-timeout
    once for the fetch, then answers partial, fx frames unknown; so does the next one."""
    now = int(time.time()) * 10**9
    prof, counts = profiles(p, now - 600 * 10**9, {"consume": 1}, n=1, per=50)
    ingest(url, prof[0], {"service": "pending"})
    w = {"query": '{service="pending"}', "from": "now-1h", "to": "now"}
    for attempt in (1, 2):
        t = time.monotonic()
        h, b = q(url, "/api/v1/query", format="json", **w)
        secs = time.monotonic() - t
        j = json.loads(b)
        st = {x["build_id"]: x for x in j["build_ids"]}.get(p["bid"], {})
        if not j["partial"] or h.get("X-Fleetsym-Partial") != "1" or st.get("status") != "pending":
            return fail("not partial: %s %s" % (h.get("X-Fleetsym-Partial"), j["build_ids"]))
        if not timeout_s * 0.9 < secs < timeout_s + 1.5:
            return fail("a pending query took %.2f s with --request-timeout %g s" % (secs, timeout_s))
        names = [n["name"] for _, n in walk(j["root"]) if n.get("unresolved")]
        if not names or not all(x.startswith("fx+0x") for x in names):
            return fail("pending frames: %s" % names)
        ok("pending debuginfod, query %d: answered in %.2f s (--request-timeout %g s), partial, "
           "fx frames unknown (%s), reason '%s'" % (attempt, secs, timeout_s, names[0], st["reason"]))
    _, b = q(url, "/api/v1/missing", **{k: w[k] for k in ("from", "to")})
    m = json.loads(b)["missing"]
    if not m or m[0]["status"] != "pending" or m[0]["build_id"] != p["bid"]:
        return fail("/missing with a pending build ID: %s" % m)
    ok("/missing lists it as pending")
    # frames the producer named (Go's runtime/pprof does): no wait, the names stand in
    prof = {"type": ["cpu", "nanoseconds"], "period": PERIOD, "time_ns": now - 300 * 10**9,
            "mappings": [{"build_id": p["other_bid"], "filename": "/opt/app/gosvc"}],
            "samples": [{"frames": [[0, 0x1100, "main.hot"], [0, 0x1200, "main.main"]],
                         "value": 7 * PERIOD}]}
    ingest(url, prof, {"service": "named"})
    t = time.monotonic()
    h, b = q(url, "/api/v1/query", query='{service="named"}', format="folded", **{
        k: w[k] for k in ("from", "to")})
    secs = time.monotonic() - t
    if b.decode() != "main.main;main.hot %d\n" % (7 * PERIOD) or secs > timeout_s * 0.8:
        return fail("named frames of a pending build ID: %.2f s, %r" % (secs, b[:200]))
    ok("frames the producer named, build ID pending: no wait (%.2f s), names stand in (%s)"
       % (secs, b.decode().strip()))


def bad_requests(url):
    """Every malformed query is a 400 with a JSON message; the server stays up."""
    cases = [
        ("/api/v1/query", {"query": '{service="fx"'}, "selector"),
        ("/api/v1/query", {"query": "{service=~\"(a)\\1\"}"}, "selector"),
        ("/api/v1/query", {"from": "now", "to": "now-1h"}, "before"),
        ("/api/v1/query", {"from": "yesterday"}, "from"),
        ("/api/v1/query", {"format": "svgz"}, "format"),
        ("/api/v1/query", {"max_nodes": "-3"}, "max_nodes"),
        ("/api/v1/query", {"max_nodes": "12abc"}, "max_nodes"),
        ("/api/v1/query", {"query": "x" * 2000}, "longer"),
        ("/api/v1/diff", {"format": "top"}, "format"),
        ("/api/v1/diff", {"base_from": "now-1h", "base_to": "now-2h"}, "before"),
        ("/api/v1/diff", {"base": "{a=}"}, "selector"),
        ("/api/v1/missing", {"to": "garbage"}, "to"),
    ]
    for path, params, word in cases:
        st, _, b = http(url + path + "?" + urllib.parse.urlencode(params))
        try:
            msg = json.loads(b)["error"]
        except (ValueError, KeyError):
            msg = None
        if st != 400 or not msg or word not in msg:
            return fail("%s %s: %d %r (want 400 mentioning %r)" % (path, params, st, b[:200], word))
    st, _, _ = http(url + "/api/v1/query", b"x", "POST")
    if st != 405:
        return fail("POST /api/v1/query: %d, want 405" % st)
    ok("%d malformed queries: 400 with a message each (e.g. bad selector, from after to, "
       "format, max_nodes); POST is 405" % len(cases))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--dir", required=True)
    ap.add_argument("--sym", required=True)
    ap.add_argument("--no-bench", action="store_true")
    ap.add_argument("--pending", type=float, metavar="TIMEOUT_S",
                    help="only the pending check, against a server with a stuck debuginfod")
    a = ap.parse_args()
    p = plan(a.dir, a.sym)
    if a.pending:
        pending(a.url, p, a.pending)
        return 1 if failed else 0
    now = int(time.time()) * 10**9
    ta, tb = now - 3 * 3600 * 10**9, now - 2 * 3600 * 10**9
    pa, ca = profiles(p, ta, {"consume": 60, "digest": 20, "classify": 10, "other": 10})
    pb, cb = profiles(p, tb, {"consume": 15, "digest": 65, "classify": 10, "other": 10})
    for i, prof in enumerate(pa + pb):
        ingest(a.url, prof, {"service": "fx", "host": "h%d" % (i % 2)})
    wa = {"from": str(ta // 10**9 - 1), "to": str(ta // 10**9 + 200)}
    wb = {"from": str(tb // 10**9 - 1), "to": str(tb // 10**9 + 200)}
    wall = {"from": wa["from"], "to": wb["to"]}
    call = {k: ca.get(k, 0) + cb.get(k, 0) for k in set(ca) | set(cb)}
    total = sum(call.values()) * PERIOD
    ok("ingested 20 profiles (2 windows x 10, 100 samples each) before any debug info")
    bad_requests(a.url)
    before_upload(a.url, p, wall, call, total)
    if failed:
        return 1
    st = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "PUT",
                         "--data-binary", "@" + os.path.join(a.dir, "fx.debug"),
                         a.url + "/api/v1/debuginfo/" + p["bid"]], capture_output=True, text=True)
    if st.stdout != "201":
        fail("upload fx.debug: %s" % st.stdout)
        return 1
    ok("uploaded fx.debug (objcopy --only-keep-debug) with curl PUT: 201")
    after_upload(a.url, p, wall, call, total, a.dir)
    if not failed:
        diff_check(a.url, p, wa, wb, ca, cb)
    if not failed:
        _, b = q(a.url, "/api/v1/missing", **wall)
        m = json.loads(b)["missing"]
        if [x["build_id"] for x in m] != [p["other_bid"]]:
            fail("/missing after the upload: %s" % m)
        else:
            ok("/missing after the upload lists only other (%s)" % m[0]["reason"])
    if not failed and not a.no_bench:
        j = bench(a.url, os.path.join(a.dir, "bench"), os.path.join(a.dir, "bench.debug"))
        if j and j["unknown_locations"]:
            fail("bench: %d unknown locations" % j["unknown_locations"])
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
