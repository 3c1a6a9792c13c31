#!/usr/bin/env python3
"""A protobuf-free reader of (gzip'd) pprof files, for the agent's tests.

  agent_pprof.py FILE            prints the profile as JSON (see load())
  agent_pprof.py --summary FILE  one line per sample: value, labels, frames

Only the wire format is needed: varints, length-delimited fields and packed repeated
varints (proto3's default for repeated scalars), which is all profile.proto uses.
"""
import gzip
import json
import sys


def varint(b, i):
    v = shift = 0
    while True:
        c = b[i]
        i += 1
        v |= (c & 0x7F) << shift
        shift += 7
        if not c & 0x80:
            return v, i


def fields(b):
    """Yields (field number, wire type, value) of one message; value is int or bytes."""
    i = 0
    while i < len(b):
        key, i = varint(b, i)
        num, wt = key >> 3, key & 7
        if wt == 0:
            v, i = varint(b, i)
        elif wt == 2:
            n, i = varint(b, i)
            v, i = b[i:i + n], i + n
        elif wt == 1:
            v, i = int.from_bytes(b[i:i + 8], "little"), i + 8
        elif wt == 5:
            v, i = int.from_bytes(b[i:i + 4], "little"), i + 4
        else:
            raise ValueError("wire type %d" % wt)
        yield num, wt, v


def s64(v):
    return v - (1 << 64) if v >= 1 << 63 else v


def ints(wt, v):
    """A repeated varint field: packed (bytes) or one value."""
    if wt == 0:
        return [v]
    out, i = [], 0
    while i < len(v):
        x, i = varint(v, i)
        out.append(x)
    return out


def msg(b, spec):
    """Decode message B by SPEC {field: (name, kind)}; kinds: int, sint, str-less repeated."""
    out = {name: ([] if kind.startswith("rep") else 0) for name, kind in spec.values()}
    for num, wt, v in fields(b):
        if num not in spec:
            continue
        name, kind = spec[num]
        if kind == "int":
            out[name] = s64(v)
        elif kind == "bool":
            out[name] = bool(v)
        elif kind == "rep_int":
            out[name].extend(s64(x) for x in ints(wt, v))
        elif kind == "rep_bytes":
            out[name].append(v)
    return out


VT = {1: ("type", "int"), 2: ("unit", "int")}
LABEL = {1: ("key", "int"), 2: ("str", "int"), 3: ("num", "int"), 4: ("num_unit", "int")}
SAMPLE = {1: ("location_id", "rep_int"), 2: ("value", "rep_int"), 3: ("label", "rep_bytes")}
MAPPING = {1: ("id", "int"), 2: ("memory_start", "int"), 3: ("memory_limit", "int"),
           4: ("file_offset", "int"), 5: ("filename", "int"), 6: ("build_id", "int"),
           7: ("has_functions", "bool")}
LINE = {1: ("function_id", "int"), 2: ("line", "int")}
LOCATION = {1: ("id", "int"), 2: ("mapping_id", "int"), 3: ("address", "int"),
            4: ("line", "rep_bytes")}
FUNCTION = {1: ("id", "int"), 2: ("name", "int"), 3: ("system_name", "int"),
            4: ("filename", "int")}
PROFILE = {1: ("sample_type", "rep_bytes"), 2: ("sample", "rep_bytes"),
           3: ("mapping", "rep_bytes"), 4: ("location", "rep_bytes"),
           5: ("function", "rep_bytes"), 6: ("string_table", "rep_bytes"),
           9: ("time_nanos", "int"), 10: ("duration_nanos", "int"),
           11: ("period_type", "rep_bytes"), 12: ("period", "int"), 13: ("comment", "rep_int")}


def u64(v):
    return v & ((1 << 64) - 1)


def load(path_or_bytes):
    """The profile with strings resolved: dict with sample_type, period, time_nanos,
    duration_nanos, comments, mappings {id: {...}}, functions {id: {...}},
    locations {id: {...}}, samples [{value, labels {k: v}, locs [ids]}]."""
    raw = path_or_bytes
    if isinstance(raw, str):
        with open(raw, "rb") as f:
            raw = f.read()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    p = msg(raw, PROFILE)
    st = [x.decode("utf-8", "replace") for x in p["string_table"]]
    S = lambda i: st[i] if 0 <= i < len(st) else "<bad string %d>" % i  # noqa: E731
    out = {
        "sample_type": [(S(v["type"]), S(v["unit"])) for v in
                        (msg(x, VT) for x in p["sample_type"])],
        "period_type": [(S(v["type"]), S(v["unit"])) for v in
                        (msg(x, VT) for x in p["period_type"])],
        "period": p["period"], "time_nanos": p["time_nanos"],
        "duration_nanos": p["duration_nanos"],
        "comments": [S(i) for i in p["comment"]],
        "mappings": {}, "functions": {}, "locations": {}, "samples": [],
    }
    for b in p["mapping"]:
        m = msg(b, MAPPING)
        for k in ("memory_start", "memory_limit", "file_offset"):
            m[k] = u64(m[k])
        m["filename"], m["build_id"] = S(m["filename"]), S(m["build_id"])
        out["mappings"][m["id"]] = m
    for b in p["function"]:
        f = msg(b, FUNCTION)
        f["name"], f["system_name"], f["filename"] = (S(f["name"]), S(f["system_name"]),
                                                      S(f["filename"]))
        out["functions"][f["id"]] = f
    for b in p["location"]:
        loc = msg(b, LOCATION)
        loc["address"] = u64(loc["address"])
        loc["line"] = [msg(x, LINE) for x in loc["line"]]
        loc["names"] = [out["functions"].get(ln["function_id"], {}).get("name", "?")
                        for ln in loc["line"]]
        out["locations"][loc["id"]] = loc
    for b in p["sample"]:
        s = msg(b, SAMPLE)
        labels = {}
        for lb in s["label"]:
            lab = msg(lb, LABEL)
            labels[S(lab["key"])] = S(lab["str"]) if lab["str"] else lab["num"]
        out["samples"].append({"value": s["value"], "labels": labels,
                               "locs": [u64(x) for x in s["location_id"]]})
    # names are resolved after all locations are known
    for loc in out["locations"].values():
        loc["names"] = [out["functions"].get(ln["function_id"], {}).get("name", "?")
                        for ln in loc["line"]]
    return out


def frame_str(p, lid):
    loc = p["locations"][lid]
    m = p["mappings"].get(loc["mapping_id"], {})
    name = ";".join(loc["names"]) if loc["names"] else "0x%x" % loc["address"]
    return "%s@%s[%s]" % (name, m.get("filename", "?") or "-", m.get("build_id", "")[:8])


def main():
    args = sys.argv[1:]
    summary = args and args[0] == "--summary"
    if summary:
        args = args[1:]
    p = load(args[0])
    if summary:
        for s in p["samples"]:
            print(s["value"], json.dumps(s["labels"], sort_keys=True),
                  " <- ".join(frame_str(p, lid) for lid in s["locs"]))
        return
    json.dump(p, sys.stdout, indent=1, sort_keys=True, default=str)
    print()


if __name__ == "__main__":
    main()
