/*
 * bsearch - "the last entry at or below KEY" over sorted arrays of records that start with
 * their key (uint32_t or uint64_t): the one search every table in fleetsym needs.
 */
#ifndef FLEETSYM_BSEARCH_H
#define FLEETSYM_BSEARCH_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Index of the last of N records (ESIZE bytes each, a uint32_t key first) with key <= KEY,
 * or -1. */
static inline long bsearch_last_le32(const void *base, size_t n, size_t esize, uint32_t key)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		uint32_t x;

		memcpy(&x, (const char *)base + mid * esize, sizeof(x));
		if (x <= key)
			lo = mid + 1;
		else
			hi = mid;
	}
	return (long)lo - 1;
}

/* The same with a uint64_t key first. */
static inline long bsearch_last_le64(const void *base, size_t n, size_t esize, uint64_t key)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		uint64_t x;

		memcpy(&x, (const char *)base + mid * esize, sizeof(x));
		if (x <= key)
			lo = mid + 1;
		else
			hi = mid;
	}
	return (long)lo - 1;
}

#endif
