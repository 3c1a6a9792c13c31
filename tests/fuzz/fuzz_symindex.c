/*
 * fuzz_symindex - the symbol index loader (symindex_open(), cache/symindex.c: header, checksum,
 * bounds) on a damaged index file, then lookups on what it accepted: every address the input
 * names and the edges of the address space must resolve without reading out of bounds.
 * symindex_open() checks magic, version, file size and a checksum before anything else, so the
 * harness also opens a copy with those four made right, to reach the bounds checks and the
 * lookups behind them. For that it includes symindex.c itself (its header layout and
 * checksum() are private) instead of linking it.
 */
#include "tests/fuzz/fuzz.h"

#include "cache/symindex.c"

static void lookups(const struct symindex *idx, const uint8_t *data, size_t size)
{
	struct sym_frame f[16];
	size_t nr, nn, nl;
	uint64_t a;

	symindex_counts(idx, &nr, &nn, &nl);
	static const uint64_t fixed[] = {0, 1, 0x1000, 0x400000, UINT32_MAX, UINT64_MAX};
	for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
		(void)symindex_lookup(idx, fixed[i], f, 16);
		symindex_lookup_symtab(idx, fixed[i], &f[0]);
	}
	for (size_t off = 0; off + 8 <= size && off < 64 * 8; off += 8) {
		memcpy(&a, data + off, 8);
		(void)symindex_lookup(idx, a, f, 16);
		(void)symindex_lookup(idx, a & 0xffffff, f, 1);
		symindex_lookup_symtab(idx, a & 0xffffff, &f[0]);
	}
}

static void open_and_look(const uint8_t *img, size_t size, const uint8_t *data, size_t dsize)
{
	struct symindex *idx;
	char path[32];
	int fd = fuzz_memfd(img, size, path);

	if (symindex_open(path, NULL, &idx) == 0) {
		lookups(idx, data, dsize);
		symindex_close(idx);
	}
	close(fd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct symidx_header h;
	uint8_t *fixed;

	open_and_look(data, size, data, size);
	if (size < sizeof(h))
		return 0;
	fixed = (uint8_t *)fuzz_str(data, size);
	memcpy(&h, fixed, sizeof(h));
	memcpy(h.magic, SYMIDX_MAGIC, sizeof(SYMIDX_MAGIC));
	h.version = SYMIDX_VERSION;
	h.size = size;
	h.hash = checksum(fixed + sizeof(h), size - sizeof(h));
	memcpy(fixed, &h, sizeof(h));
	open_and_look(fixed, size, data + sizeof(h), size - sizeof(h));
	free(fixed);
	return 0;
}
