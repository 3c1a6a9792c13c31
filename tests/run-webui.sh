#!/usr/bin/env bash
# run alone
# The web UI in a real browser against a real fleetsymd:
#   - the demo workload (demo/workload.c + libdemocodec.so) built -O2 -g at test time; the
#     program's debug info uploaded, the library's not (its build ID must show as missing);
#   - two unsymbolized pprofs in the agent's layout (tests/lib/webui_pprof.py: build IDs and
#     file offsets only), "v1" and "v2" (hash_block doubled), ingested with series labels;
#   - Debian's chromium, headless, driven by playwright-core from npm (pinned in
#     tests/webui/package-lock.json, installed once into build/webui-node; no browser is
#     downloaded): tests/webui/webui.test.js loads the page, checks the hot function, zoom,
#     search, URL state, keyboard, top table, label picker, diff, missing panel and the demo's
#     offline file, and fails on any console error.
# Screenshots: $BUILD/test-logs/webui/*.png.
source "$(dirname "$0")/lib/service.sh"
need node npm clang objdump
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
[ -x "$CHROMIUM" ] || skip "no $CHROMIUM (Debian package chromium; make deps installs it)"
top=$(cd "$TESTS/.." && pwd)
SHOTS="$BUILD/test-logs/webui"
rm -rf "$SHOTS"
mkdir -p "$SHOTS"

# playwright-core, pinned, installed once per lock file content (shared by build/ and build/san/)
NODE_DIR=${WEBUI_NODE_DIR:-$top/build/webui-node}
npm_ci "$TESTS/webui" "$NODE_DIR" playwright-core

# the fixture, as the demo builds it
mkdir -p "$T/app" "$T/nodebug"
clang -O2 -g -fno-omit-frame-pointer -mno-omit-leaf-frame-pointer -fPIC -shared -Wl,--build-id -o "$T/app/libdemocodec.so" \
	"$top/demo/codec.c" || exit 1
clang -O2 -g -fno-omit-frame-pointer -mno-omit-leaf-frame-pointer -Wl,--build-id -o "$T/app/demo-workload" \
	"$top/demo/workload.c" -L"$T/app" -ldemocodec || exit 1
LIB_BID=$(build_id "$T/app/libdemocodec.so")
APP_BID=$(build_id "$T/app/demo-workload")

start_fleetsymd fsd --data-dir "$T/data" --debug-dir "$T/nodebug"
"$BUILD/bin/fleetsym-upload" --server "$URL" --quiet "$T/app/demo-workload" ||
	{ echo "FAILED: upload"; exit 1; }
ok "fleetsymd at $URL; debug info of demo-workload ($APP_BID) uploaded, libdemocodec.so ($LIB_BID) not"

now=$(date +%s)
for v in v1 v2; do
	if [ "$v" = v1 ]; then t=$((now - 300)); else t=$((now - 120)); fi
	python3 "$TESTS/lib/webui_pprof.py" --app "$T/app/demo-workload" --lib "$T/app/libdemocodec.so" \
		--sym "$BUILD/bin/fleetsym-symbolize" --variant "$v" --time "$t" \
		--app-name /opt/demo/demo-workload --lib-name /opt/demo/libdemocodec.so "$T/$v.pb.gz" || exit 1
	code=$(http_code POST "$URL/api/v1/ingest?service=webui-test&version=$v" \
		--data-binary @"$T/$v.pb.gz" -H 'Content-Type: application/octet-stream')
	[ "$code" = 200 ] || { echo "FAILED: ingest $v: $code $(cat "$T/body")"; exit 1; }
done
ok "ingested v1 and v2 (unsymbolized: build IDs and file offsets)"

# the query side answers as the UI expects, before a browser is involved
code=$(http_code GET "$URL/api/v1/query?query=%7Bservice%3D%22webui-test%22%7D&from=now-1h&format=json")
if [ "$code" = 200 ] && grep -q '"hash_block"' "$T/body" && grep -q '"mix"' "$T/body"; then
	ok "GET /api/v1/query?format=json names hash_block and the inlined mix"
else
	fail "query: $code $(head -c 400 "$T/body")"
fi
cp "$T/body" "$T/query.json"
http_code GET "$URL/api/v1/missing?from=now-1h" >/dev/null
cp "$T/body" "$T/missing.json"
grep -q "$LIB_BID" "$T/missing.json" || fail "/missing does not list $LIB_BID: $(head -c 400 "$T/missing.json")"
http_code GET "$URL/api/v1/diff?base=%7Bversion%3D%22v1%22%7D&base_from=now-1h&base_to=now&query=%7Bversion%3D%22v2%22%7D&from=now-1h&format=json" >/dev/null
cp "$T/body" "$T/diff.json"

# the page and its assets: types, cache validators, 404s
for p in / /ui/app.js /ui/flame.js /ui/app.css /ui/favicon.svg; do
	h=$(curl -sI "$URL$p")
	etag=$(sed -n 's/^ETag: *\([^[:space:]]*\).*/\1/Ip' <<<"$h")
	grep -qi '^Content-Type: \(text/html\|text/javascript\|text/css\|image/svg+xml\)' <<<"$h" &&
		[ -n "$etag" ] || fail "$p: $h"
	[ "$(curl -s -o /dev/null -w '%{http_code}' -H "If-None-Match: $etag" "$URL$p")" = 304 ] ||
		fail "$p: If-None-Match $etag is not answered 304"
done
[ "$(http_code GET "$URL/ui/nothing.js")" = 404 ] || fail "/ui/nothing.js is not 404"
[ "$(http_code POST "$URL/")" = 405 ] || fail "POST / is not 405"
ok "/ and /ui/* with Content-Type, ETag, 304 on If-None-Match; 404 and 405 where due"

python3 "$top/demo/offline_html.py" "$top/symbolizer/webui" "$T/offline.html" \
	--query "$T/query.json" --missing "$T/missing.json" --diff "$T/diff.json" \
	--meta 'q={service="webui-test"}' --meta "server=$URL" || fail "offline_html.py"

cat >"$T/expect.json" <<EOF
{"hot": "hash_block", "inlined": "mix", "search": "parse", "missing": "$LIB_BID",
 "q": "{service=\"webui-test\",version=\"v2\"}", "bq": "{service=\"webui-test\",version=\"v1\"}",
 "label": "version", "value": "v2"}
EOF
CHROMIUM="$CHROMIUM" NODE_PATH="$NODE_DIR/node_modules" timeout 300 \
	node "$TESTS/webui/webui.test.js" "$URL" "$SHOTS" "$T/offline.html" <"$T/expect.json" ||
	{
		fail "the browser checks (screenshots in $SHOTS)"
		echo "fleetsymd's refusals during the run (the test's own 404 and 405 expected):"
		grep -E 'status=[45][0-9][0-9]' "$T/fsd.log" | head -8
	}
ls "$SHOTS"
grep -E 'method=GET path=/(ui/|api/v1/(query|diff|missing|labels))' "$T/fsd.log" | head -12
finish
