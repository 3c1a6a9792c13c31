/*
 * smap - a small string-keyed hash map for the agent's caches: each entry holds a number and
 * an optional string. Bounded: past MAX entries smap_put() returns -E2BIG and the owner decides
 * (usually smap_clear() and start over: these are caches).
 */
#ifndef FLEETSYM_AGENT_SMAP_H
#define FLEETSYM_AGENT_SMAP_H

#include <stddef.h>
#include <stdint.h>

struct smap;

struct smap_ent {
	const char *key;
	uint64_t num;
	const char *str; /* NULL when put without one */
};

/* New empty map of at most MAX entries. Sets *OUT (free with smap_free()). */
int smap_new(size_t max, struct smap **out) __attribute__((warn_unused_result));
void smap_free(struct smap *m);

/* The entry for KEY, or NULL. Borrowed until the next smap_put() or smap_clear(). */
const struct smap_ent *smap_get(const struct smap *m, const char *key);

/* Insert or replace KEY's entry (KEY and STR are copied). -E2BIG when full, -ENOMEM. */
int smap_put(struct smap *m, const char *key, uint64_t num, const char *str)
    __attribute__((warn_unused_result));

void smap_clear(struct smap *m);
size_t smap_count(const struct smap *m);

#endif
