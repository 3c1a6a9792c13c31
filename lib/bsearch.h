/*
 * bsearch - "the last entry at or below KEY" over sorted arrays of records that start with
 * their key (uint32_t or uint64_t): the one search every table in fleetsym needs.
 */
#ifndef FLEETSYM_BSEARCH_H
#define FLEETSYM_BSEARCH_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Index of the last of N records (ESIZE bytes each, sorted by a KBYTES-byte unsigned key, 4 or
 * 8, at byte KOFF of each record) with key <= KEY, or -1. */
static inline long bsearch_last_le(const void *base, size_t n, size_t esize, size_t koff,
				   size_t kbytes, uint64_t key)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const char *p = (const char *)base + mid * esize + koff;
		uint64_t x;

		if (kbytes == sizeof(uint32_t)) {
			uint32_t x32;

			memcpy(&x32, p, sizeof(x32));
			x = x32;
		} else {
			memcpy(&x, p, sizeof(x));
		}
		if (x <= key)
			lo = mid + 1;
		else
			hi = mid;
	}
	return (long)lo - 1;
}

/* The last record at or below KEY where a uint32_t key comes first. */
static inline long bsearch_last_le32(const void *base, size_t n, size_t esize, uint32_t key)
{
	return bsearch_last_le(base, n, esize, 0, sizeof(uint32_t), key);
}

/* The same with a uint64_t key first. */
static inline long bsearch_last_le64(const void *base, size_t n, size_t esize, uint64_t key)
{
	return bsearch_last_le(base, n, esize, 0, sizeof(uint64_t), key);
}

#endif
