/*
 * loadmap - keeps the file-backed PT_LOAD segments; a segment that is executable in memory
 * but has no bytes in the file (p_filesz == 0 < p_memsz) is the mark of a debug-only copy
 * whose offsets were zeroed, and makes the whole map unusable.
 */
#include "symbolizer/engine/loadmap.h"

#include <errno.h>

void loadmap_from_elf(Elf *elf, struct loadmap *m)
{
	size_t nph = 0;
	int zeroed = 0;

	m->nsegs = 0;
	m->usable = 0;
	if (elf_getphdrnum(elf, &nph) != 0)
		return;
	for (size_t i = 0; i < nph && m->nsegs < LOADMAP_MAX_SEGS; i++) {
		GElf_Phdr ph;

		if (!gelf_getphdr(elf, (int)i, &ph) || ph.p_type != PT_LOAD)
			continue;
		if (ph.p_filesz == 0) {
			if ((ph.p_flags & PF_X) && ph.p_memsz > 0)
				zeroed = 1;
			continue;
		}
		m->segs[m->nsegs++] = (struct loadmap_seg){ph.p_offset, ph.p_vaddr, ph.p_filesz};
	}
	m->usable = m->nsegs > 0 && !zeroed;
}

int loadmap_offset_to_vaddr(const struct loadmap *m, uint64_t off, uint64_t *vaddr)
{
	if (!m->usable)
		return -ENODATA;
	for (int i = 0; i < m->nsegs; i++) {
		const struct loadmap_seg *s = &m->segs[i];

		if (off >= s->offset && off - s->offset < s->filesz) {
			*vaddr = s->vaddr + (off - s->offset);
			return 0;
		}
	}
	return -ERANGE;
}
