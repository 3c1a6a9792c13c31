# fleetsym - one GNU Makefile, no recursion; everything lands in build/ (build/san/ under SAN=).
#   make                 build everything into build/bin/
#   make deps            install the Debian packages for build, tests and benchmarks (root)
#   make check           unit tests + integration tests
#   make check SAN=address,undefined   the same under sanitizers
#   make bench           the benchmarks (not part of check)
#   make format | lint

SAN ?=
BUILD := build
ifneq ($(SAN),)
BUILD := build/san
SANFLAGS := -fsanitize=$(SAN) -fno-sanitize-recover=all -fno-omit-frame-pointer
endif

CC ?= gcc
OPT ?= -O2
# CFLAGS and LDFLAGS are the caller's (make CFLAGS=-O0): they are added to, never replace, the
# flags the build needs (FS_CFLAGS: language, includes relative to the root, warnings).
CFLAGS ?= $(OPT) -g
WARNINGS := -Wall -Wextra -Werror -Wshadow -Wno-missing-field-initializers -Wno-unused-parameter
FS_CFLAGS = -std=gnu11 -I. -I$(GEN) -D_GNU_SOURCE -MMD -MP $(WARNINGS) $(SANFLAGS) $(CFLAGS) \
	$(EXTRA_CFLAGS)
FS_LDFLAGS = $(SANFLAGS) $(LDFLAGS) $(EXTRA_LDFLAGS)

# Every module except the mains goes into one static library; each program and unit test links
# it and gets only the objects it uses (and, with --as-needed, only the shared libraries).
MAINS := symbolizer/symbolize_main.c symbolizer/fleetsymd_main.c symbolizer/worker_main.c \
	upload-cli/upload_main.c
