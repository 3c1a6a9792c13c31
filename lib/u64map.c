/*
 * u64map - linear probing; the table doubles when it would pass half full.
 */
#include "lib/u64map.h"

#include "lib/vec.h"

#include <errno.h>
#include <stdlib.h>

static uint64_t mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ULL;
	x ^= x >> 33;
	return x;
}

static struct u64map_slot *find(const struct u64map *m, uint64_t key)
{
	size_t mask = m->cap - 1, i = (size_t)mix(key) & mask;

	while (m->s[i].used && m->s[i].key != key)
		i = (i + 1) & mask;
	return &m->s[i];
}

int u64map_get(const struct u64map *m, uint64_t key, uint32_t *val)
{
	const struct u64map_slot *s;

	if (!m->cap)
		return 0;
	s = find(m, key);
	if (!s->used)
		return 0;
	*val = s->val;
	return 1;
}

static int grow(struct u64map *m)
{
	size_t ncap = m->cap ? m->cap * 2 : 64;
	struct u64map old = *m;

	if (ncap > VEC_MAX_BYTES / sizeof(*m->s))
		return -E2BIG;
	m->s = calloc(ncap, sizeof(*m->s));
	if (!m->s) {
		m->s = old.s;
		return -ENOMEM;
	}
	m->cap = ncap;
	for (size_t i = 0; i < old.cap; i++)
		if (old.s[i].used)
			*find(m, old.s[i].key) = old.s[i];
	free(old.s);
	return 0;
}

int u64map_put(struct u64map *m, uint64_t key, uint32_t val)
{
	struct u64map_slot *s;
	int err;

	if ((m->n + 1) * 2 > m->cap && (err = grow(m)))
		return err;
	s = find(m, key);
	if (!s->used) {
		s->used = 1;
		s->key = key;
		m->n++;
	}
	s->val = val;
	return 0;
}

size_t u64map_bytes(const struct u64map *m)
{
	return m->cap * sizeof(*m->s);
}

void u64map_free(struct u64map *m)
{
	free(m->s);
	m->s = NULL;
	m->cap = m->n = 0;
}
