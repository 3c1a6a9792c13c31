/*
 * loadmap - file offset → ELF virtual address through the PT_LOAD program headers of one file.
 *
 * The agent ships frames as (build ID, file offset) and the symbol engine works on ELF virtual
 * addresses (ARCHITECTURE.md, "Addresses"). An executable's own PT_LOAD headers translate
 * exactly. A separate .debug file made by `objcopy --only-keep-debug` (Debian's dbgsym
 * packages, most distributions) keeps the headers but zeroes p_offset and p_filesz of every
 * segment it has no bytes for, so its code segment says nothing about file offsets; such a
 * map is refused (-ENODATA) rather than guessed. `eu-strip -f` keeps them intact.
 */
#ifndef FLEETSYM_LOADMAP_H
#define FLEETSYM_LOADMAP_H

#include <gelf.h>
#include <stdint.h>

#define LOADMAP_MAX_SEGS 16

struct loadmap_seg {
	uint64_t offset, vaddr, filesz;
};

/* Plain data, no ownership. nsegs == 0 with usable == 0: no usable headers. */
struct loadmap {
	struct loadmap_seg segs[LOADMAP_MAX_SEGS];
	int nsegs;
	int usable; /* the headers translate offsets (see above) */
};

/* Fill *M from ELF's program headers. Never fails: a file without usable headers gives a map
 * whose translations return -ENODATA. */
void loadmap_from_elf(Elf *elf, struct loadmap *m);

/* Translate OFF. 0 and *VADDR; -ENODATA when the map is not usable; -ERANGE when no PT_LOAD
 * segment holds OFF. */
int loadmap_offset_to_vaddr(const struct loadmap *m, uint64_t off, uint64_t *vaddr);

#endif
