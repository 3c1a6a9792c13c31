#!/usr/bin/env bash
# kill -9 loops (issue 13): several clients ingest profiles (each with an Idempotency-Key and a
# label of its own) and upload debug files into fleetsymd while it is killed with SIGKILL at a
# random moment, 8 times, each time restarted on the same data dir; a third kind of client
# uploads a debug file whose index takes a second or two and asks for it, so kills also land
# mid-index. After each kill no DWARF worker outlives its fleetsymd; after each restart:
# the service answers, every ingest and upload answered 200 is there (uploads byte-identical),
# an unacknowledged upload is absent or whole, profiles.db passes PRAGMA integrity_check, and
# no temp file is left in the data dir. At the end the unacknowledged profiles are sent again
# with their keys and every profile is stored exactly once. tests/lib/crash_loop.py does the
# work; its first line prints the seed of the kill moments (CRASH_SEED=N repeats them).
set -uo pipefail
. "$(dirname "$0")/lib/service.sh"
export PYTHONDONTWRITEBYTECODE=1
python3 -c 'import sqlite3' 2>/dev/null || skip "python3 without sqlite3"

need objcopy

cd "$T"
mkdir -p data empty
gcc -O1 -g -Wl,--build-id=sha1 -o crash-elf "$TESTS/data/src/inline_c.c" ||
	{ echo "FAILED: gcc"; exit 1; }
# a debug file with 2M functions of DWARF: its index takes a second or two to build, so that
# kills land while a worker builds it (as run-service-sandbox's bombs)
objcopy --only-keep-debug crash-elf bomb.base &&
	python3 "$TESTS/lib/elf_text_size.py" bomb.base 0x40000000 &&
	python3 "$TESTS/lib/dwarf_bomb.py" 2000000 0x1000 0x40000000 bomb.info bomb.abbrev &&
	objcopy --remove-section .debug_aranges --remove-section .debug_rnglists \
		--remove-section .debug_loclists --remove-section .debug_line \
		--remove-section .debug_str_offsets --remove-section .debug_line_str \
		--update-section .debug_info=bomb.info --update-section .debug_abbrev=bomb.abbrev \
		bomb.base bomb.debug || { echo "FAILED: making bomb.debug"; exit 1; }
python3 "$TESTS/lib/crash_loop.py" --fsd "$FSD" --data "$T/data" --debug-dir "$T/empty" \
	--elf crash-elf --bomb bomb.debug --log "$T/fleetsymd.log" --rounds "${CRASH_ROUNDS:-8}" \
	${CRASH_SEED:+--seed "$CRASH_SEED"} || fail "crash loop (log: $T/fleetsymd.log)"
finish
