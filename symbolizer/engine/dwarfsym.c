/*
 * dwarfsym - DWARF and symbol table → struct symview, one CU at a time.
 *
 * Global tables (strings, functions, nodes, symbols) grow as CUs are read; strings are interned
 * in a lib/strpool, functions and nodes through lib/u64map indexes of their ids. Per CU we keep its
 * flattened ranges and its reduced line rows; a cold lookup binary-searches the CU table, reads the
 * CU if needed and runs the shared symview_lookup() on a view made of that CU's arrays and the
 * global tables. dwarfsym_view_all() reads every CU and merges the per-CU arrays by address.
 *
 * libdw 0.188 traps this file routes around (see ../shared/notes/symbolization-facts.md):
 * CU lookup does not rely on .debug_aranges (CU ranges come from each CU DIE); no
 * dwarf_getscopes per address (each CU's DIE tree is walked once); inline chains come from the
 * concrete DIE tree, so cross-CU abstract origins (GCC LTO) keep their inline frames.
 */
#include "symbolizer/engine/dwarfsym.h"

#include "symbolizer/engine/ivset.h"

#include "lib/bsearch.h"
#include "lib/buildid.h"
#include "lib/demangle.h"
#include "lib/elfutil.h"
#include "lib/err.h"
#include "lib/log.h"
#include "lib/strpool.h"
#include "lib/u64map.h"
#include "lib/vec.h"

#include <dwarf.h>
#include <elfutils/libdw.h>
#include <elfutils/libdwelf.h>
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* libstdc++'s demangler, the one eu-addr2line uses. */

#define MAX_DEPTH 256

struct cu {
	Dwarf_Off off;
	int built;
	struct symidx_range *ranges;
	size_t nranges;
	struct symidx_line *lines;
	size_t nlines;
};

struct cu_span {
	uint64_t lo, hi;
	uint32_t cu;
};

/* From LO up to the next segment, addresses belong to CU (SYMIDX_NONE: to none). */
struct cu_seg {
	uint64_t lo;
	uint32_t cu;
};

struct text_range {
	uint64_t lo, hi;
};

/* [lo, hi) where NODE is the innermost scope, found while a CU is read. */
struct claim {
	uint64_t lo, hi;
	uint32_t node;
};

/* One level of the DIE walk: the DIE being visited, and what the enclosing scope still owns. */
struct level {
	Dwarf_Die cur;
	struct ivset rem;
	uint32_t node;	 /* function node of the enclosing scope */
	int transparent; /* a namespace or imported unit: REM is borrowed from the level above */
};

struct dwarfsym {
	int fd, main_fd, alt_fd;
	Elf *elf, *main_elf, *alt_elf;
	Dwarf *dw, *alt_dw;
	uint64_t base;
	int relative_names; /* struct dwarfsym_opts' */

	struct cu *cus;
	size_t ncus, cus_cap;
	size_t nbuilt; /* CUs read, for release_caches() */
	struct cu_span *spans;
	size_t nspans, spans_cap;
	struct cu_seg *segs;
	size_t nsegs, segs_cap;
	struct text_range *text; /* executable sections; empty: accept every address */
	size_t ntext, text_cap;

	struct strpool strs; /* offsets below SYMIDX_NONE */
	struct symidx_func *funcs;
	size_t nfuncs, funcs_cap;
	struct symidx_node *nodes;
	size_t nnodes, nodes_cap;
	struct symidx_sym *syms;
	size_t nsyms, syms_cap;
	struct u64map func_ids; /* name's string offset → function id */
	struct u64map node_ids; /* node's hash (rehashed on collision) → node id */
	struct u64map origins;	/* DIE offset (bit 63: in the dwz alt file) → function id */

	/* scratch while reading one CU */
	struct claim *claims;
	size_t nclaims, claims_cap;
	struct level *levels; /* MAX_DEPTH of them */
	struct ivset want, region;
	const char *comp_dir; /* of the CU being read */
	uint32_t *file_ids;   /* CU file index → string id */
	size_t nfile_ids, file_ids_cap;

	/* the merged view of dwarfsym_view_all() */
	struct symidx_range *all_ranges;
	struct symidx_line *all_lines;
	struct symview all;
	int all_built;
};

/* --- interning --------------------------------------------------------------------------- */

static uint64_t hash_bytes(const void *p, size_t n, uint64_t h)
{
	const unsigned char *b = p;

	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 0x100000001b3ull;
	return h;
}

/* Intern S; sets *ID to its offset in the string table. */
static int intern_str(struct dwarfsym *d, const char *s, uint32_t *id)
{
	return strpool_intern(&d->strs, s, id);
}

/* Intern the function called NAME (as in the file), demangling it once. */
static int intern_func(struct dwarfsym *d, const char *name, uint32_t *id)
{
	struct symidx_func f;
	uint32_t name_id;
	char *dem;
	int err;

	err = intern_str(d, name, &name_id);
	if (err)
		return err;
	if (u64map_get(&d->func_ids, name_id, id))
		return 0;

	f.name = f.demangled = name_id;
	dem = demangle(name);
	if (dem)
		err = intern_str(d, dem, &f.demangled);
	free(dem);
	if (err)
		return err;
	err = VEC_PUSH(d->funcs, d->nfuncs, d->funcs_cap, f);
	if (err)
		return err;
	*id = (uint32_t)(d->nfuncs - 1);
	return u64map_put(&d->func_ids, name_id, *id);
}

