/*
 * demangle - see demangle.h. Rust first: a legacy Rust name is also a valid C++ name, which
 * __cxa_demangle would print with its hash.
 */
#include "lib/demangle.h"

#include <libiberty/demangle.h>
#include <stdlib.h>

extern char *__cxa_demangle(const char *mangled, char *buf, size_t *len, int *status);

char *demangle(const char *name)
{
	char *out;
	int status = -1;

	if (name[0] != '_' || (name[1] != 'Z' && name[1] != 'R'))
		return NULL;
	out = rust_demangle(name, DMGL_NO_OPTS); /* NULL unless Rust (legacy or v0) */
	if (out || name[1] != 'Z')
		return out;
	out = __cxa_demangle(name, NULL, NULL, &status);
	if (status != 0) {
		free(out);
		return NULL;
	}
	return out;
}
