/*
 * smap - chained hashing over a power-of-two bucket array that doubles at load factor 1. Each
 * entry is one allocation: the node, its key and its string back to back.
 */
#include "agent/smap.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct snode {
	struct snode *next;
	uint64_t hash;
	struct smap_ent e;
};

struct smap {
	struct snode **b;
	size_t nb, n, max;
};

/* Not a lib/u64map: the keys are strings (u64map's are integers), and each entry, key and
 * string, is one allocation that smap_put() replaces in place. */
static uint64_t shash(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 0x100000001b3ULL;
	return h;
}

int smap_new(size_t max, struct smap **out)
{
	struct smap *m = calloc(1, sizeof(*m));

	if (!m)
		return -ENOMEM;
	m->nb = 64;
	m->max = max;
	m->b = calloc(m->nb, sizeof(*m->b));
	if (!m->b) {
		free(m);
		return -ENOMEM;
	}
	*out = m;
	return 0;
}

void smap_clear(struct smap *m)
{
	for (size_t i = 0; i < m->nb; i++) {
		struct snode *n = m->b[i], *next;

		for (; n; n = next) {
			next = n->next;
			free(n);
		}
		m->b[i] = NULL;
	}
	m->n = 0;
}

void smap_free(struct smap *m)
{
	if (!m)
		return;
	smap_clear(m);
	free(m->b);
	free(m);
}

static struct snode **slot_of(const struct smap *m, const char *key, uint64_t h)
{
	struct snode **p = &m->b[h & (m->nb - 1)];

	for (; *p; p = &(*p)->next)
		if ((*p)->hash == h && strcmp((*p)->e.key, key) == 0)
			break;
	return p;
}

const struct smap_ent *smap_get(const struct smap *m, const char *key)
{
	struct snode *n = *slot_of(m, key, shash(key));

	return n ? &n->e : NULL;
}

static void grow(struct smap *m)
{
	size_t nb = m->nb * 2;
	struct snode **b = calloc(nb, sizeof(*b));

	if (!b)
		return; /* stays correct, only slower */
	for (size_t i = 0; i < m->nb; i++) {
		struct snode *n = m->b[i], *next;

		for (; n; n = next) {
			next = n->next;
			n->next = b[n->hash & (nb - 1)];
			b[n->hash & (nb - 1)] = n;
		}
	}
	free(m->b);
	m->b = b;
	m->nb = nb;
}

int smap_put(struct smap *m, const char *key, uint64_t num, const char *str)
{
	uint64_t h = shash(key);
	struct snode **p = slot_of(m, key, h), *old = *p, *n;
	size_t klen = strlen(key) + 1, slen = str ? strlen(str) + 1 : 0;
	char *mem;

	if (!old && m->n >= m->max)
		return -E2BIG;
	n = malloc(sizeof(*n) + klen + slen);
	if (!n)
		return -ENOMEM;
	mem = (char *)(n + 1);
	memcpy(mem, key, klen);
	n->hash = h;
	n->e.key = mem;
	n->e.num = num;
	n->e.str = NULL;
	if (str) {
		memcpy(mem + klen, str, slen);
		n->e.str = mem + klen;
	}
	if (old) {
		n->next = old->next;
		*p = n;
		free(old);
		return 0;
	}
	n->next = NULL;
	*p = n;
	if (++m->n > m->nb)
		grow(m);
	return 0;
}

size_t smap_count(const struct smap *m)
{
	return m->n;
}
