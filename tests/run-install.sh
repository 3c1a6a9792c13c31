#!/usr/bin/env bash
# make install / uninstall (mk/install.mk) into temp trees: DESTDIR=$T/root PREFIX=/usr, and a
# real PREFIX=$T/prefix whose units systemd-analyze can verify (their ExecStart binaries
# exist). Checks the tree, that the units' paths follow PREFIX, each installed program's
# --help, that every flag of --help is in its man page and that the pages render without a
# warning, that the installed fleetsymd answers /metrics, that an edited fleetsymd.env survives
# install and uninstall, and that uninstall leaves nothing else.
set -uo pipefail
. "$(dirname "$0")/lib/common.sh"
need make scdoc man systemd-analyze curl
TOP=$(cd "$TESTS/.." && pwd)
cd "$T"
ok() { echo "ok   $*"; }
mk() { make -s --no-print-directory -C "$TOP" BUILD="$BUILD" "$@"; }
SBIN="fleetsymd fleetsym-agent"
BINS="fleetsym-upload fleetsym-symbolize"

# --- DESTDIR install, PREFIX=/usr
mk install DESTDIR="$T/root" PREFIX=/usr >install1.log 2>&1 ||
	{ cat install1.log; fail "make install DESTDIR=$T/root PREFIX=/usr"; finish; }
(cd "$T/root" && find . -mindepth 1 | sort) >"$T/tree.txt"
echo "installed tree (DESTDIR=$T/root PREFIX=/usr):"
sed 's/^/    /' "$T/tree.txt"
cat >"$T/want.txt" <<EOT
./etc/fleetsym/fleetsymd.env
./usr/bin/fleetsym-symbolize
./usr/bin/fleetsym-upload
./usr/lib/systemd/system/fleetsym-agent.service
./usr/lib/systemd/system/fleetsymd.service
./usr/sbin/fleetsym-agent
./usr/sbin/fleetsym-worker
./usr/sbin/fleetsymd
./usr/share/bash-completion/completions/fleetsym-agent
./usr/share/bash-completion/completions/fleetsym-symbolize
./usr/share/bash-completion/completions/fleetsym-upload
./usr/share/bash-completion/completions/fleetsymd
./usr/share/doc/fleetsym/README.md
./usr/share/doc/fleetsym/agent.md
./usr/share/doc/fleetsym/api.md
./usr/share/doc/fleetsym/ci.md
./usr/share/doc/fleetsym/design.md
./usr/share/doc/fleetsym/examples/fleetsymd.env
./usr/share/doc/fleetsym/operations.md
./usr/share/man/man1/fleetsym-symbolize.1
./usr/share/man/man1/fleetsym-upload.1
./usr/share/man/man8/fleetsym-agent.8
./usr/share/man/man8/fleetsymd.8
EOT
(cd "$T/root" && find . -type f | sort) >"$T/files.txt"
diff -u "$T/want.txt" "$T/files.txt" && ok "the installed files are the 23 expected" ||
	fail "installed files differ from the expected list"
for p in $SBIN; do [ -x "$T/root/usr/sbin/$p" ] || fail "$p not executable in /usr/sbin"; done
# fleetsymd's sandboxed DWARF reader sits beside it (where fleetsymd looks for it)
has '^fleetsym-worker ' "$T/root/usr/sbin/fleetsym-worker" --version &&
	ok "fleetsym-worker beside fleetsymd: $("$T/root/usr/sbin/fleetsym-worker" --version | head -1)" ||
	fail "fleetsym-worker --version"
for p in $BINS; do [ -x "$T/root/usr/bin/$p" ] || fail "$p not executable in /usr/bin"; done

# --- the units follow PREFIX
U="$T/root/usr/lib/systemd/system"
grep -q '^ExecStart=/usr/sbin/fleetsymd --data-dir' "$U/fleetsymd.service" &&
	grep -q '^ExecStart=/usr/sbin/fleetsym-agent ' "$U/fleetsym-agent.service" &&
	! grep -q /usr/local "$U/fleetsymd.service" "$U/fleetsym-agent.service" &&
	ok "units: ExecStart=/usr/sbin/..., no /usr/local left" ||
	fail "unit paths do not follow PREFIX=/usr: $(grep -h ExecStart= "$U"/*.service)"

# --- each installed program answers --help (exit 0, its usage on stdout)
for p in $SBIN $BINS; do
	exe="$T/root/usr/sbin/$p"
	[ -x "$exe" ] || exe="$T/root/usr/bin/$p"
	if "$exe" --help >"$T/help-$p.txt" 2>&1 && grep -q "^usage: $p" "$T/help-$p.txt"; then
		ok "$p --help"
	else
		fail "$p --help: $(head -3 "$T/help-$p.txt")"
	fi
	if "$exe" --version >"$T/version-$p.txt" 2>&1 &&
		grep -q "^$p [^ ]" "$T/version-$p.txt" && grep -q '^commit ' "$T/version-$p.txt" &&
		grep -q '^built with .*elfutils' "$T/version-$p.txt"; then
		ok "$p --version: $(head -1 "$T/version-$p.txt")"
	else
		fail "$p --version: $(head -3 "$T/version-$p.txt")"
	fi
done

