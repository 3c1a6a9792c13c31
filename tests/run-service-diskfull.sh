#!/usr/bin/env bash
# A full disk and a read-only one under fleetsymd (issue 13), with the data dir on a small
# tmpfs of its own:
#  - below --disk-reserve, ingest and upload answer 507 with a message naming the reserve,
#    queries keep answering with everything acknowledged;
#  - the disk filled to the last byte, then kill -9 and a restart while still full (with no
#    reserve, so sqlite itself meets ENOSPC): fleetsymd starts, answers queries with every
#    acknowledged profile, ingest and upload answer 507 and store nothing, no temp file;
#  - a debug file uploaded before is indexed on the full disk: not marked bad (that lasted until
#    a restart), and symbolized once space is freed;
#  - space freed: ingest and upload work again without a restart;
#  - the file system remounted read-only and fleetsymd restarted: it starts read-only and
#    says so in its log and fleetsymd_store_read_only, answers queries, refuses ingest and
#    upload with 503; remounted
#    read-write, ingest works again without a restart;
#  - profiles.db passes PRAGMA integrity_check at the end.
set -uo pipefail
. "$(dirname "$0")/lib/service.sh"
need sqlite3 mount umount df
export PYTHONDONTWRITEBYTECODE=1
[ "$(id -u)" = 0 ] || skip "mounting a tmpfs needs root"

cd "$T"
MNT="$T/mnt"
mkdir -p "$MNT" empty
mount -t tmpfs -o size=24m fleetsym-diskfull "$MNT" || skip "cannot mount a tmpfs here"
trap 'cleanup; umount -l "$MNT" 2>/dev/null' EXIT
DATA="$MNT/data"
DB="$DATA/profiles.db"
LOG_N=0

# start NAME ARGS...: fleetsymd on $DATA; its log is $T/NAME.log
start() {
	local name=$1
	shift
	start_fleetsymd "$name" --data-dir "$DATA" --debug-dir "$T/empty" --log-level info "$@"
}

# profile N: a small agent-like profile in p$N.pb.gz, value N+1 on one stack
python3 - "$TESTS/lib" <<'PY'
import sys, time
sys.path.insert(0, sys.argv[1])
import mkpprof
for n in range(1, 41):
    mkpprof.write({"time_ns": time.time_ns(), "duration_ns": 10**9,
                   "mappings": [{"build_id": "ab" * 20, "filename": "/opt/full"}],
                   "samples": [{"frames": [[0, 0x1000 + n * 16], [0, 0x2000]], "value": n + 1}]},
                  "p%d.pb.gz" % n)
PY
gcc -O1 -g -o up1 "$TESTS/data/src/inline_c.c" && gcc -O1 -g -DVARIANT=1 -o up2 "$TESTS/data/src/inline_c.c" &&
	gcc -O1 -g -DVARIANT=2 -o up3 "$TESTS/data/src/inline_c.c" || { echo "FAILED: gcc"; exit 1; }

