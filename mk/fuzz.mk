# --- fuzzing: tests/fuzz/fuzz_*.c, libFuzzer targets (tests/fuzz/README.md) ---
#   make fuzz [FUZZ_SECONDS=30] [FUZZ_JOBS=2] [FUZZ_TARGETS="fuzz_selector ..."]
# builds every target with clang into build-fuzz/ (its own dir: the library is built again
# with clang, coverage and ASan/UBSan) and runs each for FUZZ_SECONDS on its seed corpus
# tests/fuzz/<target>/; new inputs go to build-fuzz/corpus/<target>/ (never committed), a
# crash (build-fuzz/crashes/) fails the run.
FUZZ_BUILD := build-fuzz
FUZZ_CC ?= clang-14
FUZZ_SECONDS ?= 30
FUZZ_JOBS ?= 2
FUZZ_SANFLAGS := -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all \
	-fno-omit-frame-pointer
FUZZ_SRC := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BINS = $(patsubst tests/fuzz/%.c,$(BUILD)/fuzz/%,$(FUZZ_SRC))
FUZZ_TARGETS ?= $(patsubst tests/fuzz/%.c,%,$(FUZZ_SRC))
# the agent modules the targets read (linked directly, as for test_agent; no BPF skeleton)
FUZZ_AGENT_OBJS = $(patsubst agent/%.c,$(BUILD)/fobj/agent/%.o,agent/elfid.c agent/smap.c \
	agent/mapfile.c agent/vdso.c agent/perfmap.c)

.PHONY: fuzz fuzz-build fuzz-targets
fuzz: fuzz-build $(BUILD)/bin/fleetsym-worker # fuzz_httpd's indexes are built by the worker
	@bash tests/fuzz/run.sh $(FUZZ_BUILD) $(FUZZ_SECONDS) $(FUZZ_JOBS) $(FUZZ_TARGETS)

fuzz-build:
	+@$(MAKE) --no-print-directory BUILD=$(FUZZ_BUILD) CC=$(FUZZ_CC) OPT=-O1 \
		SANFLAGS='$(FUZZ_SANFLAGS)' fuzz-targets

fuzz-targets: $(FUZZ_BINS)

$(BUILD)/fobj/agent/%.o: agent/%.c | $(GEN)/profile.pb-c.h
	@mkdir -p $(dir $@)
	$(CC) $(FS_CFLAGS) -c -o $@ $<

$(BUILD)/fuzz/%: $(call obj,tests/fuzz/%.c) $(FUZZ_AGENT_OBJS) $(LIBFLEETSYM)
	@mkdir -p $(dir $@)
	$(CC) $(FS_LDFLAGS) -fsanitize=fuzzer -o $@ $^ $(LIBS)
