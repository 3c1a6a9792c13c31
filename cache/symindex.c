/*
 * symindex - lookup over the symbol tables, in their plain form (struct symview, built in
 * memory by the DWARF reader) or their packed form (an index file, mmap'd).
 *
 * Packed tables: ranges, nodes and lines are cut into blocks of 8, 4 and 8 entries; a block header
 * holds the first entry's address and the byte offset of the block's varint encoding, so a
 * lookup binary-searches the headers and decodes a few entries. This keeps an index at
 * about a fifth of the plain arrays' size (libjvm: 19 % of its debug file) for ~100 ns more per
 * lookup. Functions and symbols are stored as they are; strings are those the tables reference,
 * without the demangled names demangle() makes again from the linkage name (made on first use,
 * kept until close: on ceph-osd they were 68 of the 89 MB of strings).
 *
 * File layout (little endian, each section 8-byte aligned): header (magic, version, a 64-bit
 * checksum of everything after the header, size, base, build ID, entry counts, and offset and
 * size of each section), then the sections in enum order. Opening checks all of that; decoding
 * still bounds-checks every byte and reference, so a damaged file that slipped through could
 * only give less, never read outside the map.
 */
#include "cache/symindex.h"

#include "lib/bsearch.h"
#include "lib/demangle.h"
#include "lib/err.h"
#include "lib/fsutil.h"
#include "lib/log.h"
#include "lib/u64map.h"
#include "lib/vec.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#define SYMIDX_MAGIC "FSYMIDX"
/* Entries per block: ranges and lines are found by address within a block, a node by its id;
 * smaller blocks decode less per lookup and cost 8 bytes of header each. */
#define RBLOCK 8
#define NBLOCK 4
#define LBLOCK 8

enum { S_RBLOCKS, S_RDATA, S_NBLOCKS, S_NDATA, S_LBLOCKS, S_LDATA, S_FUNCS, S_SYMS, S_STRS, S_N };

struct block {
	uint32_t addr; /* first entry's address (ranges, lines); 0 for nodes */
	uint32_t off;  /* byte offset of the block in its data section */
};

struct symidx_header {
	char magic[8];
	uint32_t version;
	uint32_t pad;
	uint64_t hash;
	uint64_t size;
	uint64_t base;
	char build_id[72];
	uint64_t nranges, nnodes, nlines;
	struct {
		uint64_t off;
		uint64_t size;
	} sect[S_N];
};

/* A directory over block headers: for each 2^shift bytes of address space, the last block
 * starting at or before it, so that a lookup binary-searches a handful of headers (in cache)
 * instead of all of them. Built at open; not stored. */
struct blockdir {
	uint32_t shift;
	size_t npages;
	uint32_t *first;
};

/* The packed tables of an open index. */
struct packed {
	struct blockdir rdir, ldir;
	const struct block *rb, *nb, *lb;
	size_t nrb, nnb, nlb;
	const uint8_t *rd, *nd, *ld;
	size_t rd_size, nd_size, ld_size;
	size_t nranges, nnodes, nlines;
};

struct symindex {
	void *map;
	size_t size;
	struct symview view; /* funcs, syms, strs, base */
	struct packed packed;
	char **dem; /* per function: its demangled name once made (atomics), or NULL */
};

/* --- varints ------------------------------------------------------------------------------ */

struct vreader {
	const uint8_t *p, *end;
	int bad;
};

static uint64_t get_u(struct vreader *r)
{
	uint64_t v = 0;

	for (int shift = 0; shift < 64; shift += 7) {
		if (r->p >= r->end) {
			r->bad = 1;
			return 0;
		}
		uint8_t b = *r->p++;
		v |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80))
			return v;
	}
	r->bad = 1;
	return 0;
}

static int64_t get_s(struct vreader *r)
{
	uint64_t u = get_u(r);
	return (int64_t)(u >> 1) ^ -(int64_t)(u & 1);
}

struct writer {
	uint8_t *buf;
	size_t n, cap;
	int err;
};

static void put_u(struct writer *w, uint64_t v)
{
	if (w->err || (w->err = vec_reserve((void **)&w->buf, &w->cap, w->n + 10, 1)))
		return;
	do {
		uint8_t b = v & 0x7f;
		v >>= 7;
		w->buf[w->n++] = b | (v ? 0x80 : 0);
	} while (v);
}