/* A node is 16 bytes, too wide for a u64map key: the key is its hash, and a collision (two
 * nodes, one hash) moves on to a rehash of the key, as lib/strpool does for texts. */
static int intern_node(struct dwarfsym *d, const struct symidx_node *n, uint32_t *id)
{
	uint64_t key = hash_bytes(n, sizeof(*n), 0xcbf29ce484222325ull);
	int err;

	while (u64map_get(&d->node_ids, key, id)) {
		if (!memcmp(&d->nodes[*id], n, sizeof(*n)))
			return 0;
		key = key * 0x9e3779b97f4a7c15ull + 1;
	}
	if (d->nnodes >= SYMIDX_NONE - 1)
		return -E2BIG;
	err = VEC_PUSH(d->nodes, d->nnodes, d->nodes_cap, *n);
	if (err)
		return err;
	*id = (uint32_t)(d->nnodes - 1);
	return u64map_put(&d->node_ids, key, *id);
}

/* --- one CU -------------------------------------------------------------------------------- */

/* eu-addr2line's get_diename(): linkage name, else name, through origins and specifications. */
static const char *die_name(Dwarf_Die *die)
{
	Dwarf_Attribute attr;
	const char *name;

	name = dwarf_formstring(dwarf_attr_integrate(die, DW_AT_MIPS_linkage_name, &attr)
				    ?: dwarf_attr_integrate(die, DW_AT_linkage_name, &attr));
	if (!name)
		name = dwarf_diename(die);
	return name ? name : "??";
}

static int intern_src(struct dwarfsym *d, const char *comp_dir, const char *src, uint32_t *id);

/* The function a subprogram or inlined DIE names. Inlined instances of one function share an
 * abstract origin, so its name (a walk through origins and specifications, three times over)
 * is worked out once per origin; a DIE with a name of its own is asked directly. */
static int func_of_die(struct dwarfsym *d, Dwarf_Die *die, uint32_t *id)
{
	Dwarf_Attribute attr;
	Dwarf_Die origin;
	uint64_t key;
	int err;

	if (dwarf_hasattr(die, DW_AT_name) || dwarf_hasattr(die, DW_AT_linkage_name) ||
	    dwarf_hasattr(die, DW_AT_MIPS_linkage_name) ||
	    !dwarf_formref_die(dwarf_attr(die, DW_AT_abstract_origin, &attr), &origin))
		return intern_func(d, die_name(die), id);
	key = dwarf_dieoffset(&origin);
	if (d->alt_dw && dwarf_cu_getdwarf(origin.cu) == d->alt_dw)
		key |= 1ull << 63;
	if (u64map_get(&d->origins, key, id))
		return 0;
	err = intern_func(d, die_name(die), id);
	return err ? err : u64map_put(&d->origins, key, *id);
}

static int file_id(struct dwarfsym *d, Dwarf_Files *files, size_t nfiles, Dwarf_Word idx,
		   uint32_t *id)
{
	const char *src;
	int err;

	*id = SYMIDX_NONE;
	if (!files || idx >= nfiles)
		return 0;
	if (idx < d->nfile_ids && d->file_ids[idx] != SYMIDX_NONE) {
		*id = d->file_ids[idx];
		return 0;
	}
	src = dwarf_filesrc(files, idx, NULL, NULL);
	if (!src)
		return 0;
	err = intern_src(d, d->comp_dir, src, id);
	if (err)
		return err;
	err = vec_reserve((void **)&d->file_ids, &d->file_ids_cap, nfiles, sizeof(uint32_t));
	if (err)
		return err;
	while (d->nfile_ids < nfiles)
		d->file_ids[d->nfile_ids++] = SYMIDX_NONE;
	d->file_ids[idx] = *id;
	return 0;
}

/* Is ADDR in (or, for end markers, at the end of) an executable section? DWARF of functions the
 * linker discarded (COMDAT duplicates) is left at address 0 or a tombstone; without this it
 * would shadow real code. */
static int in_text(const struct dwarfsym *d, uint64_t addr)
{
	if (!d->ntext)
		return 1;
	for (size_t i = 0; i < d->ntext; i++)
		if (addr >= d->text[i].lo && addr <= d->text[i].hi)
			return 1;
	return 0;
}

static uint32_t attr_udata(Dwarf_Die *die, unsigned int name)
{
	Dwarf_Attribute attr;
	Dwarf_Word w;

	if (dwarf_formudata(dwarf_attr(die, name, &attr), &w) != 0)
		return 0;
	return w > UINT32_MAX ? UINT32_MAX : (uint32_t)w;
}

/* The DIE's code ranges (inside executable sections and the 4 GiB above the base), normalized. */
static int die_ranges(struct dwarfsym *d, Dwarf_Die *die, struct ivset *out)
{
	Dwarf_Addr base, lo, hi;
	ptrdiff_t off = 0;
	int err;

	ivset_clear(out);
	while ((off = dwarf_ranges(die, off, &base, &lo, &hi)) > 0) {
		if (lo >= hi || lo < d->base || hi - d->base > UINT32_MAX || !in_text(d, lo))
			continue;
		err = ivset_add(out, lo, hi);
		if (err)
			return err;
	}
	ivset_normalize(out);
	return 0;
}

/* The node of a subprogram or inlined instance (hash-consed: same function, parent and call
 * site give the same node). */
