/*
 * loadrebuild - walks the PT_LOAD headers in order, placing each segment at the first offset
 * past the previous one that the alignment allows (see the header for why that is the
 * original layout, and which headers must agree before it is trusted).
 */
#include "symbolizer/engine/loadrebuild.h"

#include "lib/elfutil.h"

#include <string.h>

/* The PT_NOTEs inside the first segment sit where the linker put them. */
static int notes_in_place(Elf *elf, size_t nph, const GElf_Phdr *first)
{
	for (size_t i = 0; i < nph; i++) {
		GElf_Phdr ph;

		if (!gelf_getphdr(elf, (int)i, &ph) || ph.p_type != PT_NOTE)
			continue;
		if (ph.p_vaddr < first->p_vaddr || ph.p_vaddr - first->p_vaddr >= first->p_memsz)
			continue;
		if (ph.p_offset != ph.p_vaddr - first->p_vaddr)
			return 0;
	}
	return 1;
}

static int pow2(uint64_t a)
{
	return a && !(a & (a - 1));
}

static enum loadrebuild_how rebuild(Elf *elf, struct loadmap *m)
{
	GElf_Phdr load[LOADMAP_MAX_SEGS];
	size_t nph = 0, n = 0;
	uint64_t end = 0;

	if (elf_getphdrnum(elf, &nph) != 0)
		return LOADREBUILD_NONE;
	for (size_t i = 0; i < nph; i++) {
		GElf_Phdr ph;

		if (!gelf_getphdr(elf, (int)i, &ph) || ph.p_type != PT_LOAD)
			continue;
		if (n == LOADMAP_MAX_SEGS)
			return LOADREBUILD_NONE;
		load[n++] = ph;
	}
	if (n == 0 || load[0].p_offset != 0 || !pow2(load[0].p_align) ||
	    load[0].p_vaddr % load[0].p_align != 0 || !notes_in_place(elf, nph, &load[0]))
		return LOADREBUILD_NONE;
	m->nsegs = 0;
	for (size_t i = 0; i < n; i++) {
		const GElf_Phdr *ph = &load[i];
		uint64_t a = ph->p_align, off;

		if (!pow2(a) || (i && ph->p_vaddr < load[i - 1].p_vaddr + load[i - 1].p_memsz))
			return LOADREBUILD_NONE;
		if (i && (load[i - 1].p_flags & PF_W))
			return LOADREBUILD_NONE; /* its bss hides where its bytes ended */
		/* the lowest offset >= end with offset ≡ vaddr (mod a) */
		off = (end & ~(a - 1)) + (ph->p_vaddr & (a - 1));
		if (off < end)
			off += a;
		if (off < end || off > UINT64_MAX - ph->p_memsz)
			return LOADREBUILD_NONE;
		m->segs[m->nsegs++] = (struct loadmap_seg){off, ph->p_vaddr, ph->p_memsz};
		end = off + ph->p_memsz;
	}
	m->usable = 1;
	return LOADREBUILD_REBUILT;
}

enum loadrebuild_how loadrebuild_from_elf(Elf *elf, struct loadmap *m)
{
	enum loadrebuild_how how;

	loadmap_from_elf(elf, m);
	if (m->usable)
		return LOADREBUILD_EXACT;
	how = rebuild(elf, m);
	if (how == LOADREBUILD_NONE) {
		m->nsegs = 0;
		m->usable = 0;
	}
	return how;
}

int loadrebuild_from_path(const char *path, struct loadmap *m, enum loadrebuild_how *how)
{
	Elf *elf = NULL;
	int fd = -1, err;

	err = elfutil_open(path, &fd, &elf);
	if (err)
		return err;
	*how = loadrebuild_from_elf(elf, m);
	elfutil_close(fd, elf);
	return 0;
}

const char *loadrebuild_how_name(enum loadrebuild_how how)
{
	switch (how) {
	case LOADREBUILD_EXACT: return "program headers";
	case LOADREBUILD_REBUILT: return "rebuilt program headers";
	default: return "none";
	}
}