ACKED=() # profile numbers answered 200
ingest() { # ingest N WANT: POST p$N with its key; remembers a 200
	local code
	code=$(http_code POST "$URL/api/v1/ingest?service=full&p=p$1" --data-binary "@p$1.pb.gz" \
		-H "Idempotency-Key: full-$1")
	[ "$code" = 200 ] && ACKED+=("$1")
	if [ "$code" != "$2" ]; then
		fail "ingest p$1: $code, want $2: $(head -c 300 "$T/body")"
		return 1
	fi
}
upload() { # upload FILE WANT
	local code bid
	bid=$(build_id "$1")
	code=$(http_code PUT "$URL/api/v1/debuginfo/$bid" --data-binary "@$1")
	case "$code" in 200 | 201) code=2xx ;; esac
	if [ "$code" != "$2" ]; then
		fail "upload $1: $code, want $2: $(head -c 300 "$T/body")"
		return 1
	fi
}
served() { # served FILE: GET /buildid/ID/debuginfo is FILE byte for byte
	[ "$(http_code GET "$URL/buildid/$(build_id "$1")/debuginfo")" = 200 ] && cmp -s "$T/body" "$1"
}
# acked_present WHAT: every acknowledged profile is listed and the cpu total is theirs
acked_present() {
	local want=0 n
	for n in "${ACKED[@]}"; do want=$((want + n + 1)); done
	if [ "$(http_code GET "$URL/api/v1/series?query=%7Bservice%3D%22full%22%7D&from=now-1h&to=now%2B1m")" != 200 ]; then
		fail "$1: /api/v1/series: $(head -c 300 "$T/body")"
		return
	fi
	if ! python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
got = sorted(s["labels"]["p"] for s in d["series"])
want = sorted("p" + n for n in sys.argv[2:])
sys.exit(0 if got == want else 1)' "$T/body" "${ACKED[@]}"; then
		fail "$1: series are not the ${#ACKED[@]} acknowledged profiles: $(head -c 300 "$T/body")"
		return
	fi
	http_code GET "$URL/api/v1/timeline?query=%7Bservice%3D%22full%22%7D&from=now-1h&to=now%2B1m&step=1m&type=cpu" >/dev/null
	if python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if sum(v for t, v in d["points"]) == int(sys.argv[2]) else 1)' "$T/body" "$want"; then
		ok "$1: queries answer; the ${#ACKED[@]} acknowledged profiles are there (total $want)"
	else
		fail "$1: timeline total is not $want: $(head -c 300 "$T/body")"
	fi
}
no_temp_files() {
	local n
	n=$(find "$DATA" -type f \( -path "$DATA/tmp/*" -o -name '*.tmp.*' \) | wc -l)
	[ "$n" = 0 ] && ok "$1: no temp file in the data dir" || fail "$1: $n temp files: $(find "$DATA/tmp" -type f | head -3)"
}
sym_status() { # sym_status FILE: symbolize main's address in FILE; the answer's status
	local addr
	addr=$(nm "$1" | awk '$3 == "main" { print "0x" $1 }')
	curl -s -m 30 -o "$T/body" -X POST -d "{\"build_id\":\"$(build_id "$1")\",\"addresses\":[\"$addr\"]}" \
		"$URL/api/v1/symbolize"
	python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["status"])' "$T/body" 2>/dev/null
}
avail() { df --output=avail -B1 "$MNT" | tail -1 | tr -d ' '; }
# fill_to BYTES: a filler file leaves about BYTES free
fill_to() {
	local a
	a=$(avail)
	[ "$a" -gt "$1" ] && fallocate -l $((a - $1)) "$MNT/filler.$RANDOM" 2>/dev/null
	# tmpfs without fallocate: write it
	a=$(avail)
	[ "$a" -gt $(($1 + 65536)) ] && dd if=/dev/zero of="$MNT/filler.$RANDOM" bs=64k count=$(((a - $1) / 65536)) 2>/dev/null
	return 0
}

echo "== below --disk-reserve"
start a --disk-reserve 4M
for n in 1 2 3 4 5; do ingest "$n" 200; done
upload up1 2xx && served up1 && ok "upload before the disk fills: served identical"
fill_to $((2 << 20))
ok "free space now $(($(avail) >> 10)) KiB, reserve 4 MiB"
ingest 6 507 && python3 -c 'import json,sys; e=json.load(open(sys.argv[1]))["error"]; sys.exit(0 if "--disk-reserve" in e and "full" in e else 1)' "$T/body" &&
	ok "ingest below the reserve: 507 $(cat "$T/body")"
upload up2 507 && ok "upload below the reserve: 507 $(head -c 200 "$T/body")"
acked_present "below the reserve"