static int function_node(struct dwarfsym *d, Dwarf_Die *die, int inlined, uint32_t parent,
			 Dwarf_Files *files, size_t nfiles, uint32_t *node)
{
	struct symidx_node n = {0};
	int err;

	err = func_of_die(d, die, &n.func);
	if (err)
		return err;
	n.parent = inlined ? parent : SYMIDX_NONE;
	n.call_file = SYMIDX_NONE;
	if (inlined) {
		uint32_t col = attr_udata(die, DW_AT_call_column);

		n.flags = SYMIDX_NODE_INLINED;
		n.call_line = attr_udata(die, DW_AT_call_line);
		n.call_col = col > UINT16_MAX ? UINT16_MAX : (uint16_t)col;
		err = file_id(d, files, nfiles, attr_udata(die, DW_AT_call_file), &n.call_file);
		if (err)
			return err;
	}
	return intern_node(d, &n, node);
}

/* Record that NODE is the innermost scope over the intervals of S. */
static int emit_claims(struct dwarfsym *d, const struct ivset *s, uint32_t node)
{
	int err;

	if (node == SYMIDX_NONE)
		return 0;
	for (size_t i = 0; i < s->n; i++) {
		struct claim c = {s->v[i].lo, s->v[i].hi, node};

		err = VEC_PUSH(d->claims, d->nclaims, d->claims_cap, c);
		if (err)
			return err;
	}
	return 0;
}

static void ivset_swap(struct ivset *a, struct ivset *b)
{
	struct ivset t = *a;
	*a = *b;
	*b = t;
}

enum scope_kind { SCOPE_NONE, SCOPE_FUNCTION, SCOPE_INLINED, SCOPE_TRANSPARENT };

static enum scope_kind scope_kind(int tag)
{
	switch (tag) {
	case DW_TAG_subprogram:
	case DW_TAG_entry_point: return SCOPE_FUNCTION;
	case DW_TAG_inlined_subroutine: return SCOPE_INLINED;
	/* Blocks are transparent too: libdw lets a block that covers an address hide a later
	 * sibling covering it as well (its dwarf_getscopes stops at the first), but GCC's LTO
	 * output has such overlapping blocks, and llvm-symbolizer and addr2line then report the
	 * inlined function in the later one, which is right. Elsewhere siblings do not overlap and
	 * the two rules agree. */
	case DW_TAG_lexical_block:
	case DW_TAG_try_block:
	case DW_TAG_catch_block:
	case DW_TAG_with_stmt:
	case DW_TAG_common_block:
	case DW_TAG_namespace:
	case DW_TAG_module:
	case DW_TAG_imported_unit:
		return SCOPE_TRANSPARENT; /* hold functions; no claim of their own */
	default: return SCOPE_NONE;
	}
}

/*
 * Walk the CU's DIE tree once, depth first and iteratively (real C++ nests deep), giving every
 * address to its innermost function or inlined instance: each level holds the space its
 * function still owns; a child function claims its ranges out of it (ivset_claim), in DIE
 * order, so of overlapping siblings the first wins as in libdw's dwarf_getscopes(); what a
 * function still owns when its children are done is where it is innermost. Blocks, namespaces
 * and imported units are transparent. Types are not walked.
 */
static int walk_cu(struct dwarfsym *d, Dwarf_Die *cudie, Dwarf_Files *files, size_t nfiles)
{
	struct level *lv = d->levels;
	int top = 0, err = 0;

	ivset_clear(&lv[0].rem);
	err = ivset_add(&lv[0].rem, 0, UINT64_MAX);
	lv[0].node = SYMIDX_NONE;
	lv[0].transparent = 0;
	if (err || dwarf_child(cudie, &lv[0].cur) != 0)
		return err;
	for (;;) {
		Dwarf_Die *die = &lv[top].cur, child, next;
		enum scope_kind kind = scope_kind(dwarf_tag(die));
		uint32_t node = lv[top].node;
		int descend = 0;

		if (kind == SCOPE_TRANSPARENT) {
			Dwarf_Die *inner = die;
			Dwarf_Attribute attr;

			if (dwarf_tag(die) == DW_TAG_imported_unit)
				inner =
				    dwarf_formref_die(dwarf_attr(die, DW_AT_import, &attr), &child);
			if (inner && top + 1 < MAX_DEPTH &&
			    dwarf_child(inner, &lv[top + 1].cur) == 0) {
				ivset_swap(&lv[top + 1].rem, &lv[top].rem);
				ivset_clear(&lv[top].rem);
				lv[top + 1].transparent = 1;
				descend = 1;
			}
		} else if (kind != SCOPE_NONE) {
			err = die_ranges(d, die, &d->want)
				  ?: ivset_claim(&lv[top].rem, &d->want, &d->region);
			if (!err && d->region.n)
				err = function_node(d, die, kind == SCOPE_INLINED, lv[top].node,
						    files, nfiles, &node);
			if (!err && d->region.n) {
				if (top + 1 < MAX_DEPTH && dwarf_haschildren(die) &&
				    dwarf_child(die, &lv[top + 1].cur) == 0) {
					ivset_swap(&lv[top + 1].rem, &d->region);
					lv[top + 1].transparent = 0;
					descend = 1;
				} else {
					err = emit_claims(d, &d->region, node);
				}
			}
		}
		if (err)
			return err;
		if (descend) {
			lv[++top].node = node;
			continue;
		}
		/* next sibling, closing finished levels */
		for (;;) {
			int r = dwarf_siblingof(&lv[top].cur, &next);

			if (r == 0) {
				lv[top].cur = next;
				break;
			}
			if (r < 0)
				return -ERR_BADDWARF;
			if (top == 0)
				return 0;
			if (lv[top].transparent) {
				/* what is left goes back to the enclosing scope */
				ivset_swap(&lv[top - 1].rem, &lv[top].rem);
			} else {
				err = emit_claims(d, &lv[top].rem, lv[top].node);
				if (err)
					return err;
			}
			top--;
		}
	}
}

