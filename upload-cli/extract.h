/*
 * extract - write the part of an ELF file that symbolization needs, in-process with libelf:
 * what `objcopy --only-keep-debug` keeps. Every section header stays (addresses and sizes are
 * needed to map addresses); contents are kept only for debug sections (.debug_*, .zdebug_*,
 * .gnu_debugaltlink, .gdb_index), the symbol table and its strings, notes (the build ID) and the
 * section name table; every other section becomes SHT_NOBITS. Program headers are copied.
 * Optionally the kept .debug_* sections are zlib-compressed (SHF_COMPRESSED), which is how the
 * file travels: smaller on the wire, and the server decompresses it once on the way in.
 */
#ifndef FLEETSYM_EXTRACT_H
#define FLEETSYM_EXTRACT_H

#include <stdint.h>

struct extract_stats {
	uint64_t in_size;	/* bytes of the source file */
	uint64_t out_size;	/* bytes written */
	unsigned sections_kept; /* with contents */
	unsigned sections_emptied;
};

/* Extract SRC into DST (created, or truncated; the caller picks a temp name and renames).
 * COMPRESS: compress the uncompressed .debug_* sections. Errors: -errno, -ERR_NOTELF,
 * -ERR_BADELF, -ERR_NODWARF (nothing worth keeping: no debug sections and no symtab). */
int extract_debug(const char *src, const char *dst, int compress, struct extract_stats *st)
    __attribute__((warn_unused_result));

#endif
