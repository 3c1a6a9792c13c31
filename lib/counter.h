/*
 * counter - statistics counters shared by request threads: relaxed atomic adds and loads on
 * plain uint64_t fields (exact totals, no ordering with anything else).
 */
#ifndef FLEETSYM_COUNTER_H
#define FLEETSYM_COUNTER_H

#include <stdint.h>

static inline void counter_add(uint64_t *p, uint64_t n)
{
	__atomic_fetch_add(p, n, __ATOMIC_RELAXED);
}

static inline uint64_t counter_get(const uint64_t *p)
{
	return __atomic_load_n(p, __ATOMIC_RELAXED);
}

#endif
