/*
 * goview - the symview of a pclntab; see goview.h.
 *
 * Strings are interned in a strpool (its offsets are the view's string offsets: both use
 * UINT32_MAX for "none"); functions by name offset and nodes by their fields in u64maps, a
 * node's key being a hash of its fields, probed further on a collision.
 */
#include "symbolizer/engine/goview.h"

#include "lib/bsearch.h"
#include "lib/strpool.h"
#include "lib/u64map.h"
#include "lib/vec.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct goview {
	struct symview v;
	struct symidx_range *ranges;
	struct symidx_node *nodes;
	struct symidx_func *funcs;
	struct symidx_line *lines;
	struct symidx_sym *syms;
	size_t nranges, nnodes, nfuncs, nlines, nsyms;
	size_t rcap, ncap, fcap, lcap, scap;
	struct strpool strs;
	struct u64map func_ix; /* name offset -> function index */
	struct u64map node_ix; /* hash of the fields (probed) -> node index */
	uint64_t base;
	uint32_t end; /* where the last run ended (offset from base); 0 before the first */
};

static int func_id(struct goview *gv, const char *name, uint32_t *id)
{
	struct symidx_func f;
	uint32_t off;
	int err = strpool_intern(&gv->strs, name, &off);

	if (err)
		return err;
	if (u64map_get(&gv->func_ix, off, id))
		return 0;
	f = (struct symidx_func){off, off}; /* Go's names are not mangled */
	*id = (uint32_t)gv->nfuncs;
	return VEC_PUSH(gv->funcs, gv->nfuncs, gv->fcap, f) ?: u64map_put(&gv->func_ix, off, *id);
}

static uint64_t node_hash(const struct symidx_node *n)
{
	uint64_t h = ((uint64_t)n->func << 32 | n->parent) * 0x9e3779b97f4a7c15ull;

	h ^= ((uint64_t)n->call_file << 32 | n->call_line) * 0xc2b2ae3d27d4eb4full;
	return h ^ (h >> 29) ^ n->flags;
}

static int node_id(struct goview *gv, const struct symidx_node *want, uint32_t *id)
{
	for (uint64_t k = node_hash(want);; k = k * 0x9e3779b97f4a7c15ull + 1) {
		if (!u64map_get(&gv->node_ix, k, id)) {
			*id = (uint32_t)gv->nnodes;
			return VEC_PUSH(gv->nodes, gv->nnodes, gv->ncap, *want)
				   ?: u64map_put(&gv->node_ix, k, *id);
		}
		if (!memcmp(&gv->nodes[*id], want, sizeof(*want)))
			return 0;
	}
}

/* Close the last run at its end when the next one does not start there. */
static int gap_before(struct goview *gv, uint32_t lo)
{
	struct symidx_range r = {gv->end, SYMIDX_NONE};
	struct symidx_line l = {gv->end, SYMIDX_NONE, 0, 0};

	if (!gv->nranges || gv->end == lo)
		return 0;
	return VEC_PUSH(gv->ranges, gv->nranges, gv->rcap, r)
		   ?: VEC_PUSH(gv->lines, gv->nlines, gv->lcap, l);
}

/* gopcln_range_fn: one run, its frames innermost first. */
static int add_run(void *ctx, uint64_t lo, uint64_t hi, const struct gopcln_frame *fr, int n)
{
	struct goview *gv = ctx;
	uint32_t parent = SYMIDX_NONE, file, a, b;
	int err;

	if (n <= 0 || lo < gv->base || hi <= lo || hi - gv->base > UINT32_MAX)
		return 0;
	a = (uint32_t)(lo - gv->base);
	b = (uint32_t)(hi - gv->base);
	if (gv->nranges && a < gv->end)
		return 0; /* overlaps the previous run: damaged tables */
	/* from the physical function inwards, so each node knows its parent */
	for (int k = n - 1; k >= 0; k--) {
		struct symidx_node nd = {.parent = parent, .call_file = SYMIDX_NONE};

		err = func_id(gv, fr[k].function, &nd.func);
		if (!err && k < n - 1) {
			nd.flags = SYMIDX_NODE_INLINED;
			nd.call_line = fr[k + 1].line;
			err = strpool_intern(&gv->strs, fr[k + 1].file, &nd.call_file);
		}
		if (!err)
			err = node_id(gv, &nd, &parent);
		if (err)
			return err;
	}
	err = gap_before(gv, a) ?: strpool_intern(&gv->strs, fr[0].file, &file);
	if (!err)
		err =
		    VEC_PUSH(gv->ranges, gv->nranges, gv->rcap, ((struct symidx_range){a, parent}));
	if (!err)
		err = VEC_PUSH(gv->lines, gv->nlines, gv->lcap,
			       ((struct symidx_line){a, file, fr[0].line, 0}));
	gv->end = b;
	return err;
}

