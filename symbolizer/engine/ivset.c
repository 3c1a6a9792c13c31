/*
 * ivset - sorted disjoint interval vectors; a claim edits the parent in place around the window
 * of intervals it overlaps, so a function with many inlined children stays cheap.
 */
#include "symbolizer/engine/ivset.h"

#include "lib/bsearch.h"
#include "lib/vec.h"

#include <stddef.h>
#include <string.h>

void ivset_clear(struct ivset *s)
{
	s->n = 0;
}

void ivset_free(struct ivset *s)
{
	free(s->v);
	memset(s, 0, sizeof(*s));
}

int ivset_add(struct ivset *s, uint64_t lo, uint64_t hi)
{
	struct iv x = {lo, hi};

	if (lo >= hi)
		return 0;
	return VEC_PUSH(s->v, s->n, s->cap, x);
}

static int iv_cmp(const void *a, const void *b)
{
	const struct iv *x = a, *y = b;

	if (x->lo != y->lo)
		return x->lo < y->lo ? -1 : 1;
	return x->hi < y->hi ? -1 : x->hi > y->hi;
}

void ivset_normalize(struct ivset *s)
{
	size_t k = 0;

	if (s->n < 2)
		return;
	qsort(s->v, s->n, sizeof(*s->v), iv_cmp);
	for (size_t i = 1; i < s->n; i++) {
		if (s->v[i].lo <= s->v[k].hi) {
			if (s->v[i].hi > s->v[k].hi)
				s->v[k].hi = s->v[i].hi;
		} else {
			s->v[++k] = s->v[i];
		}
	}
	s->n = k + 1;
}

/* First interval of S with hi > X (the intervals are disjoint and sorted, so their ends are
 * sorted too). */
static size_t first_above(const struct ivset *s, uint64_t x)
{
	ptrdiff_t i = bsearch_last_le(s->v, s->n, sizeof(*s->v), offsetof(struct iv, hi),
				      sizeof(s->v->hi), x);
	return (size_t)(i + 1);
}

int ivset_claim(struct ivset *parent, const struct ivset *want, struct ivset *out)
{
	int err;

	ivset_clear(out);
	for (size_t w = 0; w < want->n; w++) {
		uint64_t lo = want->v[w].lo, hi = want->v[w].hi;
		size_t i = first_above(parent, lo), j = i;
		struct iv keep[2];
		size_t nkeep = 0;

		while (j < parent->n && parent->v[j].lo < hi) {
			const struct iv *p = &parent->v[j];
			uint64_t a = p->lo > lo ? p->lo : lo, b = p->hi < hi ? p->hi : hi;

			err = ivset_add(out, a, b);
			if (err)
				return err;
			j++;
		}
		if (i == j)
			continue;
		/* parent intervals i..j-1 overlap [lo, hi): keep what sticks out on either side */
		if (parent->v[i].lo < lo)
			keep[nkeep++] = (struct iv){parent->v[i].lo, lo};
		if (parent->v[j - 1].hi > hi)
			keep[nkeep++] = (struct iv){hi, parent->v[j - 1].hi};
		if (nkeep > j - i) {
			err = vec_reserve((void **)&parent->v, &parent->cap, parent->n + 1,
					  sizeof(*parent->v));
			if (err)
				return err;
		}
		memmove(&parent->v[i + nkeep], &parent->v[j], (parent->n - j) * sizeof(*parent->v));
		memcpy(&parent->v[i], keep, nkeep * sizeof(*keep));
		parent->n = parent->n - (j - i) + nkeep;
	}
	return 0;
}