echo "== the disk full to the last byte, kill -9, restart while full"
dd if=/dev/zero of="$MNT/filler.last" bs=4k 2>/dev/null
ok "free space now $(avail) bytes"
ingest 7 507 # still the reserve
{ kill -9 "$FSD_PID" && wait "$FSD_PID"; } 2>/dev/null
# no reserve: sqlite's own writes meet the full disk
t0=$(date +%s%N)
start full --disk-reserve 0
ok "restarted on the full disk in $((($(date +%s%N) - t0) / 1000000)) ms"
acked_present "restarted while full"
[ "$(metric "$URL" fleetsymd_store_read_only)" = 0 ] || fail "an existing store on a full disk opened read-only (it needs no write to open)"
for n in 8 9; do ingest "$n" 507 && ok "ingest on the full disk: 507 $(head -c 160 "$T/body")"; done
upload up2 507 && ok "upload on the full disk: 507 $(head -c 160 "$T/body")"
served up1 && ok "the upload acknowledged before is served identical" || fail "up1 not served after the restart"
# up1 was never symbolized: its index is built now, on the full disk
st=$(sym_status up1)
[ "$st" != bad ] && ok "symbolize up1 on the full disk: $st, not marked bad: $(head -c 160 "$T/body")" ||
	fail "up1 marked bad for a full disk: $(head -c 300 "$T/body")"
acked_present "after the refused writes"
no_temp_files "full disk"
rm -f "$MNT"/filler.*
ok "space freed: $(($(avail) >> 20)) MiB free"
for n in 10 11; do ingest "$n" 200; done
upload up2 2xx && served up2 && ok "upload after space was freed, same process: served identical"
st=
for _ in $(seq 40); do
	st=$(sym_status up1)
	[ "$st" = found ] && break
	sleep 0.5
done
[ "$st" = found ] && ok "up1 symbolized once space was freed, same process" ||
	fail "up1 after space was freed: $st $(head -c 300 "$T/body")"
acked_present "after space was freed, no restart"
stop_pid "$FSD_PID" || fail "fleetsymd did not exit cleanly"

echo "== read-only file system at start"
mount -o remount,ro "$MNT" || fail "remount read-only"
start ro --disk-reserve 1M
grep -q 'event=store_read_only' "$T/ro.log" && ok "the log says why: $(grep -o 'event=store_read_only.*' "$T/ro.log" | head -c 200)" ||
	fail "no store_read_only line in the log"
acked_present "read-only"
[ "$(metric "$URL" fleetsymd_store_read_only)" = 1 ] && ok "fleetsymd_store_read_only 1" || fail "fleetsymd_store_read_only is not 1"
ingest 12 503 && ok "ingest on the read-only store: 503 $(head -c 200 "$T/body")"
upload up3 503 && ok "upload on the read-only file system: 503 $(head -c 160 "$T/body")"
mount -o remount,rw "$MNT" || fail "remount read-write"
# the store tries its writer again at most every 2 s: bounded retries, same process
code=0
for _ in $(seq 40); do
	code=$(http_code POST "$URL/api/v1/ingest?service=full&p=p13" --data-binary @p13.pb.gz -H "Idempotency-Key: full-13")
	[ "$code" = 200 ] && break
	sleep 0.5
done
if [ "$code" = 200 ]; then
	ACKED+=(13)
	ok "read-write again: ingest 200 without a restart"
else
	fail "ingest after the remount: $code $(head -c 300 "$T/body")"
fi
upload up3 2xx && served up3 && ok "upload after the remount: served identical"
[ "$(metric "$URL" fleetsymd_store_read_only)" = 0 ] && ok "fleetsymd_store_read_only 0 again" || fail "fleetsymd_store_read_only is not 0"
acked_present "after the remount"
stop_pid "$FSD_PID" || fail "fleetsymd did not exit cleanly"
ic=$(sqlite3 "$DB" 'PRAGMA integrity_check')
[ "$ic" = ok ] && ok "integrity_check: ok" || fail "integrity_check: $ic"
no_temp_files "end"
finish
