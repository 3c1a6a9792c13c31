#!/usr/bin/env python3
"""A protobuf-free writer of agent-like, unsymbolized pprof files, for the query tests and
bench/query.sh.

  mkpprof.py SPEC.json OUT.pb.gz

SPEC:
  {"type": ["cpu", "nanoseconds"], "period": 10101010, "time_ns": T, "duration_ns": D,
   "mappings": [{"build_id": "ab12...", "filename": "/opt/fx"}, ...],
   "samples": [{"frames": [[MAPPING_INDEX, FILE_OFFSET], ...],   # leaf first; a third
                                                                # element names the frame
                "value": 3, "labels": {"comm": "fx"}}, ...]}

Like the agent's frames that the kernel resolved to (build ID, file offset): one Mapping per
build ID with memory_start = 0 and file_offset = 0, so each Location's address is the offset
in the file (ARCHITECTURE.md, "Addresses"). Locations carry no Lines unless a frame is named
(as Go's runtime/pprof names its own). Also importable: write() takes the same dict.
"""
import gzip
import json
import sys


_SMALL = [bytes((i,)) for i in range(128)]


def varint(v):
    if 0 <= v < 128:
        return _SMALL[v]
    v &= (1 << 64) - 1
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def key(num, wt):
    return varint(num << 3 | wt)


def f_int(num, v):
    return key(num, 0) + varint(v) if v else b""


def f_bytes(num, b):
    return key(num, 2) + varint(len(b)) + b


def f_packed(num, vals):
    body = b"".join(varint(v) for v in vals)
    return f_bytes(num, body) if vals else b""


class Strings:
    def __init__(self):
        self.tab, self.ix = [""], {"": 0}

    def __call__(self, s):
        if s not in self.ix:
            self.ix[s] = len(self.tab)
            self.tab.append(s)
        return self.ix[s]


def encode(spec):
    st = Strings()
    typ, unit = spec.get("type", ["cpu", "nanoseconds"])
    out = [f_bytes(1, f_int(1, st(typ)) + f_int(2, st(unit)))]
    locs = {}  # (mapping index, offset) -> location id
    loc_msgs, fn_msgs, fns = [], [], {}
    limits = [0] * len(spec["mappings"])
    for s in spec["samples"]:
        ids = []
        for fr in s["frames"]:
            m, off = fr[0], fr[1]
            k = (m, off)
            if k not in locs:
                locs[k] = len(locs) + 1
                line = b""
                if len(fr) > 2:
                    if fr[2] not in fns:
                        fns[fr[2]] = len(fns) + 1
                        fn_msgs.append(f_bytes(5, f_int(1, fns[fr[2]]) + f_int(2, st(fr[2]))))
                    line = f_bytes(4, f_int(1, fns[fr[2]]))
                loc_msgs.append(f_bytes(4, f_int(1, locs[k]) + f_int(2, m + 1) + f_int(3, off) +
                                        line))
                limits[m] = max(limits[m], off + 1)
            ids.append(locs[k])
        body = f_packed(1, ids) + f_packed(2, [s["value"]])
        for lk, lv in sorted(s.get("labels", {}).items()):
            if isinstance(lv, int):
                body += f_bytes(3, f_int(1, st(lk)) + f_int(3, lv))
            else:
                body += f_bytes(3, f_int(1, st(lk)) + f_int(2, st(lv)))
        out.append(f_bytes(2, body))
    for i, m in enumerate(spec["mappings"]):
        out.append(f_bytes(3, f_int(1, i + 1) + f_int(3, max(limits[i], 1)) +
                           f_int(5, st(m.get("filename", ""))) + f_int(6, st(m["build_id"]))))
    out.extend(loc_msgs)
    out.extend(fn_msgs)
    tail = f_int(9, spec.get("time_ns", 0)) + f_int(10, spec.get("duration_ns", 0))
    tail += f_bytes(11, f_int(1, st(typ)) + f_int(2, st(unit)))
    tail += f_int(12, spec.get("period", 0))
    strings = b"".join(f_bytes(6, s.encode()) for s in st.tab)
    return b"".join(out) + strings + tail


def write(spec, path):
    with open(path, "wb") as f:
        f.write(gzip.compress(encode(spec), 6))


if __name__ == "__main__":
    with open(sys.argv[1]) as f:
        write(json.load(f), sys.argv[2])
