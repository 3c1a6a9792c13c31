/*
 * vec - growth for plain arrays, with a cap so that untrusted input cannot ask for unbounded
 * memory. Arrays are owned by whoever owns the (pointer, capacity) pair.
 */
#ifndef FLEETSYM_VEC_H
#define FLEETSYM_VEC_H

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

/* No array grows past this many bytes (4 GiB): -E2BIG beyond. */
#define VEC_MAX_BYTES ((size_t)4 << 30)

/* Make room for NEED elements of ESIZE bytes in *P (capacity *CAP, in elements). */
static inline int vec_reserve(void **p, size_t *cap, size_t need, size_t esize)
{
	size_t ncap;
	void *np;

	if (need <= *cap)
		return 0;
	if (need > VEC_MAX_BYTES / esize)
		return -E2BIG;
	ncap = *cap ? *cap : 16;
	while (ncap < need)
		ncap *= 2;
	if (ncap > VEC_MAX_BYTES / esize)
		ncap = VEC_MAX_BYTES / esize;
	np = realloc(*p, ncap * esize);
	if (!np)
		return -ENOMEM;
	*p = np;
	*cap = ncap;
	return 0;
}

/* Append one element: VEC_PUSH(arr, n, cap, value) evaluates to 0 or a negative errno. */
#define VEC_PUSH(arr, n, cap, val)                                                                 \
	(vec_reserve((void **)&(arr), &(cap), (n) + 1, sizeof(*(arr))) ?: ((arr)[(n)++] = (val), 0))

#endif
