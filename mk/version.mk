# --- version: lib/version.c gets FLEETSYM_VERSION and FLEETSYM_COMMIT ---
# From git in a checkout ("git describe --always --dirty", "git rev-parse HEAD"), else from a
# VERSION file (first line: the version), else "unknown". Set either on the command line or in
# the environment to override (make deb hands its own to the package build, which has no .git).
# $(BUILD)/gen/version.txt changes only when they do, so that version.o is rebuilt then only.
in_git := $(shell [ "$$(git rev-parse --show-toplevel 2>/dev/null)" = "$(CURDIR)" ] && echo y)
ifeq ($(origin FLEETSYM_VERSION),undefined)
FLEETSYM_VERSION := $(shell { $(if $(in_git),git describe --always --dirty 2>/dev/null || git describe --always 2>/dev/null ||) \
	head -1 VERSION 2>/dev/null || echo unknown; } | tr -cd 'A-Za-z0-9.+~_-')
endif
ifeq ($(origin FLEETSYM_COMMIT),undefined)
FLEETSYM_COMMIT := $(or $(if $(in_git),$(shell git rev-parse HEAD 2>/dev/null)),unknown)
endif
FLEETSYM_VERSION := $(or $(FLEETSYM_VERSION),unknown)
VERSION_STAMP := $(BUILD)/gen/version.txt
ifneq ($(file <$(VERSION_STAMP)),$(FLEETSYM_VERSION) $(FLEETSYM_COMMIT))
$(shell mkdir -p $(BUILD)/gen && echo '$(FLEETSYM_VERSION) $(FLEETSYM_COMMIT)' >$(VERSION_STAMP))
endif
$(VERSION_STAMP): ;
$(call obj,lib/version.c): $(VERSION_STAMP)
$(call obj,lib/version.c): FS_CFLAGS += -DFLEETSYM_VERSION='"$(FLEETSYM_VERSION)"' \
	-DFLEETSYM_COMMIT='"$(FLEETSYM_COMMIT)"'

.PHONY: version
version:
	@echo "$(FLEETSYM_VERSION) $(FLEETSYM_COMMIT)"