static void put_s(struct writer *w, int64_t v)
{
	put_u(w, ((uint64_t)v << 1) ^ (uint64_t)(v >> 63));
}

/* --- access to either form ------------------------------------------------------------------ */

struct tables {
	const struct symview *v;
	const struct packed *p; /* NULL: plain arrays in v */
	char **dem;		/* an index's demangled names made on use; NULL for plain arrays */
};

/* Index of the last block with addr <= A, or -1. */
static long find_block(const struct block *b, size_t nb, const struct blockdir *dir, uint32_t a)
{
	size_t page = a >> dir->shift, lo, hi;

	if (!dir->first || page + 1 >= dir->npages)
		return bsearch_last_le32(b, nb, sizeof(*b), a);
	lo = dir->first[page];
	hi = (size_t)dir->first[page + 1] + 1;
	if (lo > nb || hi > nb || lo > hi)
		return -1;
	if (lo == 0 && b[0].addr > a)
		return -1;
	return (long)lo + bsearch_last_le32(b + lo, hi - lo, sizeof(*b), a);
}

static int build_dir(const struct block *b, size_t nb, struct blockdir *dir)
{
	uint64_t span;

	memset(dir, 0, sizeof(*dir));
	if (nb < 64)
		return 0;
	span = (uint64_t)b[nb - 1].addr + 1;
	dir->shift = 8;
	while ((span >> dir->shift) > (1u << 18))
		dir->shift++;
	dir->npages = (size_t)(span >> dir->shift) + 2;
	dir->first = malloc(dir->npages * sizeof(*dir->first));
	if (!dir->first)
		return -ENOMEM;
	for (size_t pg = 0, i = 0; pg < dir->npages; pg++) {
		uint64_t start = (uint64_t)pg << dir->shift;

		while (i + 1 < nb && b[i + 1].addr <= start)
			i++;
		dir->first[pg] = (uint32_t)i;
	}
	return 0;
}

static struct vreader block_reader(const struct block *b, size_t nb, size_t i, const uint8_t *data,
				   size_t size)
{
	struct vreader r = {0};
	size_t end = i + 1 < nb ? b[i + 1].off : size;

	if (b[i].off > end || end > size)
		r.bad = 1;
	else
		r.p = data + b[i].off, r.end = data + end;
	return r;
}

/* The node covering A, SYMIDX_NONE when no DWARF function does. */
static uint32_t t_range(const struct tables *t, uint32_t a)
{
	const struct packed *p = t->p;
	uint32_t addr, node = SYMIDX_NONE, last = 0;
	struct vreader r;
	long bi, i;

	if (!p) {
		i = bsearch_last_le32(t->v->ranges, t->v->nranges, sizeof(*t->v->ranges), a);
		return i < 0 ? SYMIDX_NONE : t->v->ranges[i].node;
	}
	bi = find_block(p->rb, p->nrb, &p->rdir, a);
	if (bi < 0)
		return SYMIDX_NONE;
	r = block_reader(p->rb, p->nrb, (size_t)bi, p->rd, p->rd_size);
	addr = p->rb[bi].addr;
	last = (uint32_t)get_u(&r);
	for (int k = 0; k < RBLOCK && r.p < r.end && !r.bad; k++) {
		uint64_t x = get_u(&r);

		addr += (uint32_t)(x >> 1);
		if (addr > a)
			break;
		if (x & 1) {
			node = SYMIDX_NONE;
		} else {
			last += (uint32_t)get_s(&r);
			node = last;
		}
	}
	return r.bad ? SYMIDX_NONE : node;
}