static int claim_cmp(const void *a, const void *b)
{
	const struct claim *x = a, *y = b;

	return x->lo < y->lo ? -1 : x->lo > y->lo;
}

static int emit_range(struct cu *cu, size_t *cap, uint64_t base, uint64_t addr, uint32_t node)
{
	struct symidx_range r = {(uint32_t)(addr - base), node};

	if (cu->nranges && cu->ranges[cu->nranges - 1].addr == r.addr) {
		cu->ranges[cu->nranges - 1].node = node;
		if (cu->nranges > 1 && cu->ranges[cu->nranges - 2].node == node)
			cu->nranges--;
		return 0;
	}
	if (cu->nranges && cu->ranges[cu->nranges - 1].node == node)
		return 0;
	if (!cu->nranges && node == SYMIDX_NONE)
		return 0;
	return VEC_PUSH(cu->ranges, cu->nranges, *cap, r);
}

/* The claims are disjoint by construction: sort them and write "node from here on" entries,
 * with a gap marker wherever one claim ends before the next begins. */
static int ranges_from_claims(struct dwarfsym *d, struct cu *cu)
{
	size_t cap = 0;
	int err = 0;

	if (d->nclaims)
		qsort(d->claims, d->nclaims, sizeof(*d->claims), claim_cmp);
	for (size_t i = 0; i < d->nclaims && !err; i++) {
		const struct claim *c = &d->claims[i];

		err = emit_range(cu, &cap, d->base, c->lo, c->node);
		if (!err && (i + 1 == d->nclaims || d->claims[i + 1].lo > c->hi))
			err = emit_range(cu, &cap, d->base, c->hi, SYMIDX_NONE);
	}
	return err;
}

static int line_same(const struct symidx_line *a, const struct symidx_line *b)
{
	return a->file == b->file && a->line == b->line && a->col == b->col;
}

/* Keep libdw's answer per address: of the rows at one address the last counts (its sort puts
 * end_sequence first), and a row equal to the one before adds nothing. */
static int push_line(struct symidx_line **rows, size_t *n, size_t *cap, struct symidx_line row)
{
	if (*n && (*rows)[*n - 1].addr == row.addr) {
		(*rows)[*n - 1] = row;
		if (*n > 1 && line_same(&(*rows)[*n - 2], &row))
			(*n)--;
		return 0;
	}
	if (*n && line_same(&(*rows)[*n - 1], &row))
		return 0;
	if (!*n && row.file == SYMIDX_NONE)
		return 0;
	return VEC_PUSH(*rows, *n, *cap, row);
}

/* Intern a line-table file name as libdwfl reports it: a name libdw left relative is joined to
 * the CU's comp_dir (eu-addr2line, addr2line and llvm-symbolizer all print it so), unless the
 * caller asked for relative names. */
static int intern_src(struct dwarfsym *d, const char *comp_dir, const char *src, uint32_t *id)
{
	char *joined = NULL;
	int err;

	if (src[0] == '/' || d->relative_names || !comp_dir || !comp_dir[0])
		return intern_str(d, src, id);
	if (asprintf(&joined, "%s/%s", comp_dir, src) < 0)
		return -ENOMEM;
	err = intern_str(d, joined, id);
	free(joined);
	return err;
}

/* The CU's line rows, reduced to libdw's answer per address. FILES is the CU's file table, the
 * one its line table names files in. */
static int read_lines(struct dwarfsym *d, Dwarf_Die *cudie, struct cu *cu, Dwarf_Files *files,
		      size_t nfiles)
{
	Dwarf_Lines *lines;
	size_t nlines, cap = 0;
	int err;

	if (dwarf_getsrclines(cudie, &lines, &nlines) != 0)
		return 0; /* a CU without a line table is not an error */
	for (size_t i = 0; i < nlines; i++) {
		Dwarf_Line *l = dwarf_onesrcline(lines, i);
		struct symidx_line row = {0, SYMIDX_NONE, 0, 0};
		Dwarf_Files *lfiles;
		size_t fidx;
		Dwarf_Addr addr;
		bool end = false;
		int lineno = 0, col = 0;

		if (!l || dwarf_lineaddr(l, &addr) != 0)
			continue;
		if (addr < d->base || addr - d->base > UINT32_MAX || !in_text(d, addr))
			continue;
		row.addr = (uint32_t)(addr - d->base);
		dwarf_lineendsequence(l, &end);
		if (!end && dwarf_line_file(l, &lfiles, &fidx) == 0 && lfiles == files) {
			err = file_id(d, files, nfiles, fidx, &row.file);
			if (err)
				return err;
			dwarf_lineno(l, &lineno);
			dwarf_linecol(l, &col);
			row.line = lineno > 0 ? (uint32_t)lineno : 0;
			row.col = col > 0 ? (uint32_t)col : 0;
			if (row.file == SYMIDX_NONE)
				row.line = row.col = 0;
		}
		err = push_line(&cu->lines, &cu->nlines, &cap, row);
		if (err)
			return err;
	}
	return 0;
}

