#!/usr/bin/env bash
# Installs every Debian package that fleetsym's build, tests and benchmarks need.
# Run as root on Debian 12 (bookworm). Safe to run again.
set -euo pipefail
if [ "$(id -u)" != 0 ]; then
	echo "make deps: run as root (it uses apt-get)" >&2
	exit 1
fi
PKGS=(
	# build
	build-essential pkg-config clang llvm
	libdw-dev libelf-dev libdebuginfod-dev libmicrohttpd-dev libsqlite3-dev
	libprotobuf-c-dev protobuf-c-compiler libjansson-dev libbpf-dev bpftool
	libcurl4-openssl-dev zlib1g-dev libiberty-dev libclang-rt-14-dev libseccomp-dev
	# tests: references and real debug info
	elfutils binutils debuginfod dwz python3 golang-go libc6-dbg python3.11-dbg linux-perf
	strace # run-agent-output: the fsync of the output directory
	# make install and man pages (tests/run-install.sh: scdoc, man, systemd-analyze)
	scdoc man-db systemd
	# the web UI test in a real browser (tests/run-webui.sh, playwright-core from npm); the demo
	chromium nodejs curl
	# the ClickHouse profile store (tests/run-clickhouse.sh: a real server on 127.0.0.1)
	clickhouse-server clickhouse-client
)
# npm: Debian's package, unless a Node.js that bundles its own npm (NodeSource) is installed,
# which conflicts with it.
command -v npm >/dev/null || PKGS+=(npm)
BENCH_PKGS=(openjdk-17-dbg hyperfine time)
DEB_PKGS=(debhelper dpkg-dev lintian) # make deb
export DEBIAN_FRONTEND=noninteractive
want=("${PKGS[@]}")
[ "${1:-}" = "--bench" ] && want+=("${BENCH_PKGS[@]}")
[ "${1:-}" = "--deb" ] && want+=("${DEB_PKGS[@]}")
missing=()
for p in "${want[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
	echo "deps: all ${#want[@]} packages present"
	exit 0
fi
echo "deps: installing ${missing[*]}"
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
