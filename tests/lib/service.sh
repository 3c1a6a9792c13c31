# Sourced by tests/run-service-*.sh: a pinned environment, fixtures, and real servers on
# 127.0.0.1 (fleetsymd on a port it picks itself and reports through --port-file, debuginfod
# on random high ports with retries), all killed by the EXIT trap. Every wait is bounded.
export LC_ALL=C
unset DEBUGINFOD_URLS DEBUGINFOD_CACHE_PATH DEBUGINFOD_PROGRESS DEBUGINFOD_VERBOSE
: "${BUILD:?BUILD must name the build dir}" "${T:?T must name the temp dir of the test}"
TESTS=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
. "$TESTS/lib/has.sh"
FSD="$BUILD/bin/fleetsymd"
failed=0
PIDS=()

fail() {
	echo "FAILED: $*"
	failed=1
}

ok() {
	echo "ok   $*"
}

finish() {
	if [ "$failed" != 0 ]; then
		echo "FAIL"
		exit 1
	fi
	echo "PASS"
	exit 0
}

cleanup() {
	local p
	for p in "${PIDS[@]}"; do
		kill "$p" 2>/dev/null
	done
	for p in "${PIDS[@]}"; do
		# bounded: a server that ignores SIGTERM for 5 s is killed
		for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
		kill -9 "$p" 2>/dev/null
	done
	return 0
}
trap cleanup EXIT

build_id() {
	readelf -n "$1" | sed -n 's/^ *Build ID: *\([0-9a-f]*\)$/\1/p' | head -1
}

# start_fleetsymd NAME ARGS... : sets FSD_URL_<NAME> style globals URL and PID of the last one
# (URL, FSD_PID) and logs to $T/NAME.log.
start_fleetsymd() {
	local name=$1
	shift
	rm -f "$T/$name.port"
	"$FSD" --listen 127.0.0.1:0 --port-file "$T/$name.port" "$@" >"$T/$name.log" 2>&1 &
	FSD_PID=$!
	PIDS+=("$FSD_PID")
	for _ in $(seq 100); do
		[ -s "$T/$name.port" ] && break
		kill -0 "$FSD_PID" 2>/dev/null || break
		sleep 0.05
	done
	if [ ! -s "$T/$name.port" ]; then
		echo "FAILED: fleetsymd $name did not start:"
		cat "$T/$name.log"
		exit 1
	fi
	URL="http://127.0.0.1:$(cat "$T/$name.port")"
}

# stop_pid PID : SIGTERM and wait (bounded); fails the test if it does not exit cleanly.
stop_pid() {
	local p=$1 rc=0
	kill -TERM "$p" 2>/dev/null
	for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.05; done
	if kill -0 "$p" 2>/dev/null; then
		fail "pid $p did not stop within 5 s of SIGTERM"
		kill -9 "$p"
	fi
	wait "$p" 2>/dev/null || rc=$?
	return $rc
}

# await_up PID TRIES CMD...: runs CMD every 0.1 s, at most TRIES times, while PID lives; 0 once
# CMD succeeds (PID joins PIDS, stopped at exit), else PID is stopped and 1 (retry elsewhere).
await_up() {
	local pid=$1 tries=$2
	shift 2
	for _ in $(seq "$tries"); do
		kill -0 "$pid" 2>/dev/null || break
		"$@" && { PIDS+=("$pid"); return 0; }
		sleep 0.1
	done
	kill "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	return 1
}

di_serves() { [ "$(curl -s -o /dev/null -w '%{http_code}' "$DI_URL/buildid/$1/debuginfo")" = 200 ]; }

# start_debuginfod DIR : debuginfod -F over DIR on a free port; sets DI_URL, DI_PID. Waits
# until it serves the build ID given as $2 (its scan is asynchronous).
start_debuginfod() {
	local dir=$1 probe=$2 port
	for _ in 1 2 3 4 5; do
		port=$((20000 + RANDOM % 30000))
		debuginfod -F -p "$port" -d "$T/debuginfod-$port.sqlite" -t 0 -g 0 -c 1 \
			"$dir" >"$T/debuginfod.log" 2>&1 &
		DI_PID=$!
		DI_URL="http://127.0.0.1:$port"
		await_up "$DI_PID" 100 di_serves "$probe" && return 0
	done
	echo "FAILED: debuginfod did not come up:"
	cat "$T/debuginfod.log"
	exit 1
}

