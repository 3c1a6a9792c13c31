# --- install, uninstall, man pages, the Debian packages; the version figures ---
#   make install [PREFIX=/usr/local] [DESTDIR=]   programs, systemd units, sample settings,
#                                                 man pages, docs, bash completion
#   make uninstall [PREFIX=...] [DESTDIR=]        the same files removed (an edited
#                                                 fleetsymd.env is kept)
#   make man                                      docs/man/*.scd -> $(BUILD)/man/ (scdoc)
#   make deb                                      ../fleetsym-*.deb in $(BUILD)/deb/ (debian/)
# The daemons (section 8) go to sbin, the user commands (section 1) to bin, as Debian does.
include mk/version.mk

# Sources that may move: the units and the sample settings are installed from these.
FLEETSYMD_UNIT ?= symbolizer/fleetsymd.service
FLEETSYMD_ENV ?= symbolizer/fleetsymd.env
AGENT_UNIT ?= agent/fleetsym-agent.service
MAN_SRC ?= $(wildcard docs/man/*.scd)
COMPLETION ?= docs/completion/fleetsym.bash
INSTALL_DOCS ?= README.md docs/api.md docs/ci.md docs/design.md docs/operations.md

PREFIX ?= /usr/local
DESTDIR ?=
BINDIR ?= $(PREFIX)/bin
SBINDIR ?= $(PREFIX)/sbin
MANDIR ?= $(PREFIX)/share/man
DOCDIR ?= $(PREFIX)/share/doc/fleetsym
BASHCOMPDIR ?= $(PREFIX)/share/bash-completion/completions
# systemd reads /usr/local/lib/systemd/system and /usr/lib/systemd/system (bookworm's packages:
# /lib/systemd/system, which debian/rules asks for).
SYSTEMDUNITDIR ?= $(PREFIX)/lib/systemd/system
# Settings live in /etc whatever the PREFIX: the units and docs name /etc/fleetsym.
SYSCONFDIR ?= /etc
INSTALL ?= install

SBIN_PROGS := fleetsymd fleetsym-agent
BIN_PROGS := fleetsym-upload fleetsym-symbolize
# fleetsymd's sandboxed DWARF reader, installed beside it (fleetsymd looks there first)
HELPER_PROGS := fleetsym-worker
PROGRAMS := $(addprefix $(BUILD)/bin/,$(SBIN_PROGS) $(BIN_PROGS) $(HELPER_PROGS))
MAN_PAGES := $(patsubst docs/man/%.scd,$(BUILD)/man/%,$(MAN_SRC))

.PHONY: programs man install uninstall deb
programs: $(PROGRAMS)
man: $(MAN_PAGES)

$(BUILD)/man/%: docs/man/%.scd
	@mkdir -p $(dir $@)
	scdoc <$< >$@.tmp && mv $@.tmp $@

# UNIT SRC: the unit with ExecStart (and the comments) pointing at $(SBINDIR) and
# $(SYSCONFDIR)/fleetsym instead of the sources' /usr/local/bin and /etc/fleetsym.
install_unit = sed -e 's|/usr/local/bin/|$(SBINDIR)/|g' -e 's|/etc/fleetsym/|$(SYSCONFDIR)/fleetsym/|g' \
	$(2) >$(DESTDIR)$(SYSTEMDUNITDIR)/$(1).tmp && \
	chmod 0644 $(DESTDIR)$(SYSTEMDUNITDIR)/$(1).tmp && \
	mv $(DESTDIR)$(SYSTEMDUNITDIR)/$(1).tmp $(DESTDIR)$(SYSTEMDUNITDIR)/$(1)

install: $(PROGRAMS) $(MAN_PAGES)
	$(INSTALL) -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(SBINDIR) $(DESTDIR)$(SYSTEMDUNITDIR) \
		$(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(DOCDIR)/examples \
		$(DESTDIR)$(BASHCOMPDIR)
	$(INSTALL) -m 0755 $(addprefix $(BUILD)/bin/,$(SBIN_PROGS) $(HELPER_PROGS)) $(DESTDIR)$(SBINDIR)/
	$(INSTALL) -m 0755 $(addprefix $(BUILD)/bin/,$(BIN_PROGS)) $(DESTDIR)$(BINDIR)/
	$(call install_unit,fleetsymd.service,$(FLEETSYMD_UNIT))
	$(call install_unit,fleetsym-agent.service,$(AGENT_UNIT))
	$(INSTALL) -m 0644 $(filter %.1,$(MAN_PAGES)) $(DESTDIR)$(MANDIR)/man1/
	$(INSTALL) -m 0644 $(filter %.8,$(MAN_PAGES)) $(DESTDIR)$(MANDIR)/man8/
	$(INSTALL) -m 0644 $(INSTALL_DOCS) $(DESTDIR)$(DOCDIR)/
	$(INSTALL) -m 0644 agent/README.md $(DESTDIR)$(DOCDIR)/agent.md
	$(INSTALL) -m 0644 $(FLEETSYMD_ENV) $(DESTDIR)$(DOCDIR)/examples/fleetsymd.env
	for p in $(SBIN_PROGS) $(BIN_PROGS); do \
		$(INSTALL) -m 0644 $(COMPLETION) $(DESTDIR)$(BASHCOMPDIR)/$$p || exit; done
	@# the settings: installed once, never over an edited copy
	$(INSTALL) -d -m 0755 $(DESTDIR)$(SYSCONFDIR)/fleetsym
	@env=$(DESTDIR)$(SYSCONFDIR)/fleetsym/fleetsymd.env; \
	if [ ! -e $$env ]; then \
		echo "$(INSTALL) -m 0644 $(FLEETSYMD_ENV) $$env"; \
		$(INSTALL) -m 0644 $(FLEETSYMD_ENV) $$env; \
	elif ! cmp -s $(FLEETSYMD_ENV) $$env; then \
		echo "install: kept the edited $$env; the new sample is $(DOCDIR)/examples/fleetsymd.env"; \
	fi

uninstall:
	rm -f $(addprefix $(DESTDIR)$(SBINDIR)/,$(SBIN_PROGS) $(HELPER_PROGS)) \
		$(addprefix $(DESTDIR)$(BINDIR)/,$(BIN_PROGS)) \
		$(DESTDIR)$(SYSTEMDUNITDIR)/fleetsymd.service \
		$(DESTDIR)$(SYSTEMDUNITDIR)/fleetsym-agent.service \
		$(addprefix $(DESTDIR)$(MANDIR)/man1/,$(notdir $(filter %.1,$(MAN_PAGES)))) \
		$(addprefix $(DESTDIR)$(MANDIR)/man8/,$(notdir $(filter %.8,$(MAN_PAGES)))) \
		$(addprefix $(DESTDIR)$(DOCDIR)/,$(notdir $(INSTALL_DOCS)) agent.md) \
		$(DESTDIR)$(DOCDIR)/examples/fleetsymd.env \
		$(addprefix $(DESTDIR)$(BASHCOMPDIR)/,$(SBIN_PROGS) $(BIN_PROGS))
	@rmdir $(DESTDIR)$(DOCDIR)/examples $(DESTDIR)$(DOCDIR) 2>/dev/null || true
	@env=$(DESTDIR)$(SYSCONFDIR)/fleetsym/fleetsymd.env; \
	if cmp -s $(FLEETSYMD_ENV) $$env; then echo "rm -f $$env"; rm -f $$env; \
	elif [ -e $$env ]; then echo "uninstall: kept the edited $$env"; fi
	@rmdir $(DESTDIR)$(SYSCONFDIR)/fleetsym 2>/dev/null || true

# The packages are built from a copy of the tree in $(BUILD)/deb/src (dpkg-buildpackage cleans
# its tree and writes to its parent directory): the .debs, .changes and .buildinfo land in
# $(BUILD)/deb/, and this checkout's build/ is left alone. The copy has no .git, so the version
# figures go with it through the environment. lintian, when installed, must find no error.
DEB_DIR := $(BUILD)/deb
deb:
	bash .ci/deps.sh --deb
	rm -rf $(DEB_DIR)
	mkdir -p $(DEB_DIR)/src
	tar --exclude-vcs --exclude=./build --exclude=./results --exclude=node_modules -cf - . | \
		tar -C $(DEB_DIR)/src -xf -
	cd $(DEB_DIR)/src && FLEETSYM_VERSION=$(FLEETSYM_VERSION) FLEETSYM_COMMIT=$(FLEETSYM_COMMIT) \
		dpkg-buildpackage -us -uc -b
	ls -l $(DEB_DIR)/*.deb
	if command -v lintian >/dev/null; then lintian --fail-on error $(DEB_DIR)/*.changes; fi
