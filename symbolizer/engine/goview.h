/*
 * goview - a Go binary's pclntab (gopclntab.h) as the arrays of struct symview
 * (cache/symindex.h), so that Go files without DWARF are looked up, indexed and served exactly
 * like files with DWARF, inline frames included.
 *
 * Each run of constant answers that gopcln_func_ranges() walks becomes one range entry, which
 * names the innermost frame's node, and one line row (the innermost frame's file:line). The
 * chain innermost..physical becomes nodes linked by parent; an inlined node's call site is its
 * caller's file:line at that PC, which is what the inline tree's parentPc gives. Nodes are
 * shared by equal (function, parent, call site). The function table also gives the symbol
 * table, so symbol-only lookups answer too; the file's own ELF symbols (C code of a cgo binary
 * built with -w, assembly outside the pclntab) fill the addresses no Go function covers.
 */
#ifndef FLEETSYM_GOVIEW_H
#define FLEETSYM_GOVIEW_H

#include "cache/symindex.h"
#include "symbolizer/engine/gopclntab.h"

#include <stdint.h>

struct goview;

/* Build the view of G, addresses stored relative to BASE (the file's lowest PT_LOAD address),
 * with ELF's symbols (a view of the same file with its symbol table, base BASE; NULL for none)
 * where no Go function is. Sets *OUT (owned by the caller; free with goview_free()). Code
 * outside the 4 GiB above BASE and damaged functions are left out. 0, -ENOMEM or -E2BIG. */
int goview_build(const struct gopcln *g, uint64_t base, const struct symview *elf,
		 struct goview **out) __attribute__((warn_unused_result));

/* The arrays; borrowed until goview_free(). Read-only: any number of threads may look up. */
const struct symview *goview_view(const struct goview *gv);

void goview_free(struct goview *gv);

#endif