# --- man pages: no warning at 80 columns; every long flag of --help is in the page
for page in "$T"/root/usr/share/man/man*/*; do
	name=$(basename "$page")
	p=${name%.*}
	MANWIDTH=80 man --warnings -l "$page" >"$T/man-$name.txt" 2>"$T/man-$name.err"
	if [ -s "$T/man-$name.err" ] || ! grep -q '^NAME' "$T/man-$name.txt"; then
		fail "man $name: $(head -5 "$T/man-$name.err")"
	else
		ok "man --warnings -l $name: no warnings, $(wc -l <"$T/man-$name.txt") lines"
	fi
	sed -e 's/\\-/-/g' -e 's/\\f[BIRP]//g' "$page" >"$T/man-$name.plain"
	missing=
	for flag in $(grep -oE -- '--[a-z][a-z-]*' "$T/help-$p.txt" | sort -u); do
		grep -qE -- "(^|[^a-z-])$flag([^a-z-]|$)" "$T/man-$name.plain" || missing="$missing $flag"
	done
	[ -z "$missing" ] && ok "$name documents every flag of $p --help" ||
		fail "$name lacks$missing"
done

# --- the installed fleetsymd serves /metrics
"$T/root/usr/sbin/fleetsymd" --data-dir "$T/data" --listen 127.0.0.1:0 \
	--port-file "$T/port" --log-level warn >"$T/fleetsymd.log" 2>&1 &
fsd=$!
for _ in $(seq 100); do [ -s "$T/port" ] && break; sleep 0.1; done
if [ -s "$T/port" ] &&
	curl -sf --max-time 10 "http://127.0.0.1:$(cat "$T/port")/metrics" >"$T/metrics.txt" &&
	grep -q '^fleetsymd_' "$T/metrics.txt"; then
	ok "installed fleetsymd answers /metrics ($(grep -c '^fleetsymd_' "$T/metrics.txt") samples)"
else
	fail "installed fleetsymd: no /metrics: $(tail -3 "$T/fleetsymd.log")"
fi
kill "$fsd" 2>/dev/null
wait "$fsd" 2>/dev/null

# --- a second PREFIX, for real: systemd-analyze verify finds the ExecStart binaries there
P="$T/prefix"
mk install PREFIX="$P" SYSCONFDIR="$P/etc" >install2.log 2>&1 ||
	{ cat install2.log; fail "make install PREFIX=$P"; finish; }
grep -q "^ExecStart=$P/sbin/fleetsymd " "$P/lib/systemd/system/fleetsymd.service" &&
	grep -q "^ExecStart=$P/sbin/fleetsym-agent " "$P/lib/systemd/system/fleetsym-agent.service" &&
	grep -q "^EnvironmentFile=-$P/etc/fleetsym/fleetsymd.env" "$P/lib/systemd/system/fleetsymd.service" &&
	ok "PREFIX=$P: ExecStart=$P/sbin/..., settings under $P/etc" ||
	fail "PREFIX=$P: $(grep -h 'ExecStart=\|EnvironmentFile=' "$P"/lib/systemd/system/*.service)"
for u in fleetsymd fleetsym-agent; do
	# the same unit as under /usr, but for the paths
	sed -e "s|$P/sbin/|/usr/sbin/|g" -e "s|$P/etc/|/etc/|g" "$P/lib/systemd/system/$u.service" |
		cmp -s - "$U/$u.service" || fail "$u.service differs between the two PREFIXes"
done
systemd-analyze verify "$P/lib/systemd/system/fleetsymd.service" \
	"$P/lib/systemd/system/fleetsym-agent.service" >"$T/verify.txt" 2>&1
rc=$?
[ $rc = 0 ] && [ ! -s "$T/verify.txt" ] && ok "systemd-analyze verify: both units, no warnings" ||
	{ cat "$T/verify.txt"; fail "systemd-analyze verify: rc=$rc"; }

# --- the settings: an edited fleetsymd.env survives install and uninstall; nothing else does
env="$T/root/etc/fleetsym/fleetsymd.env"
echo 'FLEETSYMD_LISTEN=10.0.0.1:7070 # edited' >>"$env"
mk install DESTDIR="$T/root" PREFIX=/usr >install3.log 2>&1 || fail "second make install"
grep -q '# edited' "$env" && grep -q 'kept the edited' install3.log &&
	ok "install again: the edited fleetsymd.env kept" || fail "install overwrote an edited env"
mk uninstall DESTDIR="$T/root" PREFIX=/usr >uninstall1.log 2>&1 || fail "make uninstall"
left=$(cd "$T/root" && find . ! -type d | sort | tr '\n' ' ')
[ "$left" = "./etc/fleetsym/fleetsymd.env " ] && grep -q '# edited' "$env" &&
	ok "uninstall: only the edited etc/fleetsym/fleetsymd.env left" ||
	fail "uninstall left: $left"
mk uninstall PREFIX="$P" SYSCONFDIR="$P/etc" >uninstall2.log 2>&1 || fail "make uninstall PREFIX=$P"
left=$(find "$P" ! -type d | tr '\n' ' ')
[ -z "$left" ] && ok "uninstall PREFIX=$P: nothing left (the env file was not edited)" ||
	fail "uninstall PREFIX=$P left: $left"
finish
