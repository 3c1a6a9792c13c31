/*
 * symfile - the symbol engine for one ELF file: its index when one is built, else its DWARF
 * (its own, or the separate debug file found by build ID), else its symbol tables.
 *
 * A lookup on an indexed file is three binary searches in an mmap. A cold file is answered
 * from DWARF one CU at a time, and symfile_build_index() turns what was read (plus the rest)
 * into the index and switches to it.
 */
#ifndef FLEETSYM_SYMFILE_H
#define FLEETSYM_SYMFILE_H

#include "cache/symindex.h"
#include "lib/buildid.h"

struct symfile;

struct symfile_opts {
	/* Debug dirs with the .build-id/xx/rest.debug layout, NULL-terminated; NULL means
	 * { "/usr/lib/debug", NULL }. Borrowed until symfile_close(). */
	const char *const *debug_dirs;
	/* With USE_DEBUGLINK, where to look for the .gnu_debuglink file of a file without DWARF
	 * whose build ID finds none, as symbolizer/engine/debuglink.h reads it; NULL: its
	 * default. Off for the daemon's workers: files beside a stored file are not its. */
	int use_debuglink;
	const char *debuginfo_path;
	/* Where indexes live (<dir>/<build-id>.symidx); NULL: no index. Borrowed likewise. */
	const char *index_dir;
	/* For DWARF with a dwz alt file, as in struct dwarfsym_opts: the alt file the caller found
	 * by build ID, and whether the path the file names may be opened (0: it may). */
	const char *alt_path;
	int alt_no_name;
	/* Relative line-table file names as DWARF has them (struct dwarfsym_opts). Indexes hold
	 * joined names: with this set, none is read or written. */
	int relative_names;
};

/* Open the symbols of the ELF file at PATH. Sets *OUT (free with symfile_close()).
 * Errors: -ENOENT, -ERR_NOTELF, -ERR_BADELF. */
int symfile_open(const char *path, const struct symfile_opts *opts, struct symfile **out)
    __attribute__((warn_unused_result));

/* Open by build ID: the index if there is one, else the debug file under the debug dirs.
 * -ENOENT when neither exists, -ERR_BADBUILDID for a malformed ID. */
int symfile_open_build_id(const char *build_id, const struct symfile_opts *opts,
			  struct symfile **out) __attribute__((warn_unused_result));

/* Resolve ADDR (ELF virtual address) as symview_lookup() does. Strings are borrowed until the
 * next call on SF. Not thread-safe for cold files; an indexed file is. */
int symfile_lookup(struct symfile *sf, uint64_t addr, struct sym_frame *out, int max);

/* Only the ELF symbol table's answer for ADDR, in OUT[0]. Same lifetime rules. */
void symfile_lookup_symtab(struct symfile *sf, uint64_t addr, struct sym_frame *out);

/* Build the index under opts->index_dir, write it atomically and switch to it. 0 when it is
 * already indexed; -EINVAL without an index dir or build ID. */
int symfile_build_index(struct symfile *sf) __attribute__((warn_unused_result));

int symfile_is_indexed(const struct symfile *sf);

/* Lowercase hex build ID, "" when the file has none. Borrowed until symfile_close(). */
const char *symfile_build_id(const struct symfile *sf);

/* Width in hex digits of an address of this file (16 for 64-bit ELF, 8 for 32-bit). */
int symfile_addr_width(const struct symfile *sf);

void symfile_close(struct symfile *sf);

#endif
