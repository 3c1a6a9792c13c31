/*
 * dwarfsym - reads one ELF file's DWARF and symbol table into the arrays of struct symview
 * (cache/symindex.h), lazily one compile unit at a time for cold lookups, or all at once to
 * write an index.
 *
 * Each CU is walked once, on the first address that falls in it: every subprogram and inlined
 * instance with code becomes a node (hash-consed: same function, parent and call site = same
 * node), their ranges are flattened into "innermost node per address", and the CU's line rows
 * are reduced to libdw's own answer per address (the last row at or below it). Names are taken
 * as eu-addr2line takes them (linkage name, else name, following abstract origins and
 * specifications across CUs and into a dwz alt file) and demangled once.
 *
 * Not thread-safe: one handle per thread, or a lock around each call.
 */
#ifndef FLEETSYM_DWARFSYM_H
#define FLEETSYM_DWARFSYM_H

#include "cache/symindex.h"

#include <stdint.h>

struct dwarfsym;

struct dwarfsym_opts {
	/* Directories with the .build-id/xx/rest.debug layout where a dwz alt file is looked for
	 * (besides the path the file names). NULL-terminated; borrowed during dwarfsym_open(). */
	const char *const *debug_dirs;
	/* The dwz alt file to attach, found by the caller by the build ID the file's
	 * .gnu_debugaltlink names (used only when its build ID matches); NULL: none given. */
	const char *alt_path;
	/* Never open the path .gnu_debugaltlink names, nor let libdw look it up (untrusted files:
	 * the name could be any path on the machine, a FIFO among them). */
	int alt_no_name;
	/* Keep a line-table file name that DWARF left relative as it is, not joined to the CU's
	 * compilation directory (eu-addr2line --relative). */
	int relative_names;
};

/* Open DEBUG_PATH (an ELF file with DWARF, a separate .debug file, or a file with only a
 * symbol table). MAIN_PATH, if not NULL, is the executable DEBUG_PATH belongs to: its program
 * headers give the load base and its .symtab/.dynsym serve when DEBUG_PATH has no symtab.
 * Sets *OUT (free with dwarfsym_close()). Errors: -ENOENT, -ERR_NOTELF, -ERR_BADELF. A file
 * without DWARF opens fine and answers from its symbol table. */
int dwarfsym_open(const char *debug_path, const char *main_path, const struct dwarfsym_opts *opts,
		  struct dwarfsym **out) __attribute__((warn_unused_result));

/* Resolve ADDR as symview_lookup() does, reading the CU that holds it if needed. Strings are
 * borrowed until the next call on D. */
int dwarfsym_lookup(struct dwarfsym *d, uint64_t addr, struct sym_frame *out, int max);

/* The ELF symbol table's answer alone (what eu-addr2line names the outer function by). */
void dwarfsym_lookup_symtab(struct dwarfsym *d, uint64_t addr, struct sym_frame *out);

/* Read every CU and merge them into one view (for symindex_write()). The view is borrowed
 * until dwarfsym_close(); lookups stay valid afterwards. */
int dwarfsym_view_all(struct dwarfsym *d, const struct symview **out)
    __attribute__((warn_unused_result));

void dwarfsym_close(struct dwarfsym *d);

#endif
