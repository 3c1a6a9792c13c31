/*
 * loadrebuild - file offset → ELF address for a separate debug file whose program headers were
 * zeroed by `objcopy --only-keep-debug` (Debian's dbgsym packages, /usr/lib/debug, most
 * debuginfod servers), which loadmap refuses.
 *
 * Such a file keeps every PT_LOAD's p_vaddr, p_memsz and p_align, and the first segment's real
 * bytes (the ELF header and the notes) at their original offsets; only the later segments lose
 * p_offset and p_filesz. Linkers (ld.bfd, gold, lld, mold) lay segments out in address order,
 * each at the lowest file offset past the previous one's bytes that is congruent to its
 * address modulo p_align (the mmap rule): they never pad by a whole alignment unit more.
 * Rebuilding that layout gives the original offsets; it is done only when the headers allow
 * it: the first PT_LOAD at offset 0 with an aligned address, every PT_NOTE of the first
 * segment at its original place (offset = address - segment address), power-of-two
 * alignments, addresses ascending, and no writable segment (whose file size bss hides) before
 * the last one. Read-only and code segments have p_filesz == p_memsz in the original.
 *
 * Verified against ld.bfd outputs (PIE, shared, -z separate-code), Debian's libc6-dbg and the
 * test fixtures: the rebuilt map equals the executable's own. An executable, or a debug file
 * made by fleetsym-upload or `eu-strip -f` (which keep the headers), needs no rebuild.
 */
#ifndef FLEETSYM_LOADREBUILD_H
#define FLEETSYM_LOADREBUILD_H

#include <gelf.h>

#include "symbolizer/engine/loadmap.h"

enum loadrebuild_how {
	LOADREBUILD_NONE,    /* no usable map: offsets cannot be translated */
	LOADREBUILD_EXACT,   /* the file's own program headers */
	LOADREBUILD_REBUILT, /* rebuilt from zeroed headers (see above) */
};

/* Fill *M from ELF's program headers, rebuilding them when they were zeroed. Returns how;
 * with LOADREBUILD_NONE, M->usable is 0. */
enum loadrebuild_how loadrebuild_from_elf(Elf *elf, struct loadmap *m);

/* Same for the ELF file at PATH (opened read-only and checked). -errno, -ERR_NOTELF,
 * -ERR_BADELF, or 0 with *HOW set. */
int loadrebuild_from_path(const char *path, struct loadmap *m, enum loadrebuild_how *how)
    __attribute__((warn_unused_result));

/* "program headers", "rebuilt program headers", "none". */
const char *loadrebuild_how_name(enum loadrebuild_how how);

#endif