/* The line row covering A; false when none (or a gap). */
static int t_line(const struct tables *t, uint32_t a, struct symidx_line *out)
{
	const struct packed *p = t->p;
	struct symidx_line row = {0, SYMIDX_NONE, 0, 0};
	struct vreader r;
	long bi, i;

	if (!p) {
		i = bsearch_last_le32(t->v->lines, t->v->nlines, sizeof(*t->v->lines), a);
		if (i < 0)
			return 0;
		*out = t->v->lines[i];
		return out->file != SYMIDX_NONE;
	}
	bi = find_block(p->lb, p->nlb, &p->ldir, a);
	if (bi < 0)
		return 0;
	r = block_reader(p->lb, p->nlb, (size_t)bi, p->ld, p->ld_size);
	row.addr = p->lb[bi].addr;
	for (int k = 0; k < LBLOCK && r.p < r.end; k++) {
		struct symidx_line next = row;
		uint64_t x;

		if (k) {
			next.addr += (uint32_t)get_u(&r);
			if (next.addr > a || r.bad)
				break;
		}
		x = get_u(&r);
		next.line =
		    (uint32_t)((int64_t)row.line + ((int64_t)(x >> 2) ^ -(int64_t)((x >> 1) & 1)));
		if (x & 1)
			next.file = (uint32_t)get_u(&r) - 1;
		next.col = (uint32_t)get_u(&r);
		if (r.bad)
			return 0;
		row = next;
	}
	*out = row;
	return row.file != SYMIDX_NONE;
}

static int t_node(const struct tables *t, uint32_t id, struct symidx_node *out)
{
	const struct packed *p = t->p;
	struct vreader r;
	uint32_t first;

	if (!p) {
		if (id >= t->v->nnodes)
			return 0;
		*out = t->v->nodes[id];
		return 1;
	}
	if (id >= p->nnodes || id / NBLOCK >= p->nnb)
		return 0;
	r = block_reader(p->nb, p->nnb, id / NBLOCK, p->nd, p->nd_size);
	first = id - id % NBLOCK;
	for (uint32_t k = first; k <= id && !r.bad; k++) {
		uint64_t up;

		memset(out, 0, sizeof(*out));
		out->func = (uint32_t)get_u(&r);
		up = get_u(&r);
		out->parent = up ? k - (uint32_t)up : SYMIDX_NONE;
		out->call_file = SYMIDX_NONE;
		if (up) {
			out->flags = SYMIDX_NODE_INLINED;
			out->call_file = (uint32_t)get_u(&r) - 1;
			out->call_line = (uint32_t)get_u(&r);
			out->call_col = (uint16_t)get_u(&r);
		}
	}
	return !r.bad;
}

static uint32_t t_nnodes(const struct tables *t)
{
	return (uint32_t)(t->p ? t->p->nnodes : t->v->nnodes);
}

/* --- lookup ---------------------------------------------------------------------------- */

static const char *view_str(const struct symview *v, uint32_t off)
{
	if (off == SYMIDX_NONE || off >= v->strs_size)
		return NULL;
	return v->strs + off;
}

/* The demangled name of function FUNC, made once per index: threads that race each make it,
 * one copy is kept, the others are freed. NULL when demangling fails (out of memory). */
