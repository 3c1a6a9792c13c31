/*
 * fuzz.h - what the libFuzzer targets of tests/fuzz/ share: the input as a file for parsers
 * that take a path (a memfd, named /proc/self/fd/N), and a NUL-terminated copy of it.
 */
#ifndef FLEETSYM_FUZZ_H
#define FLEETSYM_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A memfd holding DATA, its path into PATH (32 bytes); -1 on failure (the run aborts: a
 * harness that cannot make its file would fuzz nothing). */
static inline int fuzz_memfd(const uint8_t *data, size_t size, char path[32])
{
	int fd = memfd_create("fuzz", MFD_CLOEXEC);
	size_t off = 0;

	if (fd < 0)
		abort();
	while (off < size) {
		ssize_t n = write(fd, data + off, size - off);

		if (n <= 0)
			abort();
		off += (size_t)n;
	}
	snprintf(path, 32, "/proc/self/fd/%d", fd);
	return fd;
}

/* DATA as a C string (owned by the caller), NULs kept inside. */
static inline char *fuzz_str(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);

	if (!s)
		abort();
	memcpy(s, data, size);
	s[size] = 0;
	return s;
}

#endif
