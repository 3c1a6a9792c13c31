#!/usr/bin/env bash
# run alone
# fleetsym-agent on a syscall-heavy fixture (read /dev/zero, write /dev/null): samples carry
# kernel frames in the mapping [kernel.kallsyms], named from /proc/kallsyms, above the user
# frame that entered the kernel (libc's syscall wrapper), whatever the kernel runs inside.
set -u
. "$(dirname "$0")/lib/agent_common.sh"
cd "$T"
build_fixture

bg ./agent_work sys 8
work=$BG
sleep 0.3
timeout 30 "$AGENT" --output "$T/sys.pb.gz" --frequency 99 --duration 3 --pid "$work" 2>agent.err
rc=$?
cat agent.err
[ "$rc" = 0 ] || { echo "FAIL: agent exited with $rc"; exit 1; }
python3 "$CHECK" kernel sys.pb.gz --comm agent_work --min-samples 30 \
	--entry-file libc.so
