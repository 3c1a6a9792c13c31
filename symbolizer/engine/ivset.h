/*
 * ivset - sets of address intervals, kept sorted and disjoint, with the one operation the
 * DWARF reader needs: a child scope claims the part of its parent's remaining space that its
 * own ranges cover.
 *
 * That operation is libdw's scope rule made flat: dwarf_getscopes() descends, at each level, into
 * the FIRST child (in DIE order) whose ranges contain the address. So a child owns its ranges
 * minus whatever earlier siblings already took, within what its parent owns; what is left of a
 * scope after all its children have claimed is where it is the innermost.
 */
#ifndef FLEETSYM_IVSET_H
#define FLEETSYM_IVSET_H

#include <stddef.h>
#include <stdint.h>

struct iv {
	uint64_t lo, hi; /* [lo, hi) */
};

/* Plain data: zero-init is the empty set; free with ivset_free(). */
struct ivset {
	struct iv *v;
	size_t n, cap;
};

void ivset_clear(struct ivset *s);
void ivset_free(struct ivset *s);

/* Add [LO, HI) without ordering; call ivset_normalize() before using the set. */
int ivset_add(struct ivset *s, uint64_t lo, uint64_t hi) __attribute__((warn_unused_result));

/* Sort and merge overlapping or touching intervals. */
void ivset_normalize(struct ivset *s);

/* OUT = WANT ∩ *PARENT, and remove OUT from *PARENT. WANT and PARENT normalized; OUT is
 * cleared first and comes out normalized. */
int ivset_claim(struct ivset *parent, const struct ivset *want, struct ivset *out)
    __attribute__((warn_unused_result));

#endif
