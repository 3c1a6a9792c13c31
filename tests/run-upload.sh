#!/usr/bin/env bash
# fleetsym-upload against a real fleetsymd on 127.0.0.1: a -O2 -g fixture is uploaded, its
# stripped copy then symbolizes through the service exactly as the unstripped original does
# offline; a second upload is skipped; directory mode; failure modes (server down, 413, 401, no
# build ID, a non-ELF file in a directory); and the extraction against objcopy --only-keep-debug.
set -uo pipefail
. "$(dirname "$0")/lib/service.sh"
need objcopy strip eu-addr2line
UP=$BUILD/bin/fleetsym-upload
SYM=$BUILD/bin/fleetsym-symbolize
[ -x "$UP" ] || { echo "FAILED: $UP not built"; exit 1; }
cd "$T"

gcc -O2 -g -Wl,--build-id -o app "$TESTS/data/src/inline_c.c"
cp app app.stripped && strip --strip-all app.stripped
bid=$(build_id app)
[ "$(build_id app.stripped)" = "$bid" ] || fail "strip changed the build ID"
[ "$("$UP" buildid app.stripped)" = "$bid" ] && ok "buildid subcommand: $bid" ||
	fail "buildid subcommand"

echo "s3cret-token" >token
start_fleetsymd main --data-dir "$T/data" --token-file "$T/token" --request-timeout 10
MAIN=$URL

# --- upload, then symbolize the stripped copy through the service
"$UP" --server "$MAIN" --token-file token app >up1.txt 2>&1
rc=$?
cat up1.txt
[ $rc = 0 ] && grep -q "^uploaded *app: build ID $bid" up1.txt && ok "upload: exit 0" ||
	fail "upload: rc=$rc"
curl -s "$MAIN/api/v1/debuginfo/$bid" >status.json
python3 -c 'import json,sys; j=json.load(open("status.json")); q=j["quality"]
sys.exit(0 if j["present"] and j["source"]=="upload" and q["dwarf"] and q["lines"] else 1)' &&
	ok "server has it: $(cat status.json)" || fail "status after upload: $(cat status.json)"
# the stripped binary is what a host runs: the service answers for its build ID exactly as the
# engine answers offline on the unstripped original (names, file:line:column, inline chains)
python3 "$TESTS/lib/svc_check.py" --url "$MAIN" --elf app --sym "$SYM" --build-id "$bid" \
	-n 1500 --seed 4 >svc.txt 2>&1 && ok "service on the upload: $(tail -1 svc.txt)" ||
	{ cat svc.txt; fail "service answers for the uploaded debug info"; }

# --- a second upload is skipped
"$UP" --server "$MAIN" --token-file token app >up2.txt 2>&1
rc=$?
[ $rc = 0 ] && grep -q '^present *app' up2.txt && ok "second upload skipped: $(head -1 up2.txt)" ||
	{ cat up2.txt; fail "second upload: rc=$rc"; }
# --dry-run sends nothing, --force replaces
"$UP" --server "$MAIN" --token-file token --force --dry-run app >dry.txt 2>&1
grep -q '^would-upload' dry.txt && grep -q '1 would be uploaded' dry.txt && ok "--dry-run" ||
	{ cat dry.txt; fail "--dry-run"; }

# --- directory mode: several ELF files, a non-ELF file skipped with a reason, a symlink once
mkdir -p tree/sub
for v in 1 2 3; do
	gcc -O2 -g -DVARIANT=$v -Wl,--build-id -o "tree/sub/app$v" "$TESTS/data/src/inline_c.c"
done
echo "just text" >tree/README
ln -s sub/app1 tree/link-to-app1
"$UP" --server "$MAIN" --token-file token tree >dir.txt 2>&1
rc=$?
cat dir.txt
[ $rc = 0 ] && [ "$(grep -c '^uploaded' dir.txt)" = 3 ] &&
	grep -q '^skipped *tree/README: not an ELF file' dir.txt &&
	ok "directory: 3 uploaded, README skipped, symlinked file once" || fail "directory mode rc=$rc"
for v in 1 2 3; do
	[ "$(curl -s -o /dev/null -w '%{http_code}' "$MAIN/api/v1/debuginfo/$(build_id tree/sub/app$v)")" = 200 ] ||
		fail "app$v not on the server"
done

