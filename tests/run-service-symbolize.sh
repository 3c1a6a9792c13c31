#!/usr/bin/env bash
# POST /api/v1/symbolize on its own: a C++ fixture (demangled names, linkage names) from a
# local debug dir and then from the index (frames compared with the engine run offline;
# the engine's own tests compare it with eu-addr2line), file offsets through PT_LOAD (and the refusal for
# a debug file whose offsets objcopy zeroed), unknown build IDs as module+0xoff with a reason,
# the "module" name, and every malformed request: 400/413 with a JSON error, never a crash.
set -uo pipefail
. "$(dirname "$0")/lib/service.sh"
need g++ eu-strip objcopy
CHECK="python3 $TESTS/lib/svc_check.py --sym $BUILD/bin/fleetsym-symbolize"

cd "$T"
mkdir -p debug empty
g++ -O2 -g -o cxx "$TESTS/data/src/inline_cxx.cc"
CXX=$(build_id cxx)
mkdir -p "debug/.build-id/${CXX:0:2}"
eu-strip -f "debug/.build-id/${CXX:0:2}/${CXX:2}.debug" -o cxx.stripped cxx
gcc -O2 -g -o fx "$TESTS/data/src/inline_c.c"
FX=$(build_id fx)
mkdir -p "debug/.build-id/${FX:0:2}"
objcopy --only-keep-debug fx "debug/.build-id/${FX:0:2}/${FX:2}.debug"

start_fleetsymd sym --data-dir "$T/data" --debug-dir "$T/debug" --request-timeout 2s
echo "== C++ from a local debug dir: cold, then from the index"
$CHECK --url "$URL" --elf cxx --build-id "$CXX" -n 500 --seed 1 --no-eu || fail "cxx cold"
for _ in $(seq 100); do
	[ "$(metric "$URL" fleetsymd_index_builds_total)" -ge 1 ] && break
	sleep 0.1
done
[ "$(metric "$URL" fleetsymd_symcache_indexed)" = 1 ] || fail "cxx not indexed"
$CHECK --url "$URL" --elf cxx --build-id "$CXX" -n 500 --seed 2 --no-eu || fail "cxx warm"
$CHECK --url "$URL" --elf cxx --build-id "$CXX" -n 300 --seed 3 --kind offset --no-eu || fail "cxx offsets"
symbolize "$URL" "$CXX" vaddr $(nm cxx | awk '$3 ~ /^_Z/ && $2 ~ /[tTwW]/ { print "0x" $1 }') >ans.json
python3 -c '
import json
fr = [f for r in json.load(open("ans.json"))["results"] for f in r["frames"]]
dem = [f for f in fr if f.get("linkage_name", "").startswith("_Z") and f["function"] != f["linkage_name"]]
assert dem, fr[:3]
print("ok   demangled: %d frames, e.g. %s (linkage %s)" % (len(dem), dem[0]["function"], dem[0]["linkage_name"]))' ||
	fail "demangling"

echo "== offsets need real program headers"
$CHECK --url "$URL" --elf fx --build-id "$FX" -n 100 --seed 4 >/dev/null || fail "fx (objcopy debug) by vaddr"
symbolize "$URL" "$FX" offset 0x1200 >ans.json
grep -q 'zeroed file offsets' ans.json && ok "objcopy --only-keep-debug file: offsets refused with a reason" ||
	fail "offsets on a zeroed-header debug file: $(cat ans.json)"
symbolize "$URL" "$CXX" offset 0x7fffffff >ans.json
grep -q 'no PT_LOAD segment' ans.json || fail "offset outside every segment: $(cat ans.json)"

echo "== unknown build ID"
curl -s -X POST -d '{"build_id":"0123456789abcdef","addresses":["0x10","0x20"],"module":"libfoo.so"}' \
	"$URL/api/v1/symbolize" >ans.json
python3 -c '
import json
a = json.load(open("ans.json"))
assert a["status"] == "missing" and not a["pending"] and a["reason"], a
assert [r["frames"][0]["unknown"] for r in a["results"]] == ["libfoo.so+0x10", "libfoo.so+0x20"], a
print("ok   unknown:", a["results"][0]["frames"][0]["unknown"], "-", a["reason"])' || fail "unknown: $(cat ans.json)"

