/*
 * strpool - the index maps a 64-bit FNV-1a hash of the text to its offset; a collision (two
 * texts, one hash) moves on to a rehash of the key until a free or matching slot turns up.
 */
#include "lib/strpool.h"

#include "lib/vec.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_MAX ((size_t)1 << 30)

static uint64_t hash(const char *s, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)s[i]) * 0x100000001b3ULL;
	return h;
}

int strpool_intern_n(struct strpool *p, const char *s, size_t n, uint32_t *off)
{
	size_t max = p->max ? p->max : DEFAULT_MAX;
	uint64_t key = hash(s, n);
	uint32_t o;
	int err;

	if (max > UINT32_MAX - 1)
		max = UINT32_MAX - 1;
	while (u64map_get(&p->ix, key, &o)) {
		if (!strncmp(p->buf + o, s, n) && p->buf[o + n] == '\0') {
			*off = o;
			return 0;
		}
		key = key * 0x9e3779b97f4a7c15ULL + 1;
	}
	if (n + 1 > max - p->len)
		return -E2BIG;
	err = vec_reserve((void **)&p->buf, &p->cap, p->len + n + 1, 1);
	if (err)
		return err;
	o = (uint32_t)p->len;
	err = u64map_put(&p->ix, key, o);
	if (err)
		return err;
	memcpy(p->buf + p->len, s, n);
	p->buf[p->len + n] = '\0';
	p->len += n + 1;
	*off = o;
	return 0;
}

int strpool_intern(struct strpool *p, const char *s, uint32_t *off)
{
	if (!s) {
		*off = STRPOOL_NONE;
		return 0;
	}
	return strpool_intern_n(p, s, strlen(s), off);
}

void strpool_free(struct strpool *p)
{
	free(p->buf);
	p->buf = NULL;
	p->len = p->cap = 0;
	u64map_free(&p->ix);
}