static const char *made_demangled(char **slot, const char *name)
{
	char *s = __atomic_load_n(slot, __ATOMIC_ACQUIRE), *none = NULL;

	if (s || !name || !(s = demangle(name)))
		return s;
	if (__atomic_compare_exchange_n(slot, &none, s, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
		return s;
	free(s);
	return none; /* the winner's copy */
}

static void set_func(const struct tables *t, uint32_t func, struct sym_frame *f)
{
	const struct symview *v = t->v;

	if (func >= v->nfuncs)
		return;
	f->linkage = view_str(v, v->funcs[func].name);
	if (v->funcs[func].demangled == SYMIDX_NONE && t->dem)
		f->function = made_demangled(&t->dem[func], f->linkage);
	else
		f->function = view_str(v, v->funcs[func].demangled);
	if (!f->function)
		f->function = f->linkage;
}

/*
 * The ELF symbol for A, ranked as libdwfl's dwfl_module_addrsym ranks them: the sized symbol
 * covering A with the highest address wins (ties: stronger binding, then smaller size, which
 * the build order puts last within one address); failing that, the closest sizeless label above
 * every sized symbol below A. The scan back is bounded: nested symbols deeper than that are
 * not worth an unbounded walk.
 */
static long find_sym(const struct symview *v, uint32_t a)
{
	uint64_t min_label = 0;
	long label = -1;
	long i = bsearch_last_le32(v->syms, v->nsyms, sizeof(*v->syms), a);

	for (long j = i, seen = 0; j >= 0 && seen < 256; j--, seen++) {
		const struct symidx_sym *s = &v->syms[j];
		uint64_t end = (uint64_t)s->addr + s->size;

		if (s->size && a < end)
			return j;
		if (end > min_label)
			min_label = end;
		if (!s->size && label < 0)
			label = j;
	}
	if (label >= 0 && v->syms[label].addr >= min_label)
		return label;
	return -1;
}

static void lookup_symtab(const struct tables *t, uint64_t addr, struct sym_frame *out)
{
	const struct symview *v = t->v;
	long si;

	memset(out, 0, sizeof(*out));
	if (addr < v->base || addr - v->base > UINT32_MAX)
		return;
	si = find_sym(v, (uint32_t)(addr - v->base));
	if (si >= 0) {
		set_func(t, v->syms[si].func, out);
		out->source = out->function ? SYM_SRC_SYMTAB : SYM_SRC_NONE;
	}
}

static int lookup(const struct tables *t, uint64_t addr, struct sym_frame *out, int max)
{
	const struct symview *v = t->v;
	struct symidx_line row;
	struct symidx_node nd;
	const char *file = NULL;
	uint32_t line = 0, col = 0, a, node;
	int n = 0;

	memset(out, 0, sizeof(*out));
	if (addr < v->base || addr - v->base > UINT32_MAX)
		return 1;
	a = (uint32_t)(addr - v->base);
	if (t_line(t, a, &row)) {
		file = view_str(v, row.file);
		line = row.line;
		col = row.col;
	}
	node = t_range(t, a);
	while (node < t_nnodes(t) && n < max && t_node(t, node, &nd)) {
		struct sym_frame *f = &out[n++];

		memset(f, 0, sizeof(*f));
		set_func(t, nd.func, f);
		f->file = file;
		f->line = line;
		f->column = col;
		f->source = SYM_SRC_DWARF;
		f->inlined = (nd.flags & SYMIDX_NODE_INLINED) && nd.parent < t_nnodes(t);
		if (!f->inlined)
			break;
		file = view_str(v, nd.call_file);
		line = nd.call_line;
		col = nd.call_col;
		node = nd.parent;
	}
	if (n > 0)
		return n;
	lookup_symtab(t, addr, out);
	out->file = file;
	out->line = line;
	out->column = col;
	return 1;
}

int symidx_sym_cmp(const void *a, const void *b)
{
	const struct symidx_sym *x = a, *y = b;

	if (x->addr != y->addr)
		return x->addr < y->addr ? -1 : 1;
	if (x->bind != y->bind)
		return x->bind < y->bind ? -1 : 1;
	if (x->size != y->size)
		return x->size > y->size ? -1 : 1;
	return 0;
}

int symview_lookup(const struct symview *v, uint64_t addr, struct sym_frame *out, int max)
{
	struct tables t = {v, NULL, NULL};
	return lookup(&t, addr, out, max);
}

void symview_lookup_symtab(const struct symview *v, uint64_t addr, struct sym_frame *out)
{
	struct tables t = {v, NULL, NULL};
	lookup_symtab(&t, addr, out);
}

int symindex_lookup(const struct symindex *idx, uint64_t addr, struct sym_frame *out, int max)
{
	struct tables t = {&idx->view, &idx->packed, idx->dem};
	return lookup(&t, addr, out, max);
}

void symindex_lookup_symtab(const struct symindex *idx, uint64_t addr, struct sym_frame *out)
{
	struct tables t = {&idx->view, &idx->packed, idx->dem};
	lookup_symtab(&t, addr, out);
}

void symindex_counts(const struct symindex *idx, size_t *nranges, size_t *nnodes, size_t *nlines)
{
	*nranges = idx->packed.nranges;
	*nnodes = idx->packed.nnodes;
	*nlines = idx->packed.nlines;
}

/* --- packing -------------------------------------------------------------------------------- */

struct packed_out {
	struct writer data;
	struct block *blocks;
	size_t nblocks, cap;
	int err;
};

static void start_block(struct packed_out *o, uint32_t addr)
{
	struct block b = {addr, (uint32_t)o->data.n};

	if (!o->err && o->data.n > UINT32_MAX)
		o->err = -E2BIG;
	if (!o->err)
		o->err = VEC_PUSH(o->blocks, o->nblocks, o->cap, b);
}

/* A range block: the running node base, then per entry u(addr delta << 1 | gap) (delta 0 for the
 * first) and, unless a gap, s(node - previous real node). */
static int pack_ranges(const struct symview *v, struct packed_out *o)
{
	uint32_t last = 0, prev_addr = 0;

	for (size_t i = 0; i < v->nranges && !o->err && !o->data.err; i++) {
		const struct symidx_range *r = &v->ranges[i];
		int gap = r->node == SYMIDX_NONE;

		if (i % RBLOCK == 0) {
			start_block(o, r->addr);
			put_u(&o->data, last);
			prev_addr = r->addr;
		}
		put_u(&o->data, ((uint64_t)(r->addr - prev_addr) << 1) | (uint64_t)gap);
		if (!gap) {
			put_s(&o->data, (int64_t)r->node - (int64_t)last);
			last = r->node;
		}
		prev_addr = r->addr;
	}
	return o->err ? o->err : o->data.err;
}

/* The strings an index keeps: those its tables reference, renumbered in the order first
 * referenced, less the demangled names that demangle() makes again from the linkage name. */
struct strtab {
	const struct symview *v;
	struct u64map at; /* offset in v->strs -> offset in the index */
	struct writer out;
	int err;
};

static uint32_t strtab_keep(struct strtab *st, uint32_t off)
{
	const char *s = view_str(st->v, off);
	uint32_t n;
	size_t len;

	if (!s || st->err)
		return SYMIDX_NONE;
	if (u64map_get(&st->at, off, &n))
		return n;
	len = strnlen(s, st->v->strs_size - off);
	if (st->out.n + len + 1 >= SYMIDX_NONE) {
		st->err = -E2BIG;
		return SYMIDX_NONE;
	}
	if ((st->err = vec_reserve((void **)&st->out.buf, &st->out.cap, st->out.n + len + 1, 1)))
		return SYMIDX_NONE;
	n = (uint32_t)st->out.n;
	memcpy(st->out.buf + n, s, len);
	st->out.buf[n + len] = 0;
	st->out.n += len + 1;
	st->err = u64map_put(&st->at, off, n);
	return n;
}

/* Whether demangle() makes F's demangled name from its linkage name. */
static int remade(const struct symview *v, const struct symidx_func *f)
{
	const char *name = view_str(v, f->name), *dem = view_str(v, f->demangled);
	char *d;
	int same;

	if (!name || !dem)
		return 0;
	d = demangle(name);
	same = d && strcmp(d, dem) == 0;
	free(d);
	return same;
}

/* The function table with its names in ST; *OUT malloc'd (the caller frees it). */
static int keep_funcs(struct strtab *st, struct symidx_func **out)
{
	const struct symview *v = st->v;
	struct symidx_func *nf = v->nfuncs ? malloc(v->nfuncs * sizeof(*nf)) : NULL;

	*out = nf;
	if (v->nfuncs && !nf)
		return -ENOMEM;
	for (size_t i = 0; i < v->nfuncs && !st->err; i++) {
		const struct symidx_func *f = &v->funcs[i];

		nf[i].name = strtab_keep(st, f->name);
		if (f->demangled == f->name)
			nf[i].demangled = nf[i].name;
		else if (remade(v, f))
			nf[i].demangled = SYMIDX_NONE;
		else
			nf[i].demangled = strtab_keep(st, f->demangled);
	}
	return st->err;
}

static int pack_lines(const struct symview *v, struct strtab *st, struct packed_out *o)
{
	struct symidx_line prev = {0};

	for (size_t i = 0; i < v->nlines && !o->err && !o->data.err && !st->err; i++) {
		struct symidx_line row = v->lines[i], *l = &row;
		int64_t dl;
		int file_changed;

		row.file = strtab_keep(st, row.file);

		if (i % LBLOCK == 0) {
			start_block(o, l->addr);
			prev = (struct symidx_line){l->addr, SYMIDX_NONE - 1, 0, 0};
		} else {
			put_u(&o->data, l->addr - prev.addr);
		}
		file_changed = l->file != prev.file;
		dl = (int64_t)l->line - (int64_t)prev.line;
		put_u(&o->data,
		      ((((uint64_t)dl << 1) ^ (uint64_t)(dl >> 63)) << 1) | (uint64_t)file_changed);
		if (file_changed)
			put_u(&o->data, (uint64_t)l->file + 1);
		put_u(&o->data, l->col);
		prev = *l;
	}
	return o->err ?: o->data.err ?: st->err;
}

static int pack_nodes(const struct symview *v, struct strtab *st, struct packed_out *o)
{
	for (size_t i = 0; i < v->nnodes && !o->err && !o->data.err && !st->err; i++) {
		const struct symidx_node *n = &v->nodes[i];
		int inlined = (n->flags & SYMIDX_NODE_INLINED) && n->parent < i;

		if (i % NBLOCK == 0)
			start_block(o, 0);
		put_u(&o->data, n->func);
		put_u(&o->data, inlined ? i - n->parent : 0);
		if (inlined) {
			put_u(&o->data, (uint64_t)strtab_keep(st, n->call_file) + 1);
			put_u(&o->data, n->call_line);
			put_u(&o->data, n->call_col);
		}
	}
	return o->err ?: o->data.err ?: st->err;
}

/* --- the file -------------------------------------------------------------------------- */

/* A fast 64-bit checksum (four multiply-rotate lanes): catches damaged files, not attackers. */
static uint64_t checksum(const void *buf, size_t len)
{
	const uint64_t k1 = 0x9e3779b185ebca87ull, k2 = 0xc2b2ae3d27d4eb4full;
	uint64_t lane[4] = {k1, k2, k1 ^ k2, len};
	const unsigned char *p = buf;
	uint64_t h;
	size_t i = 0;

	for (; i + 32 <= len; i += 32)
		for (int j = 0; j < 4; j++) {
			uint64_t w;
			memcpy(&w, p + i + 8 * j, 8);
			lane[j] = ((lane[j] ^ w) * k1);
			lane[j] = (lane[j] << 31 | lane[j] >> 33) * k2;
		}
	h = lane[0] ^ (lane[1] << 7 | lane[1] >> 57) ^ (lane[2] << 13 | lane[2] >> 51) ^
	    (lane[3] << 29 | lane[3] >> 35);
	for (; i < len; i++)
		h = (h ^ p[i]) * k1;
	h ^= h >> 33;
	h *= k2;
	return h ^ (h >> 29);
}

static size_t align8(size_t n)
{
	return (n + 7) & ~(size_t)7;
}

/* Lay the sections out in one buffer, header first; *OUT owned by the caller. */
static int build_image(const struct symview *v, const char *build_id, uint8_t **out, size_t *len)
{
	struct packed_out po[3] = {0};
	struct strtab st = {.v = v};
	struct symidx_func *funcs = NULL;
	const void *ptr[S_N];
	size_t size[S_N], off = sizeof(struct symidx_header);
	struct symidx_header *h;
	uint8_t *img;
	int err;

	err = keep_funcs(&st, &funcs) ?: pack_ranges(v, &po[0]) ?: pack_nodes(v, &st, &po[1])
						  ?: pack_lines(v, &st, &po[2]);
	if (err)
		goto out;
	for (int i = 0; i < 3; i++) {
		ptr[2 * i] = po[i].blocks, size[2 * i] = po[i].nblocks * sizeof(struct block);
		ptr[2 * i + 1] = po[i].data.buf, size[2 * i + 1] = po[i].data.n;
	}
	ptr[S_FUNCS] = funcs, size[S_FUNCS] = v->nfuncs * sizeof(*funcs);
	ptr[S_SYMS] = v->syms, size[S_SYMS] = v->nsyms * sizeof(*v->syms);
	ptr[S_STRS] = st.out.buf, size[S_STRS] = st.out.n;
	for (int i = 0; i < S_N; i++)
		off += align8(size[i]);
	img = calloc(1, off);
	if (!img) {
		err = -ENOMEM;
		goto out;
	}
	h = (struct symidx_header *)img;
	memcpy(h->magic, SYMIDX_MAGIC, sizeof(SYMIDX_MAGIC));
	h->version = SYMIDX_VERSION;
	h->size = off;
	h->base = v->base;
	snprintf(h->build_id, sizeof(h->build_id), "%s", build_id);
	h->nranges = v->nranges, h->nnodes = v->nnodes, h->nlines = v->nlines;
	off = sizeof(*h);
	for (int i = 0; i < S_N; i++) {
		h->sect[i].off = off;
		h->sect[i].size = size[i];
		if (size[i])
			memcpy(img + off, ptr[i], size[i]);
		off += align8(size[i]);
	}
	h->hash = checksum(img + sizeof(*h), off - sizeof(*h));
	*out = img;
	*len = off;
out:
	for (int i = 0; i < 3; i++) {
		free(po[i].blocks);
		free(po[i].data.buf);
	}
	free(funcs);
	free(st.out.buf);
	u64map_free(&st.at);
	return err;
}

int symindex_write(const struct symview *v, const char *build_id, const char *path)
{
	uint8_t *img = NULL;
	size_t len = 0;
	int err;

	if (strlen(build_id) >= sizeof(((struct symidx_header *)0)->build_id))
		return -ERR_BADBUILDID;
	err = build_image(v, build_id, &img, &len);
	if (!err)
		err = fsutil_write_atomic(path, img, len, 0644);
	free(img);
	return err;
}

static int check_header(const struct symidx_header *h, size_t size, const char *build_id,
			int verify)
{
	if (memcmp(h->magic, SYMIDX_MAGIC, sizeof(SYMIDX_MAGIC)) != 0 ||
	    h->version != SYMIDX_VERSION || h->size != size ||
	    memchr(h->build_id, 0, sizeof(h->build_id)) == NULL)
		return -ERR_BADINDEX;
	if (build_id && strcmp(h->build_id, build_id) != 0)
		return -ERR_BADINDEX;
	for (int i = 0; i < S_N; i++) {
		uint64_t off = h->sect[i].off, sz = h->sect[i].size;

		if (off % 8 || off < sizeof(*h) || off > size || sz > size - off)
			return -ERR_BADINDEX;
	}
	if (h->sect[S_RBLOCKS].size % sizeof(struct block) ||
	    h->sect[S_NBLOCKS].size % sizeof(struct block) ||
	    h->sect[S_LBLOCKS].size % sizeof(struct block) ||
	    h->sect[S_FUNCS].size % sizeof(struct symidx_func) ||
	    h->sect[S_SYMS].size % sizeof(struct symidx_sym) ||
	    h->sect[S_NBLOCKS].size / sizeof(struct block) < (h->nnodes + NBLOCK - 1) / NBLOCK)
		return -ERR_BADINDEX;
	if (h->sect[S_STRS].size &&
	    ((const char *)h)[h->sect[S_STRS].off + h->sect[S_STRS].size - 1])
		return -ERR_BADINDEX;
	if (verify && checksum((const char *)h + sizeof(*h), size - sizeof(*h)) != h->hash)
		return -ERR_BADINDEX;
	return 0;
}

static void map_tables(struct symindex *idx)
{
	const struct symidx_header *h = idx->map;
	const char *b = idx->map;
	struct packed *p = &idx->packed;
	struct symview *v = &idx->view;

#define SECT(i)	       ((const void *)(b + h->sect[i].off))
#define COUNT(i, type) (h->sect[i].size / sizeof(type))
	v->base = h->base;
	v->funcs = SECT(S_FUNCS), v->nfuncs = COUNT(S_FUNCS, struct symidx_func);
	v->syms = SECT(S_SYMS), v->nsyms = COUNT(S_SYMS, struct symidx_sym);
	v->strs = SECT(S_STRS), v->strs_size = h->sect[S_STRS].size;
	p->rb = SECT(S_RBLOCKS), p->nrb = COUNT(S_RBLOCKS, struct block);
	p->nb = SECT(S_NBLOCKS), p->nnb = COUNT(S_NBLOCKS, struct block);
	p->lb = SECT(S_LBLOCKS), p->nlb = COUNT(S_LBLOCKS, struct block);
	p->rd = SECT(S_RDATA), p->rd_size = h->sect[S_RDATA].size;
	p->nd = SECT(S_NDATA), p->nd_size = h->sect[S_NDATA].size;
	p->ld = SECT(S_LDATA), p->ld_size = h->sect[S_LDATA].size;
	p->nranges = h->nranges, p->nnodes = h->nnodes, p->nlines = h->nlines;
#undef SECT
#undef COUNT
}

/* "Verified once": after a full check, the file carries this stamp of what it was then (an
 * xattr). An open that finds the stamp matching the file as it is now (size, mtime, inode, the
 * header's checksum) skips the checksum pass; any write since changes the mtime, so a damaged
 * file is checked again. Where xattrs are not supported every open verifies. */
#define STAMP_XATTR "user.fleetsym.verified"

static void stamp_text(const struct stat *st, uint64_t hash, char *buf, size_t len)
{
	snprintf(buf, len, "1 %lld %lld.%09ld %llu %016llx", (long long)st->st_size,
		 (long long)st->st_mtim.tv_sec, st->st_mtim.tv_nsec, (unsigned long long)st->st_ino,
		 (unsigned long long)hash);
}

static int stamped(int fd, const struct stat *st, uint64_t hash)
{
	char want[128], got[128];
	ssize_t n = fgetxattr(fd, STAMP_XATTR, got, sizeof(got) - 1);

	if (n <= 0)
		return 0;
	got[n] = '\0';
	stamp_text(st, hash, want, sizeof(want));
	return !strcmp(want, got);
}

static void stamp(int fd, const struct stat *st, uint64_t hash)
{
	char buf[128];

	stamp_text(st, hash, buf, sizeof(buf));
	(void)!fsetxattr(fd, STAMP_XATTR, buf, strlen(buf), 0); /* unsupported: verify each time */
}

int symindex_open(const char *path, const char *build_id, struct symindex **out)
{
	struct symindex *idx = NULL;
	struct stat st;
	int fd, err, verify = 1;

	*out = NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		err = -errno;
		goto out;
	}
	if ((size_t)st.st_size < sizeof(struct symidx_header)) {
		err = -ERR_BADINDEX;
		goto out;
	}
	idx = calloc(1, sizeof(*idx));
	if (!idx) {
		err = -ENOMEM;
		goto out;
	}
	idx->size = (size_t)st.st_size;
	idx->map = mmap(NULL, idx->size, PROT_READ, MAP_PRIVATE, fd, 0);
	if (idx->map == MAP_FAILED) {
		idx->map = NULL;
		err = -errno;
		goto out;
	}
	verify = !stamped(fd, &st, ((const struct symidx_header *)idx->map)->hash);
	if (verify) /* the checksum reads every byte anyway: fault them in at once */
		(void)madvise(idx->map, idx->size, MADV_WILLNEED);
	err = check_header(idx->map, idx->size, build_id, verify);
	if (!err && verify)
		stamp(fd, &st, ((const struct symidx_header *)idx->map)->hash);
	if (!err) {
		map_tables(idx);
		err = build_dir(idx->packed.rb, idx->packed.nrb, &idx->packed.rdir)
			  ?: build_dir(idx->packed.lb, idx->packed.nlb, &idx->packed.ldir);
	}
	if (!err && idx->view.nfuncs && !(idx->dem = calloc(idx->view.nfuncs, sizeof(char *))))
		err = -ENOMEM;
out:
	close(fd);
	if (err) {
		if (err == -ERR_BADINDEX)
			log_msg(FS_LOG_WARN, "symbol index %s: %s", path, err_str(err));
		symindex_close(idx);
		return err;
	}
	*out = idx;
	return 0;
}

void symindex_close(struct symindex *idx)
{
	if (!idx)
		return;
	if (idx->map)
		munmap(idx->map, idx->size);
	for (size_t i = 0; idx->dem && i < idx->view.nfuncs; i++)
		free(idx->dem[i]);
	free(idx->dem);
	free(idx->packed.rdir.first);
	free(idx->packed.ldir.first);
	free(idx);
}