# start_hole FILE : a debuginfod that accepts connections and never answers (for 120 s); its
# port is written to FILE, which is there when this returns (or after 5 s).
start_hole() {
	python3 - "$1" <<'PY' &
import os, socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(64)
open(sys.argv[1] + ".tmp", "w").write(str(s.getsockname()[1])); os.rename(sys.argv[1] + ".tmp", sys.argv[1])
conns, end = [], time.time() + 120
s.settimeout(1)
while time.time() < end:
    try:
        conns.append(s.accept()[0])
    except socket.timeout:
        pass
PY
	PIDS+=($!)
	for _ in $(seq 50); do [ -s "$1" ] && break; sleep 0.1; done
}

# metric URL NAME : the value of an unlabelled Prometheus metric (0 if absent).
metric() {
	curl -s "$1/metrics" | awk -v n="$2" '$1 == n { v = $2 } END { print v + 0 }'
}

# symbolize URL BUILD_ID KIND ADDR... : the JSON answer on stdout.
symbolize() {
	local url=$1 bid=$2 kind=$3
	shift 3
	python3 - "$url" "$bid" "$kind" "$@" <<'PY'
import json, sys, urllib.request
url, bid, kind, addrs = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
body = json.dumps({"build_id": bid, "kind": kind, "addresses": addrs}).encode()
req = urllib.request.Request(url + "/api/v1/symbolize", data=body, method="POST")
with urllib.request.urlopen(req, timeout=60) as r:
    sys.stdout.write(r.read().decode())
PY
}

# http_code METHOD URL [curl args...] : the status code, body in $T/body.
http_code() {
	local m=$1 u=$2
	shift 2
	curl -s -o "$T/body" -w '%{http_code}' -X "$m" "$@" "$u"
}

# tmp_files DATA_DIR : files left in the store's tmp dir.
tmp_files() {
	find "$1/tmp" -mindepth 1 2>/dev/null | wc -l
}

[ -x "$FSD" ] || { echo "FAILED: $FSD not built (make)"; exit 1; }
need python3 readelf curl gcc

# expect NAME WANT_CODE METHOD PATH [curl args...]: status; a JSON error body for >= 400
expect() {
	local name=$1 want=$2 m=$3 p=$4 code
	shift 4
	code=$(http_code "$m" "$URL$p" "$@")
	if [ "$code" != "$want" ]; then
		fail "$name: status $code, want $want: $(head -c 300 "$T/body")"
		return 1
	fi
	if [ "$want" -ge 400 ] && ! python3 -c 'import json,sys; assert json.load(open(sys.argv[1]))["error"]' "$T/body" 2>/dev/null; then
		fail "$name: error body is not JSON with an error: $(head -c 300 "$T/body")"
		return 1
	fi
	ok "$name: $code $(head -c 200 "$T/body")"
}

# jq-like checks with python: check NAME PYTHON-EXPR (on the JSON in $T/body as d)
check() {
	if python3 -c "import json,sys; d = json.load(open('$T/body')); sys.exit(0 if ($2) else 1)"; then
		ok "$1"
	else
		fail "$1: $(head -c 400 "$T/body")"
	fi
}

# npm_ci SRC NODE_DIR PKG: npm ci of SRC's package.json and package-lock.json into NODE_DIR,
# once per lock file content (shared by build/ and build/san/); exits when it fails.
npm_ci() {
	local src=$1 dir=$2 pkg=$3
	if ! cmp -s "$src/package-lock.json" "$dir/package-lock.json" ||
		[ ! -f "$dir/node_modules/$pkg/package.json" ]; then
		rm -rf "$dir"
		mkdir -p "$dir"
		cp "$src/package.json" "$src/package-lock.json" "$dir/"
		(cd "$dir" && npm ci --no-audit --no-fund --loglevel=error) ||
			{ echo "FAILED: npm ci of $src/package-lock.json"; exit 1; }
	fi
	ok "$pkg $(sed -n 's/.*"version": "\(.*\)".*/\1/p' "$dir/node_modules/$pkg/package.json" | head -1) in $dir"
}