# --- failure modes
t0=$(date +%s)
"$UP" --server "http://127.0.0.1:1" --retries 2 app >down.txt 2>&1
rc=$?
secs=$(($(date +%s) - t0))
[ $rc = 1 ] && grep -q 'unreachable' down.txt && [ $secs -le 15 ] &&
	ok "server down: exit 1 after retries in ${secs}s: $(head -1 down.txt)" ||
	{ cat down.txt; fail "server down: rc=$rc in ${secs}s"; }

gcc -O2 -g -DVARIANT=9 -Wl,--build-id -o app9 "$TESTS/data/src/inline_c.c"
"$UP" --server "$MAIN" app9 >noauth.txt 2>&1
rc=$?
[ $rc = 1 ] && grep -q 'status 401' noauth.txt && ok "no token: exit 1, $(head -1 noauth.txt)" ||
	{ cat noauth.txt; fail "no token: rc=$rc"; }
echo "wrong" >bad-token
"$UP" --server "$MAIN" --token-file bad-token app9 >badauth.txt 2>&1
rc=$?
[ $rc = 1 ] && grep -q 'status 401' badauth.txt && ok "wrong token: exit 1" || fail "wrong token: rc=$rc"

start_fleetsymd small --data-dir "$T/data-small" --max-upload-size 4096
"$UP" --server "$URL" app9 >big.txt 2>&1
rc=$?
[ $rc = 1 ] && grep -q 'status 413' big.txt && ok "over the size limit: exit 1, $(head -1 big.txt)" ||
	{ cat big.txt; fail "413: rc=$rc"; }

gcc -O2 -g -Wl,--build-id=none -o nobid "$TESTS/data/src/inline_c.c"
"$UP" --server "$MAIN" --token-file token nobid >nobid.txt 2>&1
rc=$?
[ $rc = 1 ] && grep -q 'build-id' nobid.txt && ok "no build ID: exit 1, $(head -1 nobid.txt)" ||
	{ cat nobid.txt; fail "no build ID: rc=$rc"; }
"$UP" --bogus-flag >/dev/null 2>&1
[ $? = 2 ] && ok "usage error: exit 2" || fail "usage error exit code"

# --- extraction: no larger than objcopy --only-keep-debug (+5 %), same answers
check_extract() {
	local src=$1 name=$2
	"$UP" extract --no-compress "$src" "$name.ours" >"$name.ex.txt" || { fail "extract $name"; return; }
	objcopy --only-keep-debug "$src" "$name.objcopy"
	local ours objc orig
	ours=$(stat -c %s "$name.ours")
	objc=$(stat -c %s "$name.objcopy")
	orig=$(stat -c %s "$src")
	if [ $((ours * 100)) -le $((objc * 105)) ]; then
		ok "extract $name: ours $ours bytes, objcopy $objc, original $orig"
	else
		fail "extract $name: ours $ours bytes > objcopy $objc + 5 %"
	fi
	"$UP" extract "$src" "$name.z" >/dev/null && ok "  compressed for the wire: $(stat -c %s "$name.z") bytes"
	python3 - "$src" >"$name.addrs" <<'PY'
import random, subprocess, sys
out = subprocess.run(["readelf", "-sW", sys.argv[1]], capture_output=True, text=True).stdout
fs = sorted({(int(f[1], 16), int(f[2])) for f in (l.split() for l in out.splitlines())
             if len(f) >= 8 and f[3] == "FUNC" and f[2].isdigit() and int(f[2]) > 0})
r = random.Random(5)
for _ in range(1200):
    a, n = r.choice(fs)
    print(hex(a + r.randrange(n)))
PY
	"$SYM" -e "$src" -f -i -C <"$name.addrs" >"$name.ref"
	for f in ours z; do
		"$SYM" -e "$name.$f" -f -i -C <"$name.addrs" >"$name.$f.out"
		cmp -s "$name.ref" "$name.$f.out" &&
			ok "  $name.$f answers = original on $(wc -l <"$name.addrs") addresses" ||
			fail "$name.$f answers differ from the original"
	done
}
check_extract app fixture
libc=/lib/x86_64-linux-gnu/libc.so.6
lbid=$(build_id "$libc")
ldbg=/usr/lib/debug/.build-id/${lbid:0:2}/${lbid:2}.debug
if [ -f "$ldbg" ]; then
	check_extract "$ldbg" libc
else
	echo "note: libc6-dbg not installed, libc extraction not checked"
fi
[ "$(tmp_files "$T/data")" = 0 ] || fail "temp files left in the store"
finish