/* Function I's runs and its symbol, which covers its code and not the padding after it (where
 * lookups answer nothing, as with DWARF). A damaged function is left out, not an error. */
static int add_func(struct goview *gv, const struct gopcln *g, size_t i)
{
	struct symidx_sym sym = {.bind = 3};
	size_t before = gv->nranges;
	uint64_t entry, end;
	const char *name;
	int err;

	if (gopcln_func_at(g, i, &entry, &end, &name) != 0)
		return 0;
	err = gopcln_func_ranges(g, i, add_run, gv);
	if (err == -ENOMEM || err == -E2BIG)
		return err;
	if (gv->nranges == before || entry < gv->base || entry - gv->base > gv->end)
		return 0; /* no code of its own, or out of order: damaged */
	if (gv->nsyms && gv->syms[gv->nsyms - 1].addr > entry - gv->base)
		return 0;
	sym.addr = (uint32_t)(entry - gv->base);
	sym.size = gv->end - sym.addr;
	err = func_id(gv, name, &sym.func);
	return err ?: VEC_PUSH(gv->syms, gv->nsyms, gv->scap, sym);
}

/* ELF's symbols that no Go function covers (the Go ones, sorted by address, are in GV). */
static int add_elf_syms(struct goview *gv, const struct symview *elf)
{
	size_t ngo = gv->nsyms;
	int err = 0;

	for (size_t i = 0; i < elf->nsyms && !err; i++) {
		struct symidx_sym s = elf->syms[i];
		const struct symidx_func *f = s.func < elf->nfuncs ? &elf->funcs[s.func] : NULL;
		long k = bsearch_last_le32(gv->syms, ngo, sizeof(*gv->syms), s.addr);
		uint32_t name, dem;

		if (!f || f->name >= elf->strs_size || f->demangled >= elf->strs_size ||
		    (k >= 0 && s.addr - gv->syms[k].addr < gv->syms[k].size))
			continue;
		err = strpool_intern(&gv->strs, elf->strs + f->name, &name)
			  ?: strpool_intern(&gv->strs, elf->strs + f->demangled, &dem);
		if (!err && !u64map_get(&gv->func_ix, name, &s.func)) {
			s.func = (uint32_t)gv->nfuncs;
			err = VEC_PUSH(gv->funcs, gv->nfuncs, gv->fcap,
				       ((struct symidx_func){name, dem}))
				  ?: u64map_put(&gv->func_ix, name, s.func);
		}
		if (!err)
			err = VEC_PUSH(gv->syms, gv->nsyms, gv->scap, s);
	}
	if (!err && gv->nsyms > ngo)
		qsort(gv->syms, gv->nsyms, sizeof(*gv->syms), symidx_sym_cmp);
	return err;
}

int goview_build(const struct gopcln *g, uint64_t base, const struct symview *elf,
		 struct goview **out)
{
	struct goview *gv = calloc(1, sizeof(*gv));
	size_t n = gopcln_func_count(g);
	int err = 0;

	*out = NULL;
	if (!gv)
		return -ENOMEM;
	gv->base = base;
	for (size_t i = 0; i < n && !err; i++)
		err = add_func(gv, g, i);
	if (!err)
		err = gap_before(gv, UINT32_MAX);
	if (!err && elf && elf->base == base)
		err = add_elf_syms(gv, elf);
	if (err) {
		goview_free(gv);
		return err;
	}
	gv->v = (struct symview){
	    .base = base,
	    .ranges = gv->ranges,
	    .nranges = gv->nranges,
	    .nodes = gv->nodes,
	    .nnodes = gv->nnodes,
	    .funcs = gv->funcs,
	    .nfuncs = gv->nfuncs,
	    .lines = gv->lines,
	    .nlines = gv->nlines,
	    .syms = gv->syms,
	    .nsyms = gv->nsyms,
	    .strs = gv->strs.buf ? gv->strs.buf : "",
	    .strs_size = gv->strs.len,
	};
	*out = gv;
	return 0;
}

const struct symview *goview_view(const struct goview *gv)
{
	return &gv->v;
}

void goview_free(struct goview *gv)
{
	if (!gv)
		return;
	free(gv->ranges);
	free(gv->nodes);
	free(gv->funcs);
	free(gv->lines);
	free(gv->syms);
	strpool_free(&gv->strs);
	u64map_free(&gv->func_ix);
	u64map_free(&gv->node_ix);
	free(gv);
}
