/*
 * fuzz_elfid - the agent's build ID reader (agent/elfid.c: ELF header, program headers, PT_NOTE
 * notes) on the bytes of a mapped file, from memory (the vDSO path) and through a file
 * descriptor (pread(), the path for every mapped file). When both find a build ID it must be
 * the same one (their errors may differ: a zero-length note past the end fails only from
 * memory).
 */
#include "tests/fuzz/fuzz.h"

#include "agent/elfid.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char a[BUILDID_HEX_MAX], b[BUILDID_HEX_MAX], path[32];
	int fd = fuzz_memfd(data, size, path);
	int ra = elfid_from_mem(data, size, a);
	int rb = elfid_from_fd(fd, b);

	if (ra == 0 && rb == 0 && strcmp(a, b)) {
		fprintf(stderr, "from memory %d %s, from the fd %d %s\n", ra, ra ? "" : a, rb,
			rb ? "" : b);
		abort();
	}
	close(fd);
	return 0;
}