static int build_cu(struct dwarfsym *d, struct cu *cu)
{
	Dwarf_Die cudie;
	Dwarf_Files *files = NULL;
	size_t nfiles = 0;
	int err;

	cu->built = 1;
	if (!dwarf_offdie(d->dw, cu->off, &cudie))
		return 0;
	if (dwarf_getsrcfiles(&cudie, &files, &nfiles) != 0)
		files = NULL, nfiles = 0;
	d->nclaims = 0;
	d->nfile_ids = 0;
	d->comp_dir = dwarf_formstring(dwarf_attr(&cudie, DW_AT_comp_dir, &(Dwarf_Attribute){0}));
	err = walk_cu(d, &cudie, files, nfiles);
	if (err == -ERR_BADDWARF)
		log_msg(FS_LOG_WARN, "CU at 0x%llx: damaged DIE tree, using what was read",
			(unsigned long long)cu->off);
	else if (err)
		return err;
	err = ranges_from_claims(d, cu);
	if (err)
		return err;
	return read_lines(d, &cudie, cu, files, nfiles);
}

/* --- CU spans, symbols, open --------------------------------------------------------------- */

static int span_cmp(const void *a, const void *b)
{
	const struct cu_span *x = a, *y = b;

	if (x->lo != y->lo)
		return x->lo < y->lo ? -1 : 1;
	if (x->hi != y->hi)
		return x->hi < y->hi ? -1 : 1;
	return x->cu > y->cu ? -1 : x->cu < y->cu; /* the first CU last: it ends on top */
}

static int push_seg(struct dwarfsym *d, uint64_t lo, uint32_t cu)
{
	struct cu_seg sg = {lo, cu};

	if (d->nsegs && d->segs[d->nsegs - 1].cu == cu)
		return 0;
	if (d->nsegs && d->segs[d->nsegs - 1].lo == lo) {
		d->segs[d->nsegs - 1].cu = cu;
		if (d->nsegs > 1 && d->segs[d->nsegs - 2].cu == cu)
			d->nsegs--;
		return 0;
	}
	return VEC_PUSH(d->segs, d->nsegs, d->segs_cap, sg);
}

/* Partition the address space among CUs: where CU ranges overlap, the range that starts last
 * owns the address; among equal ranges, the first CU in .debug_info. Equal ranges are what
 * the linker leaves of a header function that many CUs emitted (each CU's discarded COMDAT
 * copy resolved to the kept one): on ceph-osd up to a dozen CUs claim one such function, with
 * different comp_dirs; binutils addr2line and llvm-symbolizer answer from the first of them.
 * Cold lookups and the merged index both follow this one partition, so they cannot disagree.
 * A sweep over the sorted spans with a stack of open ones. */
static int build_segments(struct dwarfsym *d)
{
	struct cu_span *stack = NULL;
	size_t n = 0, cap = 0, i = 0;
	int err = 0;

	while ((i < d->nspans || n) && !err) {
		uint64_t x = i < d->nspans ? d->spans[i].lo : UINT64_MAX;

		/* the next boundary: a span start, or the end of an open span */
		for (size_t k = 0; k < n; k++)
			if (stack[k].hi < x)
				x = stack[k].hi;
		while (i < d->nspans && d->spans[i].lo == x && !err)
			err = VEC_PUSH(stack, n, cap, d->spans[i++]);
		for (size_t k = 0; k < n;) /* drop spans that ended */
			if (stack[k].hi <= x)
				memmove(&stack[k], &stack[k + 1], (--n - k) * sizeof(*stack));
			else
				k++;
		if (!err)
			err = push_seg(d, x, n ? stack[n - 1].cu : SYMIDX_NONE);
	}
	free(stack);
	return err;
}

static int read_cus(struct dwarfsym *d)
{
	Dwarf_CU *dcu = NULL;
	Dwarf_Die cudie;
	uint8_t unit_type;
	int err;

	while (dwarf_get_units(d->dw, dcu, &dcu, NULL, &unit_type, &cudie, NULL) == 0) {
		struct cu cu = {.off = dwarf_dieoffset(&cudie)};
		Dwarf_Addr base, lo, hi;
		ptrdiff_t off = 0;
		uint32_t id = (uint32_t)d->ncus;

		if (unit_type != DW_UT_compile && unit_type != DW_UT_skeleton)
			continue;
		err = VEC_PUSH(d->cus, d->ncus, d->cus_cap, cu);
		if (err)
			return err;
		while ((off = dwarf_ranges(&cudie, off, &base, &lo, &hi)) > 0) {
			struct cu_span s = {lo, hi, id};

			if (lo >= hi || !in_text(d, lo))
				continue;
			err = VEC_PUSH(d->spans, d->nspans, d->spans_cap, s);
			if (err)
				return err;
		}
	}
	if (d->nspans)
		qsort(d->spans, d->nspans, sizeof(*d->spans), span_cmp);
	return build_segments(d);
}

