/*
 * fuzz_extract - the only-keep-debug extractor (extract_debug(), upload-cli/extract.c) on an
 * ELF file given to fleetsym-upload, both plain and compressing. Its output, when it says it
 * wrote one, must be an ELF file that the server's checks accept (elfutil_open()).
 */
#include "tests/fuzz/fuzz.h"

#include "lib/elfutil.h"
#include "upload-cli/extract.h"

#include <gelf.h>

static void check_output(const char *dst_path)
{
	int efd;
	Elf *elf;
	int rc = elfutil_open(dst_path, &efd, &elf);

	if (rc) {
		fprintf(stderr, "extract_debug() wrote an ELF file that fails the checks: %d\n",
			rc);
		abort();
	}
	elfutil_close(efd, elf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char src[32], dst[32];
	struct extract_stats st;
	int fd = fuzz_memfd(data, size, src);
	int out = memfd_create("fuzz-out", MFD_CLOEXEC);

	if (out < 0)
		abort();
	snprintf(dst, sizeof(dst), "/proc/self/fd/%d", out);
	for (int compress = 0; compress < 2; compress++)
		if (extract_debug(src, dst, compress, &st) == 0)
			check_output(dst);
	close(out);
	close(fd);
	return 0;
}
