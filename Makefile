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
CFLAGS := -std=gnu11 $(OPT) -g -Wall -Wextra -Werror -Wshadow -Wno-missing-field-initializers \
	-Wno-unused-parameter -D_GNU_SOURCE -MMD -MP $(SANFLAGS) $(EXTRA_CFLAGS)
LDFLAGS := $(SANFLAGS) $(EXTRA_LDFLAGS)

LIB_SRC := lib/err.c lib/log.c lib/buildid.c lib/elfutil.c
CACHE_SRC := cache/symindex.c
ENGINE_SRC := symbolizer/dwarfsym.c symbolizer/symfile.c
ENGINE_LIBS := -ldw -lelf -ljansson -lz -lstdc++ -lpthread

obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))
ENGINE_OBJ := $(call obj,$(LIB_SRC) $(CACHE_SRC) $(ENGINE_SRC))

BINS := $(BUILD)/bin/fleetsym-symbolize
UNIT_TESTS := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(wildcard tests/unit/test_*.c))
INTEGRATION := $(sort $(wildcard tests/run-*.sh))

.PHONY: all deps check unit integration bench format lint clean
.SECONDARY:
all: $(BINS) $(UNIT_TESTS)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<

$(BUILD)/bin/fleetsym-symbolize: $(ENGINE_OBJ) $(call obj,symbolizer/symbolize_main.c)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(ENGINE_LIBS)

$(BUILD)/tests/%: $(call obj,tests/unit/%.c) $(ENGINE_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(ENGINE_LIBS)

deps:
	bash .ci/deps.sh

unit: $(UNIT_TESTS)
	@fail=0; for t in $(UNIT_TESTS); do echo "== $$t"; $$t || fail=1; done; exit $$fail

integration: $(BINS)
	@BUILD=$(BUILD) bash tests/run-all.sh $(INTEGRATION)

check: all
	@$(MAKE) --no-print-directory unit integration SAN=$(SAN)

bench: all
	bash bench/symbolize.sh

format:
	clang-format -i $(wildcard */*.c */*.h tests/unit/*.c)

lint:
	clang-format --dry-run --Werror $(wildcard */*.c */*.h tests/unit/*.c)

clean:
	rm -rf build

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)

# The main job (README): for now the symbol engine on Debian's stripped libc + libc6-dbg.
.PHONY: demo
demo:
	bash .ci/deps.sh
	$(MAKE) --no-print-directory all
	bash demo/demo.sh