static int read_symtab_of(struct dwarfsym *d, Elf *elf, Elf64_Word type)
{
	Elf_Scn *scn = NULL;
	GElf_Shdr shdr;
	int err;

	while ((scn = elf_nextscn(elf, scn))) {
		Elf_Data *data;
		size_t n, start;

		if (!gelf_getshdr(scn, &shdr) || shdr.sh_type != type || !shdr.sh_entsize)
			continue;
		data = elf_getdata(scn, NULL);
		if (!data)
			continue;
		n = shdr.sh_size / shdr.sh_entsize;
		start = d->nsyms;
		for (size_t i = 1; i < n; i++) {
			GElf_Sym s;
			const char *name;
			struct symidx_sym e;
			int t, b;

			if (!gelf_getsym(data, (int)i, &s))
				break;
			t = GELF_ST_TYPE(s.st_info);
			b = GELF_ST_BIND(s.st_info);
			if (s.st_shndx == SHN_UNDEF || t == STT_SECTION || t == STT_FILE ||
			    t == STT_TLS)
				continue;
			if (s.st_value < d->base || s.st_value - d->base > UINT32_MAX)
				continue;
			name = elf_strptr(elf, shdr.sh_link, s.st_name);
			if (!name || !name[0])
				continue;
			e.addr = (uint32_t)(s.st_value - d->base);
			e.size = s.st_size > UINT32_MAX ? UINT32_MAX : (uint32_t)s.st_size;
			e.bind = b == STB_GLOBAL ? 3 : b == STB_WEAK ? 2 : b == STB_LOCAL ? 1 : 0;
			err = intern_func(d, name, &e.func);
			if (err)
				return err;
			err = VEC_PUSH(d->syms, d->nsyms, d->syms_cap, e);
			if (err)
				return err;
		}
		/* libdwfl prefers the first of equal symbols: reverse so a stable order puts it
		 * last */
		for (size_t i = start, j = d->nsyms; i + 1 < j; i++, j--) {
			struct symidx_sym t = d->syms[i];
			d->syms[i] = d->syms[j - 1];
			d->syms[j - 1] = t;
		}
		return 1;
	}
	return 0;
}

static int read_symtab(struct dwarfsym *d)
{
	Elf *order[2] = {d->elf, d->main_elf};
	int r = 0;

	for (int i = 0; i < 2 && r == 0; i++)
		if (order[i])
			r = read_symtab_of(d, order[i], SHT_SYMTAB);
	for (int i = 0; i < 2 && r == 0; i++)
		if (order[i])
			r = read_symtab_of(d, order[i], SHT_DYNSYM);
	if (r < 0)
		return r;
	/* glibc's qsort is a stable merge sort here; ties keep the reversed table order */
	if (d->nsyms)
		qsort(d->syms, d->nsyms, sizeof(*d->syms), symidx_sym_cmp);
	return 0;
}

static int read_text(struct dwarfsym *d, Elf *elf)
{
	Elf_Scn *scn = NULL;
	GElf_Shdr sh;
	int err;

	while ((scn = elf_nextscn(elf, scn))) {
		struct text_range t;

		if (!gelf_getshdr(scn, &sh) || !(sh.sh_flags & SHF_EXECINSTR) ||
		    !(sh.sh_flags & SHF_ALLOC) || !sh.sh_size)
			continue;
		t.lo = sh.sh_addr;
		t.hi = sh.sh_addr + sh.sh_size;
		err = VEC_PUSH(d->text, d->ntext, d->text_cap, t);
		if (err)
			return err;
	}
	return 0;
}

/* Open PATH as D's alt file when its build ID is BID (BID_LEN bytes). 0 when attached. */
static int try_alt(struct dwarfsym *d, const char *path, const void *bid, ssize_t bid_len)
{
	char want[BUILDID_HEX_MAX], have[BUILDID_HEX_MAX];
	const unsigned char *b = bid;

	if (bid_len <= 0 || (size_t)bid_len * 2 >= sizeof(want))
		return -ERR_BADBUILDID;
	for (ssize_t k = 0; k < bid_len; k++)
		snprintf(want + 2 * k, 3, "%02x", b[k]);
	if (d->alt_elf)
		elf_end(d->alt_elf);
	if (d->alt_fd >= 0)
		close(d->alt_fd);
	d->alt_elf = NULL;
	d->alt_fd = -1;
	if (elfutil_open(path, &d->alt_fd, &d->alt_elf) != 0)
		return -ENOENT;
	if (buildid_from_elf(d->alt_elf, have) != 0 || strcmp(have, want) != 0)
		return -ERR_BUILDID_MISMATCH;
	d->alt_dw = dwarf_begin_elf(d->alt_elf, DWARF_C_READ, NULL);
	return d->alt_dw ? 0 : -ERR_BADDWARF;
}

/* dwz: attach the alt file the caller found by build ID; else (trusted files only) the path
 * the file names, relative to DEBUG_PATH's folder; else by build ID under the debug dirs.
 * Missing alt files only cost names. */
