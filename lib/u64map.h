/*
 * u64map - an open-addressing hash map from 64-bit keys to 32-bit values, for the query side's
 * many small lookups: (build-ID cache, file offset) → cached answer, (parent node, function) →
 * tree node, (function name, file) → function id.
 *
 * Linear probing over a power-of-two table at load factor <= 1/2; keys are hashed with a
 * 64-bit mixer, so packed keys (two 32-bit ids) spread well. No deletion: every user builds a
 * map, reads it, and frees it whole. Growth is capped like lib/vec.h (-E2BIG, -ENOMEM).
 */
#ifndef FLEETSYM_U64MAP_H
#define FLEETSYM_U64MAP_H

#include <stddef.h>
#include <stdint.h>

struct u64map_slot {
	uint64_t key;
	uint32_t val;
	uint32_t used;
};

/* Plain data; zero-init is an empty map. Owned by whoever holds it; free with u64map_free(). */
struct u64map {
	struct u64map_slot *s;
	size_t cap; /* a power of two, or 0 */
	size_t n;
};

/* The value of KEY into *VAL: 1 when present, 0 when not. */
int u64map_get(const struct u64map *m, uint64_t key, uint32_t *val);

/* 1 when KEY is in M (a map used as a set), 0 when not. */
static inline int u64map_has(const struct u64map *m, uint64_t key)
{
	uint32_t v;

	return u64map_get(m, key, &v);
}

/* Set KEY to VAL (insert or overwrite). 0, -ENOMEM or -E2BIG. */
int u64map_put(struct u64map *m, uint64_t key, uint32_t val) __attribute__((warn_unused_result));

/* Bytes held by the table. */
size_t u64map_bytes(const struct u64map *m);

void u64map_free(struct u64map *m);

/* Two 32-bit ids as one key. */
static inline uint64_t u64map_pair(uint32_t a, uint32_t b)
{
	return (uint64_t)a << 32 | b;
}

#endif