# fleetsymd's rooms (README.md, docs/design.md): engine and store feed query, query feeds http.
SYMBOLIZER_ROOMS := symbolizer/engine symbolizer/store symbolizer/query symbolizer/http
MODULE_SRC := $(filter-out $(MAINS),$(wildcard lib/*.c cache/*.c symbolizer/*.c \
	$(addsuffix /*.c,$(SYMBOLIZER_ROOMS)) upload-cli/*.c))
LIBS := -Wl,--as-needed -ldw -lelf -ldebuginfod -lmicrohttpd -lsqlite3 -lprotobuf-c -ljansson \
	-lcurl -lz -liberty -lseccomp -lstdc++ -lpthread

obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))
LIBFLEETSYM := $(BUILD)/libfleetsym.a

# pprof's profile.proto and Pyroscope's push API (pushv1.proto), compiled by protoc-c into
# build/gen (#include "profile.pb-c.h").
GEN := $(BUILD)/gen
PROTOS := profile pushv1
PROTO_OBJ := $(patsubst %,$(BUILD)/obj/gen/%.pb-c.o,$(PROTOS))

BINS := $(BUILD)/bin/fleetsym-symbolize $(BUILD)/bin/fleetsym-upload $(BUILD)/bin/fleetsym-worker
ifneq ($(wildcard symbolizer/fleetsymd_main.c),)
BINS += $(BUILD)/bin/fleetsymd
endif
UNIT_TESTS := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(wildcard tests/unit/test_*.c))
INTEGRATION ?= $(sort $(wildcard tests/run-*.sh))
JOBS ?= 1 # integration tests at once (tests/run-all.sh)

.PHONY: all deps check unit integration bench format lint clean
.SECONDARY:
all: $(BINS) $(UNIT_TESTS)

$(BUILD)/obj/%.o: %.c | $(patsubst %,$(GEN)/%.pb-c.h,$(PROTOS))
	@mkdir -p $(dir $@)
	$(CC) $(FS_CFLAGS) -c -o $@ $<

$(GEN)/%.pb-c.c $(GEN)/%.pb-c.h: lib/%.proto
	@mkdir -p $(GEN)
	protoc-c --c_out=$(GEN) -Ilib $<

# generated code: our warnings are not its author's
$(BUILD)/obj/gen/%.pb-c.o: $(GEN)/%.pb-c.c
	@mkdir -p $(dir $@)
	$(CC) -std=gnu11 $(OPT) -g -I$(GEN) $(SANFLAGS) -c -o $@ $<

$(LIBFLEETSYM): $(call obj,$(MODULE_SRC)) $(PROTO_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/bin/fleetsym-symbolize: $(call obj,symbolizer/symbolize_main.c) $(LIBFLEETSYM)
	@mkdir -p $(dir $@)
	$(CC) $(FS_LDFLAGS) -o $@ $^ $(LIBS)

# the sandboxed DWARF reader fleetsymd starts (symbolizer/worker_main.c)
$(BUILD)/bin/fleetsym-worker: $(call obj,symbolizer/worker_main.c) $(LIBFLEETSYM)
	@mkdir -p $(dir $@)
	$(CC) $(FS_LDFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/bin/fleetsym-upload: $(call obj,upload-cli/upload_main.c) $(LIBFLEETSYM)
	@mkdir -p $(dir $@)
	$(CC) $(FS_LDFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/bin/fleetsymd: $(call obj,symbolizer/fleetsymd_main.c) $(LIBFLEETSYM)
	@mkdir -p $(dir $@)
	$(CC) $(FS_LDFLAGS) -o $@ $^ $(LIBS)

# order-only: the tests of opensyms and qsym start the worker, as fleetsymd does
$(BUILD)/tests/%: $(call obj,tests/unit/%.c) $(LIBFLEETSYM) | $(BUILD)/bin/fleetsym-worker
	@mkdir -p $(dir $@)
	$(CC) $(FS_LDFLAGS) -o $@ $^ $(LIBS)

# Helper programs the benchmarks run, built like everything else (same flags and warnings).
BENCH_TOOLS := $(BUILD)/bench/store_load
all: $(BENCH_TOOLS)

$(BUILD)/bench/%: $(call obj,bench/%.c) $(LIBFLEETSYM)
	@mkdir -p $(dir $@)
	$(CC) $(FS_LDFLAGS) -o $@ $^ $(LIBS) -lm

deps:
	bash .ci/deps.sh

unit: $(UNIT_TESTS)
	@fail=0; for t in $(UNIT_TESTS); do echo "== $$t"; $$t || fail=1; done; exit $$fail

# every program the integration tests run, the agent included
integration: $(BINS) $(BUILD)/bin/fleetsym-agent
	@BUILD=$(BUILD) JOBS=$(JOBS) bash tests/run-all.sh $(INTEGRATION)

check: all
	@$(MAKE) --no-print-directory unit integration SAN=$(SAN)

bench: all
	bash .ci/deps.sh --bench
	bash bench/symbolize.sh
	bash bench/service.sh
	bash bench/upload.sh
	bash bench/agent.sh
	bash bench/query.sh
	bash bench/ingest.sh
	bash bench/store.sh

# Every C file of the project: sources, test headers, the web UI's asset generator, benchmarks.
# Not tests/data/src/: fixtures whose line numbers the tests expect.
C_FILES = $(filter-out tests/data/%,$(shell git ls-files '*.c' '*.h' 2>/dev/null || \
	find . -path ./build -prune -o -name '*.[ch]' -printf '%P\n'))

format:
	clang-format -i $(C_FILES)

lint:
	clang-format --dry-run --Werror $(C_FILES)

clean:
	rm -rf build

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)

# The main job (README): demo/demo.sh, as root, installs (.ci/deps.sh), builds, and runs the
# whole system: fleetsymd, a workload under fleetsym-agent, the top functions, results/demo/.
.PHONY: demo
demo:
	@bash demo/demo.sh

# --- agent: bpf/ + agent/ ---
# bpf/NAME.bpf.c -> $(BUILD)/NAME.bpf.o (CO-RE, against this kernel's BTF) -> $(BUILD)/NAME.skel.h,
# included by agent/ only. Agent objects are linked directly (not part of libfleetsym.a).
BPFTOOL ?= bpftool
BPF_CLANG ?= clang
LLVM_STRIP ?= llvm-strip
VMLINUX_BTF ?= /sys/kernel/btf/vmlinux
AGENT_SRC := $(wildcard agent/*.c)
AGENT_SKELS := $(patsubst bpf/%.bpf.c,$(BUILD)/%.skel.h,$(wildcard bpf/*.bpf.c))
AGENT_LIBS := -Wl,--as-needed -lbpf -ldw -lelf -lz -lcurl -lprotobuf-c -lpthread

$(BUILD)/vmlinux.h:
	@mkdir -p $(dir $@)
	$(BPFTOOL) btf dump file $(VMLINUX_BTF) format c >$@.tmp && mv $@.tmp $@

$(BUILD)/%.bpf.o: bpf/%.bpf.c $(wildcard bpf/*.h) $(BUILD)/vmlinux.h
	$(BPF_CLANG) -g -O2 -target bpf -D__TARGET_ARCH_x86 -Wall -Werror -I$(BUILD) -Ibpf \
		-c $< -o $@
	$(LLVM_STRIP) -g $@

$(BUILD)/%.skel.h: $(BUILD)/%.bpf.o
	$(BPFTOOL) gen skeleton $< >$@.tmp && mv $@.tmp $@

$(call obj,$(AGENT_SRC)): FS_CFLAGS += -I$(BUILD)
$(call obj,$(AGENT_SRC)): $(AGENT_SKELS)

$(BUILD)/bin/fleetsym-agent: $(call obj,$(AGENT_SRC)) $(LIBFLEETSYM)
	@mkdir -p $(dir $@)
	$(CC) $(FS_LDFLAGS) -o $@ $^ $(AGENT_LIBS)

all: $(BUILD)/bin/fleetsym-agent

# tests/unit/test_agent.c: the agent modules that need no BPF, linked directly like the agent
AGENT_UNIT_OBJS := $(call obj,agent/smap.c agent/elfid.c agent/mapfile.c agent/vdso.c agent/perfmap.c agent/procmaps.c agent/ksyms.c agent/cgnames.c)
$(BUILD)/tests/test_agent: $(call obj,tests/unit/test_agent.c) $(AGENT_UNIT_OBJS) $(LIBFLEETSYM)
	@mkdir -p $(dir $@)
	$(CC) $(FS_LDFLAGS) -o $@ $^ $(LIBS)

# tests/unit/test_unwind.c: the table builder, the replay of recorded stacks, bpf/unwind.h's steps
$(BUILD)/tests/test_unwind: $(call obj,tests/unit/test_unwind.c agent/unwtab.c agent/unwreplay.c) \
			     $(LIBFLEETSYM)
	@mkdir -p $(dir $@)
	$(CC) $(FS_LDFLAGS) -o $@ $^ $(LIBS)

# --- web UI ---
# symbolizer/webui/ (the page, its scripts, style and icon) -> $(GEN)/webui_assets.c (byte
# arrays and build-time ETags, written by the generator symbolizer/webui/embed.c) -> part of
# libfleetsym.a; symbolizer/http/httpd_ui.c serves them at / and /ui/*.
WEBUI_FILES := $(notdir $(wildcard $(addprefix symbolizer/webui/*.,html js css svg)))
WEBUI_EMBED := $(BUILD)/tools/webui-embed
WEBUI_OBJ := $(BUILD)/obj/gen/webui_assets.o

$(WEBUI_EMBED): symbolizer/webui/embed.c
	@mkdir -p $(dir $@)
	$(CC) -std=gnu11 -O2 -Wall -Wextra -Werror -o $@ $<

$(GEN)/webui_assets.c: $(WEBUI_EMBED) $(addprefix symbolizer/webui/,$(WEBUI_FILES))
	@mkdir -p $(dir $@)
	$(WEBUI_EMBED) $@.tmp symbolizer/webui $(WEBUI_FILES) && mv $@.tmp $@

$(WEBUI_OBJ): $(GEN)/webui_assets.c symbolizer/http/httpd_ui.h
	@mkdir -p $(dir $@)
	$(CC) -std=gnu11 $(OPT) -I. $(SANFLAGS) -c -o $@ $<

$(LIBFLEETSYM): $(WEBUI_OBJ)

# make install / uninstall / man / deb, and the version figures: mk/install.mk
include mk/install.mk
include mk/fuzz.mk