static void attach_alt(struct dwarfsym *d, const char *debug_path, const struct dwarfsym_opts *opts)
{
	const char *const *dirs = opts ? opts->debug_dirs : NULL;
	int by_name = !opts || !opts->alt_no_name;
	const char *name;
	const void *bid;
	ssize_t bid_len = dwelf_dwarf_gnu_debugaltlink(d->dw, &name, &bid);
	char path[4096], dirbuf[4096];

	if (bid_len <= 0 || (by_name && dwarf_getalt(d->dw)))
		return;
	if (opts && opts->alt_path)
		try_alt(d, opts->alt_path, bid, bid_len);
	for (int i = by_name ? -1 : 0; !d->alt_dw && (i < 0 || (dirs && dirs[i])); i++) {
		if (i < 0 && name[0] == '/') {
			snprintf(path, sizeof(path), "%s", name);
		} else if (i < 0) {
			snprintf(dirbuf, sizeof(dirbuf), "%s", debug_path);
			snprintf(path, sizeof(path), "%s/%s", dirname(dirbuf), name);
		} else {
			const unsigned char *b = bid;
			int len = snprintf(path, sizeof(path), "%s/.build-id/%02x/", dirs[i], b[0]);

			for (ssize_t k = 1; k < bid_len && len < (int)sizeof(path) - 8; k++)
				len +=
				    snprintf(path + len, sizeof(path) - (size_t)len, "%02x", b[k]);
			snprintf(path + len, sizeof(path) - (size_t)len, ".debug");
		}
		try_alt(d, path, bid, bid_len);
	}
	if (d->alt_dw)
		dwarf_setalt(d->dw, d->alt_dw);
	else
		log_msg(FS_LOG_WARN, "%s: dwz alt file not found; some names will be missing",
			debug_path);
}

int dwarfsym_open(const char *debug_path, const char *main_path, const struct dwarfsym_opts *opts,
		  struct dwarfsym **out)
{
	struct dwarfsym *d;
	int err;

	*out = NULL;
	elf_version(EV_CURRENT);
	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->fd = d->main_fd = d->alt_fd = -1;
	d->strs.max = SYMIDX_NONE - 1;
	d->relative_names = opts && opts->relative_names;
	d->levels = calloc(MAX_DEPTH, sizeof(*d->levels));
	if (!d->levels) {
		err = -ENOMEM;
		goto out;
	}
	err = elfutil_open(debug_path, &d->fd, &d->elf);
	if (err)
		goto out;
	if (main_path) {
		err = elfutil_open(main_path, &d->main_fd, &d->main_elf);
		if (err)
			goto out;
	}
	d->base = elfutil_load_base(d->main_elf ? d->main_elf : d->elf);
	err = read_text(d, d->elf);
	if (!err && !d->ntext && d->main_elf)
		err = read_text(d, d->main_elf);
	if (err)
		goto out;
	d->dw = dwarf_begin_elf(d->elf, DWARF_C_READ, NULL);
	if (d->dw) {
		attach_alt(d, debug_path, opts);
		err = read_cus(d);
		if (err)
			goto out;
	}
	err = read_symtab(d);
out:
	if (err) {
		dwarfsym_close(d);
		return err;
	}
	*out = d;
	return 0;
}

static struct cu *find_cu(struct dwarfsym *d, uint64_t addr)
{
	long i = bsearch_last_le64(d->segs, d->nsegs, sizeof(*d->segs), addr);

	if (i < 0 || d->segs[i].cu == SYMIDX_NONE)
		return NULL;
	return &d->cus[d->segs[i].cu];
}

static void global_view(const struct dwarfsym *d, struct symview *v)
{
	memset(v, 0, sizeof(*v));
	v->base = d->base;
	v->nodes = d->nodes, v->nnodes = d->nnodes;
	v->funcs = d->funcs, v->nfuncs = d->nfuncs;
	v->syms = d->syms, v->nsyms = d->nsyms;
	v->strs = d->strs.buf, v->strs_size = d->strs.len;
}

/*
 * Reading CU after CU, libdw keeps each one's line table, file table and abbreviations until
 * dwarf_end(), and every page of the mmap'd file we touched stays resident: on libjvm that is
 * most of the peak. Nothing of ours points into either (strings are interned copies, DIEs are
 * kept as offsets), so every RELEASE_EVERY CUs read (by lookups or for an index) we end the
 * Dwarf handle and open it again (cheap: libelf keeps decompressed sections) and tell the kernel
 * it may drop the file's clean pages.
 */
#define RELEASE_EVERY 128

static int release_caches(struct dwarfsym *d)
{
	size_t size;
	char *raw;

	dwarf_end(d->dw);
	d->dw = dwarf_begin_elf(d->elf, DWARF_C_READ, NULL);
	if (!d->dw)
		return -ERR_BADDWARF;
	if (d->alt_dw)
		dwarf_setalt(d->dw, d->alt_dw);
	raw = elf_rawfile(d->elf, &size);
	if (raw && size) {
		uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
		uintptr_t start = ((uintptr_t)raw + page - 1) & ~(page - 1);
		uintptr_t end = ((uintptr_t)raw + size) & ~(page - 1);

		if (end > start)
			madvise((void *)start, end - start, MADV_DONTNEED);
	}
	return 0;
}

int dwarfsym_lookup(struct dwarfsym *d, uint64_t addr, struct sym_frame *out, int max)
{
	struct symview v;
	struct cu *cu = find_cu(d, addr);

	if (cu && !cu->built) {
		if (build_cu(d, cu) != 0)
			log_msg(FS_LOG_WARN, "CU at 0x%llx: could not be read",
				(unsigned long long)cu->off);
		if (++d->nbuilt % RELEASE_EVERY == 0 && release_caches(d) != 0)
			log_msg(FS_LOG_WARN, "could not reopen the DWARF after releasing caches");
	}
	global_view(d, &v);
	if (cu) {
		v.ranges = cu->ranges, v.nranges = cu->nranges;
		v.lines = cu->lines, v.nlines = cu->nlines;
	}
	return symview_lookup(&v, addr, out, max);
}

