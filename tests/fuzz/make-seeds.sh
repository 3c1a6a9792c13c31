#!/usr/bin/env bash
# Writes the seed corpora of tests/fuzz/<target>/ from the repository's test sources (run by
# hand when a format changes; the seeds are committed, kept small). Needs gcc, objcopy, strip,
# python3 and a built fleetsym-symbolize (FLEETSYM_SYMBOLIZE, default build/bin/).
set -euo pipefail
cd "$(dirname "$0")/../.."
top=$PWD
sym=${FLEETSYM_SYMBOLIZE:-$top/build/bin/fleetsym-symbolize}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
f=tests/fuzz

# selector: selectors and times as URLs carry them
mkdir -p $f/fuzz_selector
i=0
while IFS= read -r line; do
	printf '%s' "$line" >$f/fuzz_selector/seed$((i++))
done <<'SEL'
{service="checkout", version=~"v2.*",host!="x",env!~"dev|test"}
{a='b\'c',b=`raw\`,c!~"(x|y)+[a-z]{1,3}"}
{}
{comm=~".*java.*",thread_name!=""}
2024-06-01T14:30:00.123+02:00
1717252200.5
now-15m
now+1h30m
SEL

# pprof: agent-like profiles (tests/lib/mkpprof.py), gzip'd and raw, and one with names
mkdir -p $f/fuzz_pprof
cat >"$tmp/a.json" <<'J'
{"type": ["cpu", "nanoseconds"], "period": 10101010, "time_ns": 1717252200000000000,
 "duration_ns": 10000000000,
 "mappings": [{"build_id": "0123456789abcdef0123456789abcdef01234567", "filename": "/opt/fx"},
              {"build_id": "", "filename": "[kernel.kallsyms]"}],
 "samples": [{"frames": [[0, 4096], [0, 8192], [1, 65536]], "value": 3, "labels": {"comm": "fx"}},
             {"frames": [[0, 4100, "main"], [0, 8192]], "value": 1, "labels": {"comm": "fx", "tid": "7"}}]}
J
python3 tests/lib/mkpprof.py "$tmp/a.json" $f/fuzz_pprof/agent.pb.gz
gzip -dc $f/fuzz_pprof/agent.pb.gz >$f/fuzz_pprof/agent.pb

# ELF files: a fixture with DWARF and inlining, stripped, debug-only and compressed
gcc -g -O2 -Wl,--build-id -o "$tmp/inline" tests/data/src/inline_c.c
strip -o "$tmp/stripped" "$tmp/inline"
objcopy --only-keep-debug --compress-debug-sections=zlib "$tmp/inline" "$tmp/debug.z"
for t in fuzz_elf fuzz_extract fuzz_elfid fuzz_dwarf; do mkdir -p $f/$t; done
cp "$tmp/inline" $f/fuzz_elf/inline
cp "$tmp/debug.z" $f/fuzz_elf/debug-zlib
cp "$tmp/stripped" $f/fuzz_elfid/stripped
cp "$tmp/inline" $f/fuzz_extract/inline
cp "$tmp/inline" $f/fuzz_dwarf/inline
head -c 64 "$tmp/inline" >$f/fuzz_elfid/header-only

# the symbol index of that fixture, as fleetsym-symbolize builds it
mkdir -p $f/fuzz_symindex "$tmp/idx"
"$sym" --exe "$tmp/inline" --index-dir "$tmp/idx" 0x1000 >/dev/null
find "$tmp/idx" -type f -exec cp {} $f/fuzz_symindex/inline.idx \;

# /proc/PID/maps: this shell's own, and odd lines
mkdir -p $f/fuzz_procmaps
sed 's/ \+/ /' /proc/self/maps | head -40 >$f/fuzz_procmaps/self
printf '%s\n' '7f0000000000-7f0000001000 r-xp 00000000 00:00 0 ' \
	'7f0000001000-7f0000002000 r-xp 00001000 fd:01 1234 /memfd:jit (deleted)' \
	'7f0000002000-7f0000003000 r-xp 00000000 00:00 0 [vdso]' \
	'ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0 [vsyscall]' >$f/fuzz_procmaps/odd
du -sh $f

# fuzz_httpd: byte 0 picks the request (fuzz_httpd.c's KINDS), then QUERY '\n' BODY
h=$f/fuzz_httpd
mkdir -p $h
bid=$(readelf -n $f/fuzz_elf/inline | sed -n 's/.*Build ID: //p')
addr=$(nm $f/fuzz_elf/inline | awk '$3 == "classify" {print $1}')
printf '\000\n{"build_id":"%s","addresses":["0x%s","0x1000","0x0"]}' "$bid" "$addr" >$h/symbolize
printf '\000\n{"build_id":"%s","kind":"offset","module":"m","addresses":["0x%s"]}' "$bid" \
	"$addr" >$h/symbolize-offset
printf '\001query={service="fuzz"}&from=now-1y&to=now&format=folded\n' >$h/query-folded
printf '\001query={service=~"f.*"}&from=0&to=now&format=json&max_nodes=10\n' >$h/query-json
printf '\002query={}&from=now-100y\n' >$h/series
printf '\003query={service="fuzz"}&from=now-100y&step=60s\n' >$h/timeline
printf '\004base={service="fuzz"}&query={service="fuzz"}&from=now-100y\n' >$h/diff
printf '\005from=now-100y\n' >$h/missing
printf '\007name=app.cpu{env=prod}&format=folded&from=1717252200&until=1717252210\nmain;foo;bar 3\nmain;baz 1\n' >$h/pyro-folded
printf '\007name=app&format=lines\nmain;foo\nmain;foo;bar\n' >$h/pyro-lines
{ printf '\010service=fuzz&host=h\n'; cat $f/fuzz_pprof/agent.pb.gz; } >$h/ingest
# Pyroscope's push: a PushRequest with one series and the agent's profile, binary and JSON
python3 - "$f/fuzz_pprof/agent.pb.gz" "$h" <<'PY'
import base64, json, sys
raw = open(sys.argv[1], "rb").read()
def ld(field, b):  # a length-delimited protobuf field (field numbers < 16)
    n, v = len(b), bytearray()
    while True:
        v.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
        n >>= 7
        if not n:
            break
    return bytes([field << 3 | 2]) + bytes(v) + b
label = ld(1, b"service_name") + ld(2, b"fuzz")
sample = ld(1, raw) + ld(2, b"6f1c2a9e-0001")
open(sys.argv[2] + "/push-proto", "wb").write(b"\013\n" + ld(1, ld(1, label) + ld(2, sample)))
js = {"series": [{"labels": [{"name": "service_name", "value": "fuzz"}],
                  "samples": [{"rawProfile": base64.b64encode(raw).decode(), "ID": "x"}]}]}
open(sys.argv[2] + "/push-json", "wb").write(b"\014\n" + json.dumps(js).encode())
PY
du -sh $f
