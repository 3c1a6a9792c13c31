/*
 * strpool - interned strings in one growing buffer, addressed by offset.
 *
 * The query side copies every function and file name it returns out of caches that may change
 * under it; interning makes each distinct name one copy, and equal offsets mean equal strings,
 * so grouping by function is an integer comparison. Offsets stay valid as the pool grows;
 * pointers (strpool_str()) only until the next strpool_intern().
 */
#ifndef FLEETSYM_STRPOOL_H
#define FLEETSYM_STRPOOL_H

#include <stddef.h>
#include <stdint.h>

#include "lib/u64map.h"

/* "No string": what NULL interns to. */
#define STRPOOL_NONE UINT32_MAX

/* Plain data; zero-init is an empty pool with the default cap. Free with strpool_free(). */
struct strpool {
	char *buf;
	size_t len, cap;
	size_t max;	  /* bytes of text; 0 = 1 GiB (-E2BIG beyond) */
	struct u64map ix; /* hash (probed on collision) → offset */
};

/* Intern S (NULL gives STRPOOL_NONE) into *OFF. 0, -ENOMEM or -E2BIG. */
int strpool_intern(struct strpool *p, const char *s, uint32_t *off)
    __attribute__((warn_unused_result));

/* Same for the N bytes at S (no NUL inside). */
int strpool_intern_n(struct strpool *p, const char *s, size_t n, uint32_t *off)
    __attribute__((warn_unused_result));

/* The string at OFF; NULL for STRPOOL_NONE. Borrowed until the next intern or free. */
static inline const char *strpool_str(const struct strpool *p, uint32_t off)
{
	return off == STRPOOL_NONE ? NULL : p->buf + off;
}

void strpool_free(struct strpool *p);

#endif