void dwarfsym_lookup_symtab(struct dwarfsym *d, uint64_t addr, struct sym_frame *out)
{
	struct symview v;

	global_view(d, &v);
	symview_lookup_symtab(&v, addr, out);
}

/* Append to a merged table, keeping it minimal: one entry per address, no repeats. */
static int merge_range(struct symidx_range **arr, size_t *n, size_t *cap, struct symidx_range r)
{
	if (*n && (*arr)[*n - 1].addr == r.addr) {
		(*arr)[*n - 1] = r;
		if (*n > 1 && (*arr)[*n - 2].node == r.node)
			(*n)--;
		return 0;
	}
	if (*n && (*arr)[*n - 1].node == r.node)
		return 0;
	return VEC_PUSH(*arr, *n, *cap, r);
}

static int merge_line(struct symidx_line **arr, size_t *n, size_t *cap, struct symidx_line l)
{
	return push_line(arr, n, cap, l);
}

/* Copy what CU says about [S, E) into the merged tables: its entry covering S, then its
 * entries inside. Addresses are already relative to the base. */
static int merge_segment(struct dwarfsym *d, const struct cu *cu, uint32_t s, uint64_t e,
			 size_t *rcap, size_t *lcap)
{
	struct symidx_range r = {s, SYMIDX_NONE};
	struct symidx_line l = {s, SYMIDX_NONE, 0, 0};
	long i;
	int err;

	if (cu && (i = bsearch_last_le32(cu->ranges, cu->nranges, sizeof(*cu->ranges), s)) >= 0)
		r.node = cu->ranges[i].node;
	err = merge_range(&d->all_ranges, &d->all.nranges, rcap, r);
	for (i = cu ? bsearch_last_le32(cu->ranges, cu->nranges, sizeof(*cu->ranges), s) + 1 : 0;
	     cu && !err && (size_t)i < cu->nranges; i++) {
		if (cu->ranges[i].addr >= e)
			break;
		err = merge_range(&d->all_ranges, &d->all.nranges, rcap, cu->ranges[i]);
	}
	if (cu && (i = bsearch_last_le32(cu->lines, cu->nlines, sizeof(*cu->lines), s)) >= 0) {
		l = cu->lines[i];
		l.addr = s;
	}
	if (!err)
		err = merge_line(&d->all_lines, &d->all.nlines, lcap, l);
	for (i = cu ? bsearch_last_le32(cu->lines, cu->nlines, sizeof(*cu->lines), s) + 1 : 0;
	     cu && !err && (size_t)i < cu->nlines; i++) {
		if (cu->lines[i].addr >= e)
			break;
		err = merge_line(&d->all_lines, &d->all.nlines, lcap, cu->lines[i]);
	}
	return err;
}

int dwarfsym_view_all(struct dwarfsym *d, const struct symview **out)
{
	size_t rcap = 0, lcap = 0;
	int err = 0;

	if (d->all_built) {
		*out = &d->all;
		return 0;
	}
	for (size_t i = 0; i < d->ncus && !err; i++) {
		if (d->cus[i].built)
			continue;
		err = build_cu(d, &d->cus[i]);
		if (!err && ++d->nbuilt % RELEASE_EVERY == 0)
			err = release_caches(d);
	}
	global_view(d, &d->all);
	d->all.nranges = d->all.nlines = 0;
	for (size_t i = 0; i < d->nsegs && !err; i++) {
		const struct cu_seg *sg = &d->segs[i];
		uint64_t e = i + 1 < d->nsegs ? d->segs[i + 1].lo : UINT64_MAX;

		if (sg->lo < d->base || sg->lo - d->base > UINT32_MAX)
			continue;
		err = merge_segment(d, sg->cu == SYMIDX_NONE ? NULL : &d->cus[sg->cu],
				    (uint32_t)(sg->lo - d->base), e == UINT64_MAX ? e : e - d->base,
				    &rcap, &lcap);
	}
	if (err)
		return err;
	d->all.ranges = d->all_ranges;
	d->all.lines = d->all_lines;
	d->all_built = 1;
	*out = &d->all;
	return 0;
}

void dwarfsym_close(struct dwarfsym *d)
{
	if (!d)
		return;
	for (size_t i = 0; i < d->ncus; i++) {
		free(d->cus[i].ranges);
		free(d->cus[i].lines);
	}
	free(d->cus);
	free(d->spans);
	free(d->segs);
	free(d->text);
	strpool_free(&d->strs);
	free(d->funcs);
	free(d->nodes);
	free(d->syms);
	u64map_free(&d->func_ids);
	u64map_free(&d->node_ids);
	u64map_free(&d->origins);
	free(d->claims);
	for (int i = 0; d->levels && i < MAX_DEPTH; i++)
		ivset_free(&d->levels[i].rem);
	free(d->levels);
	ivset_free(&d->want);
	ivset_free(&d->region);
	free(d->file_ids);
	free(d->all_ranges);
	free(d->all_lines);
	if (d->dw)
		dwarf_end(d->dw);
	if (d->alt_dw)
		dwarf_end(d->alt_dw);
	if (d->elf)
		elf_end(d->elf);
	if (d->main_elf)
		elf_end(d->main_elf);
	if (d->alt_elf)
		elf_end(d->alt_elf);
	if (d->fd >= 0)
		close(d->fd);
	if (d->main_fd >= 0)
		close(d->main_fd);
	if (d->alt_fd >= 0)
		close(d->alt_fd);
	free(d);
}