echo "== malformed requests"
# bad NAME WANT BODY
bad() {
	local code
	code=$(curl -s -o "$T/body" -w '%{http_code}' -X POST --data-binary "$3" "$URL/api/v1/symbolize")
	if [ "$code" = "$2" ] && python3 -c 'import json,sys; assert json.load(open(sys.argv[1]))["error"]' "$T/body" 2>/dev/null; then
		ok "$1: $code $(head -c 150 "$T/body")"
	else
		fail "$1: $code (want $2) $(head -c 300 "$T/body")"
	fi
}
bad not-json 400 'hello'
bad not-object 400 '[1,2]'
bad empty 400 ''
bad no-build-id 400 '{"addresses":["0x1"]}'
bad bad-build-id 400 '{"build_id":"../etc","addresses":["0x1"]}'
bad long-build-id 400 "{\"build_id\":\"$(printf '%066d' 1)\",\"addresses\":[\"0x1\"]}"
bad no-addresses 400 "{\"build_id\":\"$CXX\"}"
bad addresses-not-array 400 "{\"build_id\":\"$CXX\",\"addresses\":\"0x1\"}"
bad bad-address 400 "{\"build_id\":\"$CXX\",\"addresses\":[\"0x1\",\"zz\"]}"
bad negative-address 400 "{\"build_id\":\"$CXX\",\"addresses\":[-5]}"
bad huge-address 400 "{\"build_id\":\"$CXX\",\"addresses\":[\"0x123456789abcdef01\"]}"
bad bad-kind 400 "{\"build_id\":\"$CXX\",\"addresses\":[\"0x1\"],\"kind\":\"pc\"}"
bad duplicate-key 400 "{\"build_id\":\"$CXX\",\"build_id\":\"$CXX\",\"addresses\":[]}"
bad nul-in-body 400 $'{"build_id":"ab\\u0000cd","addresses":[]}'
python3 -c "
import json
print(json.dumps({'build_id': '$CXX', 'addresses': ['0x1'] * 100001}))" >toomany.json
bad too-many-addresses 413 @toomany.json
head -c 17000000 /dev/zero | tr '\0' ' ' >huge.json
bad body-over-16MiB 413 @huge.json
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -d "{\"build_id\":\"$CXX\",\"addresses\":[]}" "$URL/api/v1/symbolize")
[ "$code" = 200 ] || fail "empty address list: $code"
# 100,000 addresses: the cap itself is fine
python3 -c "
import json
print(json.dumps({'build_id': '$CXX', 'addresses': [hex(0x1000 + i) for i in range(100000)]}))" >max.json
t=$(curl -s -o ans.json -w '%{http_code} %{time_total} %{size_download}' -X POST --data-binary @max.json "$URL/api/v1/symbolize")
[ "${t%% *}" = 200 ] && python3 -c 'import json; assert len(json.load(open("ans.json"))["results"]) == 100000' ||
	fail "100,000 addresses: $t"
ok "100,000 addresses in one request: status, seconds, bytes = $t"
echo "== mutated bodies and raw garbage on the socket"
python3 - "${URL#http://}" "$CXX" <<'PY' || fail "mutated bodies"
import json, random, socket, sys, http.client
host, port = sys.argv[1].split(":")
r = random.Random(5)
base = json.dumps({"build_id": sys.argv[2], "addresses": ["0x2200", "0x2210", 4096],
                   "kind": "offset", "module": "m"}).encode()
codes = {}
for i in range(300):
    b = bytearray(base)
    for _ in range(r.randrange(1, 8)):
        op = r.randrange(3)
        pos = r.randrange(len(b) + 1)
        if op == 0 and b:
            del b[min(pos, len(b) - 1)]
        elif op == 1:
            b[pos:pos] = bytes([r.randrange(256)])
        else:
            b[pos:pos] = r.choice([b'"', b"{", b"[", b"\\u0000", b"\xff", b"-1", b"1e999", b"null"])
    c = http.client.HTTPConnection(host, int(port), timeout=10)
    c.request("POST", "/api/v1/symbolize", body=bytes(b))
    resp = c.getresponse()
    body = resp.read()
    codes[resp.status] = codes.get(resp.status, 0) + 1
    assert resp.status in (200, 400), (resp.status, bytes(b), body[:200])
    json.loads(body)
    c.close()
for i in range(50):
    s = socket.create_connection((host, int(port)), timeout=5)
    junk = bytes(r.randrange(256) for _ in range(r.randrange(1, 3000)))
    if i % 2:
        junk = b"POST /api/v1/symbolize HTTP/1.1\r\nContent-Length: " + junk
    try:
        s.sendall(junk)
        s.shutdown(socket.SHUT_WR)
        s.recv(65536)
    except OSError:
        pass
    s.close()
print("ok   300 mutated bodies:", dict(sorted(codes.items())), "every answer JSON; 50 garbage connections")
PY
kill -0 "$FSD_PID" || fail "fleetsymd died"
stop_pid "$FSD_PID" || fail "fleetsymd did not exit 0 on SIGTERM"
finish
