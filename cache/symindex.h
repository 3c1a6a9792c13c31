/*
 * symindex - the compact, mmap-able symbol index of one ELF file, and the lookup shared by the
 * index and the in-memory tables the DWARF reader builds.
 *
 * The data model is a handful of flat arrays (struct symview): a sorted table of address ranges
 * where each entry names the innermost function or inlined instance ("node") that covers it,
 * the nodes themselves (function, parent node, call site), the functions (raw and demangled
 * names), a sorted line table, a sorted symbol table for code without DWARF, and one string
 * table. The DWARF reader fills exactly these arrays; the index file stores the same tables
 * (ranges, nodes and lines packed into small blocks of varint-coded entries, the rest as they are)
 * behind a checked header, and one lookup routine serves both forms, so a warm lookup is a few
 * binary searches in an mmap that never touch libdw, and cold and warm answers cannot differ.
 *
 * Addresses are stored as 32-bit offsets from view->base (the lowest PT_LOAD address).
 */
#ifndef FLEETSYM_SYMINDEX_H
#define FLEETSYM_SYMINDEX_H

#include <stddef.h>
#include <stdint.h>

#define SYMIDX_NONE    UINT32_MAX
#define SYMIDX_VERSION 3

/* One entry of the flattened range table: [addr, next entry's addr) belongs to NODE
 * (SYMIDX_NONE: no DWARF function there). Sorted by addr, unique. */
struct symidx_range {
	uint32_t addr;
	uint32_t node;
};

enum { SYMIDX_NODE_INLINED = 1 };

/* A concrete subprogram or inlined instance. call_* describe where an inlined node was
 * called from (in its parent); they are zero for out-of-line functions. */
struct symidx_node {
	uint32_t func;	    /* index into funcs */
	uint32_t parent;    /* enclosing node, SYMIDX_NONE for an out-of-line function */
	uint32_t call_file; /* string offset or SYMIDX_NONE */
	uint32_t call_line;
	uint16_t call_col;
	uint16_t flags; /* SYMIDX_NODE_* */
};

/* A function name: NAME as in the file (linkage name when there is one), DEMANGLED its
 * demangled form (equal to NAME when it is not mangled). Both are string offsets. In an index
 * file DEMANGLED is SYMIDX_NONE where it equals demangle(NAME): the index demangles such a
 * name on first use and keeps the result until it is closed. Demangled C++ names are long
 * (ceph-osd: 68 MB of them against 21 MB of linkage names); storing them made an index half
 * the size of the compressed debug file. */
struct symidx_func {
	uint32_t name;
	uint32_t demangled;
};

/* A line row: [addr, next row's addr) is FILE:LINE:COL; FILE == SYMIDX_NONE marks a gap. */
struct symidx_line {
	uint32_t addr;
	uint32_t file;
	uint32_t line;
	uint32_t col;
};

/* An ELF symbol, sorted by addr then by preference (binding, smaller size first). */
struct symidx_sym {
	uint32_t addr;
	uint32_t size;
	uint32_t func;
	uint32_t bind; /* 3 global, 2 weak, 1 local, as libdwfl ranks them */
};

/* qsort() order of a symbol table: by address, and within one address the preferred symbol
 * last (stronger binding, then smaller size), as the lookup scans backwards. */
int symidx_sym_cmp(const void *a, const void *b);

/* The arrays, borrowed from their owner (an open index or the DWARF reader). */
struct symview {
	uint64_t base;
	const struct symidx_range *ranges;
	size_t nranges;
	const struct symidx_node *nodes;
	size_t nnodes;
	const struct symidx_func *funcs;
	size_t nfuncs;
	const struct symidx_line *lines;
	size_t nlines;
	const struct symidx_sym *syms;
	size_t nsyms;
	const char *strs;
	size_t strs_size;
};

enum sym_source {
	SYM_SRC_NONE,	/* nothing known: print module+offset */
	SYM_SRC_SYMTAB, /* ELF symbol table name only */
	SYM_SRC_DWARF,	/* DWARF function (and inline chain) */
};

/* One frame of an answer. Strings are borrowed from the view's owner: valid until the next
 * lookup on that owner or until it is closed. */
struct sym_frame {
	const char *function; /* demangled; NULL when unknown */
	const char *linkage;  /* as in the file; NULL when unknown */
	const char *file;     /* NULL when unknown */
	uint32_t line;
	uint32_t column;
	uint8_t inlined; /* this frame was inlined into the next one */
	uint8_t source;	 /* enum sym_source */
};

/* Resolve ADDR (an ELF virtual address) into at most MAX frames, innermost first. Always
 * writes at least one frame (source SYM_SRC_NONE when nothing is known) and returns how many;
 * MAX must be >= 1. Never fails: out-of-range references in a damaged view give less. */
int symview_lookup(const struct symview *v, uint64_t addr, struct sym_frame *out, int max);

/* Only the ELF symbol table's answer for ADDR (one frame, SYM_SRC_SYMTAB or SYM_SRC_NONE). */
void symview_lookup_symtab(const struct symview *v, uint64_t addr, struct sym_frame *out);

struct symindex;

/* Write V to PATH atomically (temp file + fsync + rename), ranges, nodes and lines packed in
 * blocks of varints. Returns 0 or a negative errno. */
int symindex_write(const struct symview *v, const char *build_id, const char *path)
    __attribute__((warn_unused_result));

/* Open and verify the index at PATH (checksum, version, bounds). Verified once: a full check
 * leaves a stamp of the file (an xattr: size, mtime, inode, checksum); an open that finds the
 * stamp matching skips the checksum pass and reads nothing ahead, so reopening costs the same
 * for any size, while a file written since is checked again. BUILD_ID, if not NULL, must
 * match. On success sets *OUT (free with symindex_close()). -ENOENT when there is none,
 * -ERR_BADINDEX when it is damaged, truncated, or of another version. Lookups on an open index
 * are thread-safe. */
int symindex_open(const char *path, const char *build_id, struct symindex **out)
    __attribute__((warn_unused_result));

/* symview_lookup() and symview_lookup_symtab() on an open index. Strings are borrowed until
 * symindex_close(). */
int symindex_lookup(const struct symindex *idx, uint64_t addr, struct sym_frame *out, int max);
void symindex_lookup_symtab(const struct symindex *idx, uint64_t addr, struct sym_frame *out);

/* Entry counts of the index, for reports: ranges, nodes, lines. */
void symindex_counts(const struct symindex *idx, size_t *nranges, size_t *nnodes, size_t *nlines);

void symindex_close(struct symindex *idx);

#endif
