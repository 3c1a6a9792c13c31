/*
 * render - three steps for every format:
 *
 *   model: every location of every side expanded into frames (function id, line, inlined),
 *          innermost first, with one string pool and one function table across sides, so a
 *          function is the same id in the base and the new profile of a diff;
 *   tree:  the call tree, root first, with per-side self and total values (the flat formats
 *          — top, pprof — read the model directly);
 *   write: a walk with an explicit stack (stacks of untrusted depth never recurse in C).
 *
 * Node lines: a node merges every location of its function under one parent, so its "line"
 * is the one that carried the most value there (exact: per (node, line) sums).
 */
#include "symbolizer/query/render.h"

#include "lib/pprof_builder.h"
#include "lib/vec.h"
#include "lib/strpool.h"
#include "lib/u64map.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NSIDES	     2
#define MAX_FILES    8 /* file names listed per build ID in /missing */
#define OTHER_NAME   "other"
#define NOFRAME_NAME "[no frames]"

/* ---- model ---- */

struct func {
	uint32_t name, file; /* pool offsets (file: STRPOOL_NONE when unknown) */
	uint32_t bid;	     /* build ID of an unknown frame's file, or STRPOOL_NONE */
	uint32_t mapping;    /* the file name the agent saw, for unknown frames */
	uint8_t unknown;
};

struct mframe {
	uint32_t fid;
	uint32_t line;
	uint8_t inlined;
};

struct render_side {
	const struct render_input *in;
	uint32_t *first, *n; /* per location: its frames in m->fr */
};

struct model {
	struct strpool pool;
	struct func *funcs;
	size_t nfuncs, funcs_cap;
	struct u64map fix; /* (name, file or build ID) → function id */
	struct mframe *fr;
	size_t nfr, fr_cap;
	struct render_side sides[NSIDES];
	int nsides;
	struct mframe trunc; /* "[truncated]", the root of stacks cut at RENDER_MAX_FRAMES */
	int has_trunc;	     /* trunc made (only when a stack needs it: it is a function too) */
};

static void model_free(struct model *m)
{
	strpool_free(&m->pool);
	free(m->funcs);
	u64map_free(&m->fix);
	free(m->fr);
	for (int i = 0; i < m->nsides; i++) {
		free(m->sides[i].first);
		free(m->sides[i].n);
	}
}

static int func_id(struct model *m, const struct func *f, uint32_t *id)
{
	uint64_t key = u64map_pair(f->name, f->unknown ? f->bid : f->file);
	int err;

	if (u64map_get(&m->fix, key, id))
		return 0;
	if (m->nfuncs >= INT32_MAX)
		return -E2BIG;
	err = VEC_PUSH(m->funcs, m->nfuncs, m->funcs_cap, *f);
	if (!err)
		err = u64map_put(&m->fix, key, (uint32_t)(m->nfuncs - 1));
	*id = (uint32_t)(m->nfuncs - 1);
	return err;
}

static const char *base_name(const char *path)
{
	const char *s = path ? strrchr(path, '/') : NULL;

	return s ? s + 1 : path;
}

/* The frame of an unknown location: "FILE+0xOFF", FILE the base name of the agent's file, else
 * the build ID's first 12 digits, else "?". */
static int unknown_func(struct model *m, const struct pstore_loc *l, uint32_t *fid)
{
	const char *file = base_name(l->mapping_file);
	struct func f = {.unknown = 1, .file = STRPOOL_NONE};
	char name[512];
	int err;

	if (!file || !*file)
		file = l->build_id[0] ? l->build_id : "?";
	snprintf(name, sizeof(name), "%.*s+0x%" PRIx64, file == l->build_id ? 12 : 400, file,
		 l->file_off);
	err = strpool_intern(&m->pool, name, &f.name);
	if (!err)
		err = strpool_intern(&m->pool, l->build_id[0] ? l->build_id : NULL, &f.bid);
	if (!err)
		err = strpool_intern(&m->pool,
				     l->mapping_file && *l->mapping_file ? l->mapping_file : NULL,
				     &f.mapping);
	return err ? err : func_id(m, &f, fid);
}

static int model_add(struct model *m, const struct render_input *in)
{
	const struct pstore_result *r = in->r;
	struct render_side *sd = &m->sides[m->nsides++];
	int err = 0;

	sd->in = in;
	sd->first = calloc(r->nlocs + 1, sizeof(*sd->first));
	sd->n = calloc(r->nlocs + 1, sizeof(*sd->n));
	if (!sd->first || !sd->n)
		return -ENOMEM;
	for (size_t i = 0; i < r->nlocs && !err; i++) {
		const struct qsym_loc *ql = &in->s->locs[i];
		struct mframe mf = {0};

		sd->first[i] = (uint32_t)m->nfr;
		if (ql->unknown || !ql->nframes) {
			err = unknown_func(m, &r->locs[i], &mf.fid);
			if (!err)
				err = VEC_PUSH(m->fr, m->nfr, m->fr_cap, mf);
			sd->n[i] = 1;
			continue;
		}
		for (uint32_t k = 0; k < ql->nframes && !err; k++) {
			const struct qsym_frame *qf = &ql->frames[k];
			struct func f = {.bid = STRPOOL_NONE, .mapping = STRPOOL_NONE};

			err = strpool_intern(&m->pool, qf->function, &f.name);
			if (!err)
				err = strpool_intern(&m->pool, qf->file, &f.file);
			if (!err)
				err = func_id(m, &f, &mf.fid);
			mf.line = qf->line > 0 && qf->line <= UINT32_MAX ? (uint32_t)qf->line : 0;
			mf.inlined = qf->inlined;
			if (!err)
				err = VEC_PUSH(m->fr, m->nfr, m->fr_cap, mf);
		}
		sd->n[i] = ql->nframes;
	}
	return err;
}

static const char *fname(const struct model *m, uint32_t fid)
{
	return strpool_str(&m->pool, m->funcs[fid].name);
}

static const char *ffile(const struct model *m, uint32_t fid)
{
	return strpool_str(&m->pool, m->funcs[fid].file);
}

/* ---- tree ---- */

struct node {
	uint32_t fid;
	uint32_t parent;
	uint32_t line; /* the first line seen, then the one with the most value */
	uint8_t inlined;
	uint8_t has_line;
	uint8_t multi;	      /* more than one line seen: their values are in t->lix */
	int64_t line_val;     /* value of LINE while !multi */
	uint32_t kid0, nkids; /* into t->kids, after tree_index() */
	int64_t self[NSIDES], total[NSIDES];
};

struct tree {
	struct model *m;
	struct node *n;
	size_t nn, n_cap;
	struct u64map ix; /* (parent, fid << 1 | inlined) → node */
	uint32_t *kids;
	/* per (node, line) value, to pick each node's line */
	struct u64map lix;
	int64_t *lval;
	uint32_t *lnode, *lline;
	size_t nl, lval_cap, lnode_cap, lline_cap;
	int64_t side_total[NSIDES];
	double *wt; /* per node: weight(), after tree_index() */
};

static void tree_free(struct tree *t)
{
	free(t->n);
	u64map_free(&t->ix);
	free(t->kids);
	u64map_free(&t->lix);
	free(t->lval);
	free(t->lnode);
	free(t->lline);
	free(t->wt);
}

static int child(struct tree *t, uint32_t parent, const struct mframe *f, uint32_t *out)
{
	uint64_t key = u64map_pair(parent, f->fid << 1 | f->inlined);
	struct node nd = {.fid = f->fid, .parent = parent, .inlined = f->inlined};
	int err;

	if (u64map_get(&t->ix, key, out))
		return 0;
	if (t->nn >= UINT32_MAX - 1)
		return -E2BIG;
	err = VEC_PUSH(t->n, t->nn, t->n_cap, nd);
	if (!err)
		err = u64map_put(&t->ix, key, (uint32_t)(t->nn - 1));
	*out = (uint32_t)(t->nn - 1);
	return err;
}

static int line_add(struct tree *t, uint32_t node, uint32_t line, int64_t v);

/* Most nodes see one line only; the (node, line) map is for the others. */
static int node_line(struct tree *t, uint32_t node, uint32_t line, int64_t v)
{
	struct node *nd = &t->n[node];
	int err;

	if (nd->multi)
		return line_add(t, node, line, v);
	if (!nd->has_line) {
		nd->has_line = 1;
		nd->line = line;
		nd->line_val = v;
		return 0;
	}
	if (nd->line == line) {
		nd->line_val += v;
		return 0;
	}
	nd->multi = 1;
	err = line_add(t, node, nd->line, nd->line_val);
	return err ? err : line_add(t, node, line, v);
}

static int line_add(struct tree *t, uint32_t node, uint32_t line, int64_t v)
{
	uint64_t key = u64map_pair(node, line);
	uint32_t i;
	int err;

	if (u64map_get(&t->lix, key, &i)) {
		t->lval[i] += v;
		return 0;
	}
	err = VEC_PUSH(t->lnode, t->nl, t->lnode_cap, node);
	if (!err) {
		t->nl--;
		err = VEC_PUSH(t->lline, t->nl, t->lline_cap, line);
	}
	if (!err) {
		t->nl--;
		err = VEC_PUSH(t->lval, t->nl, t->lval_cap, v);
	}
	if (!err)
		err = u64map_put(&t->lix, key, (uint32_t)(t->nl - 1));
	return err;
}

static int trunc_frame(struct model *m)
{
	struct func f = {.bid = STRPOOL_NONE, .mapping = STRPOOL_NONE, .file = STRPOOL_NONE};
	int err;

	if (m->has_trunc)
		return 0;
	err = strpool_intern(&m->pool, "[truncated]", &f.name);
	if (!err)
		err = func_id(m, &f, &m->trunc.fid);
	m->has_trunc = !err;
	return err;
}

/* One frame of a stack into the tree under *CUR. */
static int tree_step(struct tree *t, int s, const struct mframe *f, int64_t v, uint32_t *cur)
{
	int err = child(t, *cur, f, cur);

	if (!err)
		err = node_line(t, *cur, f->line, v);
	if (!err)
		t->n[*cur].total[s] += v;
	return err;
}

/* A stack, root first, its locations expanded into their inline frames. A stack of more than
 * RENDER_MAX_FRAMES frames so expanded keeps its innermost ones under "[truncated]", as the
 * store does at ingest: 1,023 locations of 64 inline frames each once made one folded line of
 * 65,472 frames. */
static int tree_add_stack(struct tree *t, int s, const struct pstore_stack *st)
{
	const struct render_side *sd = &t->m->sides[s];
	size_t total = 0, skip = 0;
	uint32_t cur = 0;
	int err = 0;

	t->n[0].total[s] += st->value;
	for (size_t li = 0; li < st->nlocs; li++)
		if (st->locs[li] < sd->in->r->nlocs)
			total += sd->n[st->locs[li]];
	if (total > RENDER_MAX_FRAMES) {
		skip = total - (RENDER_MAX_FRAMES - 1);
		err = trunc_frame(t->m);
		if (!err)
			err = tree_step(t, s, &t->m->trunc, st->value, &cur);
	}
	for (size_t li = st->nlocs; li-- > 0 && !err;) {
		uint32_t loc = st->locs[li];

		if (loc >= sd->in->r->nlocs)
			continue; /* the store's bug; never index out of bounds */
		for (uint32_t k = sd->n[loc]; k-- > 0 && !err;) {
			if (skip) {
				skip--;
				continue;
			}
			err = tree_step(t, s, &t->m->fr[sd->first[loc] + k], st->value, &cur);
		}
	}
	if (!err)
		t->n[cur].self[s] += st->value;
	return err;
}

/* Lay the children out per node (kid0, nkids) and pick each node's line. */
static int tree_index(struct tree *t)
{
	uint32_t *fill;
	int64_t *best;

	t->kids = calloc(t->nn + 1, sizeof(*t->kids));
	fill = calloc(t->nn + 1, sizeof(*fill));
	best = calloc(t->nn + 1, sizeof(*best));
	if (!t->kids || !fill || !best) {
		free(fill);
		free(best);
		return -ENOMEM;
	}
	for (size_t i = 1; i < t->nn; i++)
		t->n[t->n[i].parent].nkids++;
	for (size_t i = 0, at = 0; i < t->nn; i++) {
		t->n[i].kid0 = (uint32_t)at;
		at += t->n[i].nkids;
	}
	for (size_t i = 1; i < t->nn; i++) {
		uint32_t p = t->n[i].parent;

		t->kids[t->n[p].kid0 + fill[p]++] = (uint32_t)i;
	}
	memset(fill, 0, (t->nn + 1) * sizeof(*fill));
	for (size_t i = 0; i < t->nl; i++) {
		uint32_t nd = t->lnode[i];

		if (!fill[nd] || t->lval[i] > best[nd]) {
			fill[nd] = UINT32_MAX; /* reused as "seen" */
			best[nd] = t->lval[i];
			t->n[nd].line = t->lline[i];
		}
	}
	free(fill);
	free(best);
	return 0;
}

/* The rank of a node for pruning and JSON order: its largest share of a side's total. */
static int tree_weigh(struct tree *t)
{
	t->wt = calloc(t->nn + 1, sizeof(*t->wt));
	if (!t->wt)
		return -ENOMEM;
	for (size_t i = 0; i < t->nn; i++)
		for (int s = 0; s < t->m->nsides; s++) {
			double v = t->side_total[s]
				       ? (double)t->n[i].total[s] / (double)t->side_total[s]
				       : 0;

			if (v < 0)
				v = -v;
			if (v > t->wt[i])
				t->wt[i] = v;
		}
	return 0;
}

static int tree_build(struct tree *t, struct model *m)
{
	struct node root = {.parent = UINT32_MAX};
	int err;

	t->m = m;
	err = VEC_PUSH(t->n, t->nn, t->n_cap, root);
	for (int s = 0; s < m->nsides && !err; s++) {
		const struct pstore_result *r = m->sides[s].in->r;

		for (size_t i = 0; i < r->nstacks && !err; i++)
			err = tree_add_stack(t, s, &r->stacks[i]);
		t->side_total[s] = t->n[0].total[s];
	}
	if (!err)
		err = tree_index(t);
	return err ? err : tree_weigh(t);
}

static int by_name(const void *a, const void *b, void *ctx);

static int by_weight(const void *a, const void *b, void *ctx)
{
	const struct tree *t = ctx;
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	double wx = t->wt[x], wy = t->wt[y];

	if (wx != wy)
		return wx > wy ? -1 : 1;
	return x < y ? -1 : x > y; /* an ancestor (lower index) before its descendants */
}

/* Siblings: by weight, equal weights by name, so that the order stacks came out of the store
 * does not show in the answer. */
static int by_weight_name(const void *a, const void *b, void *ctx)
{
	const struct tree *t = ctx;
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	if (t->wt[x] != t->wt[y])
		return t->wt[x] > t->wt[y] ? -1 : 1;
	return by_name(a, b, ctx);
}

static int by_name(const void *a, const void *b, void *ctx)
{
	const struct tree *t = ctx;
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	int c = strcmp(fname(t->m, t->n[x].fid), fname(t->m, t->n[y].fid));

	return c ? c : (x < y ? -1 : x > y);
}

static void sort_kids(struct tree *t, int (*cmp)(const void *, const void *, void *))
{
	for (size_t i = 0; i < t->nn; i++)
		if (t->n[i].nkids > 1)
			qsort_r(&t->kids[t->n[i].kid0], t->n[i].nkids, sizeof(*t->kids), cmp, t);
}

/* keep[i] for the MAX nodes of highest weight (all when MAX is 0), closed under parents. */
static int prune(struct tree *t, size_t max, uint8_t **keep)
{
	uint32_t *order;

	*keep = calloc(t->nn + 1, 1);
	if (!*keep)
		return -ENOMEM;
	if (!max || max + 1 >= t->nn) {
		memset(*keep, 1, t->nn);
		return 0;
	}
	order = calloc(t->nn, sizeof(*order));
	if (!order)
		return -ENOMEM;
	for (size_t i = 1; i < t->nn; i++)
		order[i - 1] = (uint32_t)i;
	qsort_r(order, t->nn - 1, sizeof(*order), by_weight, t);
	(*keep)[0] = 1;
	for (size_t k = 0; k < max; k++)
		for (uint32_t i = order[k]; i != UINT32_MAX && !(*keep)[i]; i = t->n[i].parent)
			(*keep)[i] = 1; /* parents outrank children; negative values aside */
	free(order);
	return 0;
}

/* ---- JSON tree (one side, or a diff of two) ---- */

static void write_share(struct jsonw *w, const char *key, int64_t v, int64_t total)
{
	jsonw_key(w, key);
	jsonw_printf(w, "%.6g", total ? (double)v / (double)total : 0.0);
}

/* KEY (already JSON, with its punctuation) and V: the tree's hot path, so no printf. */
static void put_i64(struct jsonw *w, const char *key, int64_t v)
{
	char buf[24], *p = buf + sizeof(buf);
	uint64_t u = v < 0 ? -(uint64_t)v : (uint64_t)v;

	do
		*--p = (char)('0' + u % 10);
	while (u /= 10);
	if (v < 0)
		*--p = '-';
	jsonw_lit(w, key);
	jsonw_raw(w, p, (size_t)(buf + sizeof(buf) - p));
}

static void write_values(struct jsonw *w, const struct tree *t, const int64_t *self,
			 const int64_t *total)
{
	if (t->m->nsides == 1) {
		put_i64(w, ",\"self\":", self[0]);
		put_i64(w, ",\"total\":", total[0]);
		return;
	}
	jsonw_printf(w,
		     ",\"self\":%" PRId64 ",\"total\":%" PRId64 ",\"base_self\":%" PRId64
		     ",\"base_total\":%" PRId64 ",",
		     self[1], total[1], self[0], total[0]);
	write_share(w, "share", total[1], t->side_total[1]);
	jsonw_lit(w, ",");
	write_share(w, "base_share", total[0], t->side_total[0]);
	jsonw_printf(w, ",\"delta\":%.6g",
		     (t->side_total[1] ? (double)total[1] / (double)t->side_total[1] : 0.0) -
			 (t->side_total[0] ? (double)total[0] / (double)t->side_total[0] : 0.0));
}

/* Each function's name and file as JSON strings, escaped once: nodes repeat them. */
struct esc {
	struct jsonw text;
	size_t *at; /* per function: name at at[2f], file at at[2f+1]; lengths follow */
};

static int esc_build(struct esc *e, const struct model *m)
{
	e->at = calloc(4 * m->nfuncs + 1, sizeof(*e->at));
	if (!e->at)
		return -ENOMEM;
	for (size_t f = 0; f < m->nfuncs; f++) {
		size_t *a = &e->at[4 * f];

		a[0] = e->text.len;
		jsonw_str(&e->text, fname(m, (uint32_t)f));
		a[1] = e->text.len - a[0];
		a[2] = e->text.len;
		jsonw_str(&e->text, ffile(m, (uint32_t)f));
		a[3] = e->text.len - a[2];
	}
	return e->text.err;
}

static void esc_free(struct esc *e)
{
	jsonw_free(&e->text);
	free(e->at);
}

static void write_node_head(struct jsonw *w, const struct tree *t, const struct esc *e, uint32_t i)
{
	const struct node *nd = &t->n[i];
	const struct func *f;
	const size_t *a;

	if (!i) { /* the root has no function (funcs and at are NULL when there is none) */
		jsonw_lit(w, "{\"name\":\"root\"");
		write_values(w, t, nd->self, nd->total);
		jsonw_lit(w, ",\"children\":[");
		return;
	}
	f = &t->m->funcs[nd->fid];
	a = &e->at[4 * nd->fid];
	jsonw_lit(w, "{\"name\":");
	jsonw_raw(w, e->text.buf + a[0], a[1]);
	write_values(w, t, nd->self, nd->total);
	jsonw_lit(w, ",\"file\":");
	jsonw_raw(w, e->text.buf + a[2], a[3]);
	put_i64(w, ",\"line\":", nd->line);
	jsonw_lit(w, nd->inlined ? ",\"inlined\":true" : ",\"inlined\":false");
	if (f->unknown) {
		jsonw_lit(w, ",\"unresolved\":true,\"build_id\":");
		jsonw_str(w, strpool_str(&t->m->pool, f->bid));
		jsonw_lit(w, ",\"mapping\":");
		jsonw_str(w, strpool_str(&t->m->pool, f->mapping));
	}
	jsonw_lit(w, ",\"children\":[");
}

/* The "other" child of I: the sum of its children that KEEP cut. */
static void write_other(struct jsonw *w, const struct tree *t, uint32_t i, const uint8_t *keep,
			int first)
{
	int64_t sum[NSIDES] = {0};
	size_t cut = 0;

	for (uint32_t k = 0; k < t->n[i].nkids; k++) {
		uint32_t c = t->kids[t->n[i].kid0 + k];

		if (keep[c])
			continue;
		cut++;
		for (int s = 0; s < t->m->nsides; s++)
			sum[s] += t->n[c].total[s];
	}
	if (!cut)
		return;
	jsonw_lit(w, first ? "{\"name\":\"" OTHER_NAME "\"" : ",{\"name\":\"" OTHER_NAME "\"");
	write_values(w, t, sum, sum);
	jsonw_printf(w,
		     ",\"file\":null,\"line\":0,\"inlined\":false,\"other\":true,"
		     "\"pruned\":%zu,\"children\":[]}",
		     cut);
}

struct walk {
	uint32_t node, next; /* next child position */
	uint32_t written;    /* children written so far */
	uint32_t path_len;   /* folded: the path's length before this node */
};

static int write_tree(struct jsonw *w, const struct tree *t, const uint8_t *keep)
{
	struct esc e = {.text = {.max = w->max}};
	struct walk *st = NULL;
	size_t n = 0, cap = 0;
	int err;

	err = esc_build(&e, t->m);
	if (!err)
		err = VEC_PUSH(st, n, cap, ((struct walk){0}));
	if (err) {
		esc_free(&e);
		return err;
	}
	write_node_head(w, t, &e, 0);
	while (n && !w->err) {
		struct walk *top = &st[n - 1];
		const struct node *nd = &t->n[top->node];
		struct walk next = {0};

		while (top->next < nd->nkids && !keep[t->kids[nd->kid0 + top->next]])
			top->next++;
		if (top->next == nd->nkids) {
			write_other(w, t, top->node, keep, top->written == 0);
			jsonw_lit(w, "]}");
			n--;
			continue;
		}
		next.node = t->kids[nd->kid0 + top->next++];
		if (top->written++)
			jsonw_lit(w, ",");
		write_node_head(w, t, &e, next.node);
		err = VEC_PUSH(st, n, cap, next);
		if (err)
			break;
	}
	free(st);
	esc_free(&e);
	return err ? err : w->err;
}

static void write_bids(struct jsonw *w, const struct qsym_result *s)
{
	static const char *const st[] = {"found", "missing", "pending", "failed"};

	jsonw_lit(w, "[");
	for (size_t i = 0; i < s->nbids; i++) {
		const struct qsym_bid *b = &s->bids[i];

		jsonw_lit(w, i ? ",{\"build_id\":" : "{\"build_id\":");
		jsonw_str(w, b->build_id);
		jsonw_printf(w, ",\"status\":\"%s\",\"locations\":%zu,\"unknown\":%zu",
			     st[b->status], b->nlocs, b->nunknown);
		if (b->reason) {
			jsonw_lit(w, ",\"reason\":");
			jsonw_str(w, b->reason);
		}
		if (b->status == QSYM_FOUND || b->status == QSYM_FAILED) {
			jsonw_lit(w, ",\"offsets\":");
			jsonw_str(w, loadrebuild_how_name(b->map));
		}
		jsonw_lit(w, "}");
	}
	jsonw_lit(w, "]");
}

static void write_meta(struct jsonw *w, const char *prefix, const struct render_input *in)
{
	const struct pstore_result *r = in->r;
	char key[64];

	snprintf(key, sizeof(key), "%squery", prefix);
	jsonw_key(w, key);
	jsonw_str(w, in->query);
	jsonw_printf(w, ",\"%sfrom\":%" PRId64 ",\"%sto\":%" PRId64 ",\"%sprofiles\":%zu,", prefix,
		     in->from_ns, prefix, in->to_ns, prefix, r->nprofiles);
	snprintf(key, sizeof(key), "%stype", prefix);
	jsonw_key(w, key);
	jsonw_str(w, r->sample_type);
	snprintf(key, sizeof(key), "%sunit", prefix);
	jsonw_lit(w, ",");
	jsonw_key(w, key);
	jsonw_str(w, r->sample_unit);
	jsonw_printf(w,
		     ",\"%stotal\":%" PRId64 ",\"%spartial\":%s,\"%sunknown_locations\":%zu,"
		     "\"%slocations\":%zu,\"%sbuild_ids\":",
		     prefix, r->total, prefix, in->s->partial ? "true" : "false", prefix,
		     in->s->unknown, prefix, r->nlocs, prefix);
	write_bids(w, in->s);
	jsonw_lit(w, ",");
}

/* The model of BASE (NULL for none) and IN, and their call tree. */
static int model_tree(struct model *m, struct tree *t, const struct render_input *base,
		      const struct render_input *in)
{
	int err = base ? model_add(m, base) : 0;

	if (!err)
		err = model_add(m, in);
	return err ? err : tree_build(t, m);
}

static int json_tree(const struct render_input *base, const struct render_input *in,
		     const struct render_opts *o, struct jsonw *w)
{
	struct model m = {0};
	struct tree t = {0};
	uint8_t *keep = NULL;
	size_t kept = 0;
	int err;

	err = model_tree(&m, &t, base, in);
	if (!err)
		err = prune(&t, o->max_nodes, &keep);
	if (err)
		goto out;
	sort_kids(&t, by_weight_name);
	for (size_t i = 1; i < t.nn; i++)
		kept += keep[i];
	jsonw_lit(w, "{");
	if (base)
		write_meta(w, "base_", base);
	write_meta(w, "", in);
	jsonw_printf(w, "\"nodes\":%zu,\"pruned\":%zu,\"root\":", kept, t.nn - 1 - kept);
	err = write_tree(w, &t, keep);
	jsonw_lit(w, "}\n");
out:
	free(keep);
	tree_free(&t);
	model_free(&m);
	return err ? err : w->err;
}

int render_json(const struct render_input *in, const struct render_opts *o, struct jsonw *w)
{
	return json_tree(NULL, in, o, w);
}

int render_diff_json(const struct render_input *base, const struct render_input *in,
		     const struct render_opts *o, struct jsonw *w)
{
	return json_tree(base, in, o, w);
}

/* ---- folded ---- */

/* NAME as one folded frame: ';' separates frames and '\n' lines, so both are replaced. */
static int path_push(char **p, size_t *len, size_t *cap, const char *name, int sep)
{
	size_t n = strlen(name);
	int err = vec_reserve((void **)p, cap, *len + n + 2, 1);

	if (err)
		return err;
	if (sep)
		(*p)[(*len)++] = ';';
	for (size_t i = 0; i < n; i++) {
		char c = name[i];

		(*p)[(*len)++] = c == ';' ? ':' : (c == '\n' || c == '\r') ? ' ' : c;
	}
	return 0;
}

static void folded_line(struct jsonw *w, const struct tree *t, const char *path, size_t len,
			const int64_t *self, const struct render_opts *o)
{
	jsonw_raw(w, path, len);
	if (t->m->nsides == 1) {
		jsonw_printf(w, " %" PRId64 "\n", self[0]);
		return;
	}
	if (o->normalize && t->side_total[0]) {
		double x = (double)self[0] * (double)t->side_total[1] / (double)t->side_total[0];

		jsonw_printf(w, " %" PRId64 " %" PRId64 "\n", (int64_t)(x < 0 ? x - 0.5 : x + 0.5),
			     self[1]);
	} else
		jsonw_printf(w, " %" PRId64 " %" PRId64 "\n", self[0], self[1]);
}

static int write_folded(struct jsonw *w, const struct tree *t, const struct render_opts *o)
{
	struct walk *st = NULL;
	size_t n = 0, cap = 0, plen = 0, pcap = 0;
	char *path = NULL;
	int err, any;

	any = 0;
	for (int s = 0; s < t->m->nsides; s++)
		any |= t->n[0].self[s] != 0;
	if (any)
		folded_line(w, t, NOFRAME_NAME, strlen(NOFRAME_NAME), t->n[0].self, o);
	err = VEC_PUSH(st, n, cap, ((struct walk){0}));
	while (!err && n && !w->err) {
		struct walk *top = &st[n - 1];
		const struct node *nd = &t->n[top->node];
		struct walk next = {0};
		const struct node *c;

		if (top->next == nd->nkids) {
			plen = top->path_len;
			n--;
			continue;
		}
		next.node = t->kids[nd->kid0 + top->next++];
		next.path_len = (uint32_t)plen;
		c = &t->n[next.node];
		err = path_push(&path, &plen, &pcap, fname(t->m, c->fid), top->node != 0);
		if (err || plen > UINT32_MAX)
			break;
		any = 0;
		for (int s = 0; s < t->m->nsides; s++)
			any |= c->self[s] != 0;
		if (any)
			folded_line(w, t, path, plen, c->self, o);
		err = VEC_PUSH(st, n, cap, next);
	}
	free(st);
	free(path);
	return err ? err : w->err;
}

static int folded(const struct render_input *base, const struct render_input *in,
		  const struct render_opts *o, struct jsonw *w)
{
	struct model m = {0};
	struct tree t = {0};
	int err;

	err = model_tree(&m, &t, base, in);
	if (!err) {
		sort_kids(&t, by_name);
		err = write_folded(w, &t, o);
	}
	tree_free(&t);
	model_free(&m);
	return err;
}

int render_folded(const struct render_input *in, const struct render_opts *o, struct jsonw *w)
{
	return folded(NULL, in, o, w);
}

int render_diff_folded(const struct render_input *base, const struct render_input *in,
		       const struct render_opts *o, struct jsonw *w)
{
	return folded(base, in, o, w);
}

/* ---- top ---- */

struct toprow {
	uint32_t fid;
	int64_t flat, cum;
};

static int by_flat(const void *a, const void *b, void *ctx)
{
	const struct toprow *x = a, *y = b;
	int c;

	if (x->flat != y->flat)
		return x->flat > y->flat ? -1 : 1;
	if (x->cum != y->cum)
		return x->cum > y->cum ? -1 : 1;
	c = strcmp(fname(ctx, x->fid), fname(ctx, y->fid));
	return c ? c : (x->fid < y->fid ? -1 : x->fid > y->fid);
}

static void pct(char *buf, size_t len, int64_t v, int64_t total)
{
	snprintf(buf, len, "%.2f%%", total ? 100.0 * (double)v / (double)total : 0.0);
}

static void write_top(struct jsonw *w, const struct model *m, const struct render_input *in,
		      const struct toprow *rows, size_t nrows, size_t limit)
{
	int64_t total = in->r->total, sum = 0;
	char a[32], b[32], c[32];

	jsonw_printf(w, "Type: %s (%s), %zu profiles, total %" PRId64 "%s\n", in->r->sample_type,
		     in->r->sample_unit, in->r->nprofiles, total,
		     in->s->partial ? " (partial: some debug info was still being fetched)" : "");
	jsonw_printf(w, "Showing %zu of %zu functions\n", limit, nrows);
	jsonw_printf(w, "%14s %7s %7s %14s %7s  %s\n", "flat", "flat%", "sum%", "cum", "cum%",
		     "function");
	for (size_t i = 0; i < limit; i++) {
		const struct func *f = &m->funcs[rows[i].fid];

		sum += rows[i].flat;
		pct(a, sizeof(a), rows[i].flat, total);
		pct(b, sizeof(b), sum, total);
		pct(c, sizeof(c), rows[i].cum, total);
		jsonw_printf(w, "%14" PRId64 " %7s %7s %14" PRId64 " %7s  %s", rows[i].flat, a, b,
			     rows[i].cum, c, strpool_str(&m->pool, f->name));
		if (f->file != STRPOOL_NONE)
			jsonw_printf(w, " %s", strpool_str(&m->pool, f->file));
		else if (f->unknown && f->bid != STRPOOL_NONE)
			jsonw_printf(w, " [build ID %s]", strpool_str(&m->pool, f->bid));
		jsonw_lit(w, "\n");
	}
}

int render_top(const struct render_input *in, const struct render_opts *o, struct jsonw *w)
{
	const struct pstore_result *r = in->r;
	struct toprow *rows = NULL;
	uint32_t *stamp = NULL;
	struct model m = {0};
	size_t limit;
	int err;

	err = model_add(&m, in);
	if (err)
		goto out;
	rows = calloc(m.nfuncs + 1, sizeof(*rows));
	stamp = calloc(m.nfuncs + 1, sizeof(*stamp));
	if (!rows || !stamp) {
		err = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < m.nfuncs; i++)
		rows[i].fid = (uint32_t)i;
	for (size_t i = 0; i < r->nstacks; i++) {
		const struct pstore_stack *st = &r->stacks[i];
		int leaf = 1;

		for (size_t li = 0; li < st->nlocs; li++) {
			uint32_t loc = st->locs[li];

			if (loc >= r->nlocs)
				continue;
			for (uint32_t k = 0; k < m.sides[0].n[loc]; k++) {
				uint32_t fid = m.fr[m.sides[0].first[loc] + k].fid;

				if (leaf)
					rows[fid].flat += st->value;
				leaf = 0;
				if (stamp[fid] != i + 1) {
					stamp[fid] = (uint32_t)(i + 1);
					rows[fid].cum += st->value;
				}
			}
		}
	}
	qsort_r(rows, m.nfuncs, sizeof(*rows), by_flat, &m);
	limit = o->max_nodes && o->max_nodes < m.nfuncs ? o->max_nodes : m.nfuncs;
	write_top(w, &m, in, rows, m.nfuncs, limit);
out:
	free(rows);
	free(stamp);
	model_free(&m);
	return err ? err : w->err;
}

/* ---- pprof ---- */

struct pp {
	struct pprofb *b;
	struct model *m;
	const struct render_input *in;
	uint64_t *fn_id;  /* per model function: pprof function id, 0 = not yet */
	uint64_t *map_id; /* per pprof mapping key (build ID or file) */
	struct u64map maps;
	uint64_t *loc_id; /* per location */
};

static int pp_function(struct pp *p, uint32_t fid, uint64_t *id)
{
	const char *name = fname(p->m, fid);
	int err;

	if (p->fn_id[fid]) {
		*id = p->fn_id[fid];
		return 0;
	}
	err = pprofb_function(p->b, name, name, ffile(p->m, fid), 0, id);
	if (!err)
		p->fn_id[fid] = *id;
	return err;
}

/* The mapping of raw location L: one per build ID (or per file name when there is none),
 * memory_start 0 and file_offset 0, so a location's address is its file offset. */
static int pp_mapping(struct pp *p, size_t i, uint64_t *id)
{
	const struct pstore_loc *l = &p->in->r->locs[i];
	const struct qsym_loc *ql = &p->in->s->locs[i];
	const struct qsym_bid *qb = ql->bid >= 0 ? &p->in->s->bids[ql->bid] : NULL;
	struct pprofb_mapping pm = {
	    .memory_limit = l->file_off + 1,
	    .filename = l->mapping_file,
	    .build_id = l->build_id,
	    .has_functions = true, /* unknown frames are named: nothing for pprof to do */
	    .has_filenames = qb && qb->status == QSYM_FOUND,
	    .has_line_numbers = qb && qb->status == QSYM_FOUND,
	    .has_inline_frames = qb && qb->status == QSYM_FOUND,
	};
	uint32_t key, mi;
	int err;

	err = strpool_intern(&p->m->pool, l->build_id[0] ? l->build_id : l->mapping_file, &key);
	if (err)
		return err;
	if (key == STRPOOL_NONE) {
		*id = 0;
		return 0;
	}
	if (u64map_get(&p->maps, key, &mi)) {
		*id = mi;
		return pprofb_extend_mapping(p->b, mi, pm.memory_limit);
	}
	err = pprofb_add_mapping(p->b, &pm, id);
	if (!err)
		err = u64map_put(&p->maps, key, (uint32_t)*id);
	return err;
}

static int pp_location(struct pp *p, size_t i, struct pprofb_line *lines)
{
	const struct pstore_loc *l = &p->in->r->locs[i];
	const struct render_side *sd = &p->m->sides[0];
	uint64_t mapping = 0;
	int err = 0, raw = l->build_id[0] || !l->frames;

	for (uint32_t k = 0; k < sd->n[i] && !err; k++) {
		const struct mframe *f = &p->m->fr[sd->first[i] + k];

		lines[k] = (struct pprofb_line){.line = f->line};
		err = pp_function(p, f->fid, &lines[k].function_id);
	}
	if (!err && raw)
		err = pp_mapping(p, i, &mapping);
	if (!err)
		err = pprofb_location(p->b, mapping, raw ? l->file_off : 0, lines, sd->n[i],
				      &p->loc_id[i]);
	return err;
}

static int pp_build(struct pp *p)
{
	const struct render_input *in = p->in;
	const struct pstore_result *r = in->r;
	struct pprofb_line *lines = NULL;
	uint64_t *ids = NULL;
	size_t maxn = 1, maxl = 1;
	char comment[512];
	int err;

	for (size_t i = 0; i < r->nlocs; i++)
		if (p->m->sides[0].n[i] > maxn)
			maxn = p->m->sides[0].n[i];
	for (size_t i = 0; i < r->nstacks; i++)
		if (r->stacks[i].nlocs > maxl)
			maxl = r->stacks[i].nlocs;
	lines = calloc(maxn, sizeof(*lines));
	ids = calloc(maxl, sizeof(*ids));
	if (!lines || !ids) {
		err = -ENOMEM;
		goto out;
	}
	err = pprofb_add_sample_type(p->b, r->sample_type, r->sample_unit);
	if (!err)
		err = pprofb_set_period(p->b, r->sample_type, r->sample_unit, r->period);
	/* the profiles' own time, as `pprof -proto a b` would merge them, not the window: a
	 * 2 s profile queried over 2 h still says "Duration: 2s" */
	if (r->nprofiles)
		pprofb_set_time(p->b, r->time_nanos, r->duration_nanos);
	else
		pprofb_set_time(p->b, in->from_ns, in->to_ns - in->from_ns);
	snprintf(comment, sizeof(comment),
		 "fleetsymd query %s: %zu profiles merged, symbolized at query time%s",
		 in->query ? in->query : "{}", r->nprofiles,
		 in->s->partial ? "; partial: some debug info was still being fetched" : "");
	if (!err)
		err = pprofb_add_comment(p->b, comment);
	if (!err)
		err = pprofb_add_comment(p->b, "a frame named FILE+0xOFFSET had no debug info; its "
					       "address is the offset in FILE, whose mapping "
					       "carries the build ID");
	for (size_t i = 0; i < r->nlocs && !err; i++)
		err = pp_location(p, i, lines);
	for (size_t i = 0; i < r->nstacks && !err; i++) {
		const struct pstore_stack *st = &r->stacks[i];
		size_t n = 0;

		for (size_t k = 0; k < st->nlocs; k++)
			if (st->locs[k] < r->nlocs)
				ids[n++] = p->loc_id[st->locs[k]];
		err = pprofb_add_sample(p->b, ids, n, &st->value, NULL, 0);
	}
out:
	free(lines);
	free(ids);
	return err;
}

int render_pprof(const struct render_input *in, const struct render_opts *o, uint8_t **out,
		 size_t *len)
{
	struct pprofb_opts bo = {.max_bytes = o->max_bytes};
	struct model m = {0};
	struct pp p = {.m = &m, .in = in};
	uint8_t *raw = NULL;
	size_t rawlen = 0;
	int err;

	*out = NULL;
	*len = 0;
	err = model_add(&m, in);
	if (!err)
		err = pprofb_new(&bo, &p.b);
	if (err)
		goto out;
	p.fn_id = calloc(m.nfuncs + 1, sizeof(*p.fn_id));
	p.loc_id = calloc(in->r->nlocs + 1, sizeof(*p.loc_id));
	if (!p.fn_id || !p.loc_id) {
		err = -ENOMEM;
		goto out;
	}
	err = pp_build(&p);
	if (!err)
		err = pprofb_encode(p.b, &raw, &rawlen);
	if (!err)
		err = pprofb_gzip(raw, rawlen,
				  o->max_bytes ? o->max_bytes : PPROFB_DEFAULT_MAX_BYTES, out, len);
out:
	free(raw);
	free(p.fn_id);
	free(p.loc_id);
	u64map_free(&p.maps);
	pprofb_free(p.b);
	model_free(&m);
	return err;
}

/* ---- missing ---- */

struct miss {
	uint32_t bid;
	int64_t samples;
};

static int by_samples(const void *a, const void *b, void *ctx)
{
	const struct miss *x = a, *y = b;
	const struct qsym_result *s = ctx;

	if (x->samples != y->samples)
		return x->samples > y->samples ? -1 : 1;
	return strcmp(s->bids[x->bid].build_id, s->bids[y->bid].build_id);
}

static void write_files(struct jsonw *w, const struct pstore_result *r, const struct qsym_result *s,
			uint32_t bid, const char **first)
{
	const char *seen[MAX_FILES];
	size_t n = 0;

	*first = NULL;
	jsonw_lit(w, "[");
	for (size_t i = 0; i < r->nlocs && n < MAX_FILES; i++) {
		const char *f = r->locs[i].mapping_file;
		size_t k;

		if (s->locs[i].bid != (int32_t)bid || !f || !*f)
			continue;
		for (k = 0; k < n && strcmp(seen[k], f); k++)
			;
		if (k < n)
			continue;
		jsonw_lit(w, n ? "," : "");
		jsonw_str(w, f);
		seen[n++] = f;
	}
	jsonw_lit(w, "]");
	*first = n ? seen[0] : NULL;
}

/* S as one shell word into OUT (LEN bytes): as it is when it holds only characters no shell
 * treats specially, else in single quotes with each ' written '\''. The mapping file names
 * come from ingested profiles, that is from anyone: the command must stay one argument that
 * runs nothing when pasted. A leading '=' is quoted too (zsh expands "=cmd" to a path).
 * "" when it does not fit. */
static const char *shell_word(const char *s, char *out, size_t len)
{
	size_t n = 0;

	if (s[0] && s[0] != '=' &&
	    strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_./:=@%+-") ==
		strlen(s))
		return s;
	if (len < 3)
		return "";
	out[n++] = '\'';
	for (; *s; s++) {
		if (n + 6 >= len)
			return "";
		if (*s == '\'') {
			memcpy(out + n, "'\\''", 4);
			n += 4;
		} else {
			out[n++] = *s;
		}
	}
	out[n++] = '\'';
	out[n] = '\0';
	return out;
}

static void write_miss(struct jsonw *w, const struct render_input *in, const struct miss *ms,
		       const char *server)
{
	static const char *const st[] = {"found", "missing", "pending", "failed"};
	const struct qsym_bid *b = &in->s->bids[ms->bid];
	const char *file;
	char cmd[3 * 4096 + 256], qfile[2 * 4096 + 8], qserver[1024];

	jsonw_lit(w, "{\"build_id\":");
	jsonw_str(w, b->build_id);
	jsonw_lit(w, ",\"files\":");
	write_files(w, in->r, in->s, ms->bid, &file);
	jsonw_printf(w, ",\"samples\":%" PRId64 ",", ms->samples);
	write_share(w, "share", ms->samples, in->r->total);
	jsonw_printf(w, ",\"status\":\"%s\",\"reason\":", st[b->status]);
	jsonw_str(w, b->reason);
	jsonw_printf(w, ",\"locations\":%zu,\"unknown_locations\":%zu,\"fix\":", b->nlocs,
		     b->nunknown);
	/* a name like "--server=URL" is a file after "--", not an option, however it is quoted */
	snprintf(cmd, sizeof(cmd), "fleetsym-upload --server %s %s%s",
		 shell_word(server, qserver, sizeof(qserver)), file && file[0] == '-' ? "-- " : "",
		 file ? shell_word(file, qfile, sizeof(qfile)) : "PATH-OF-THE-BINARY");
	jsonw_str(w, cmd);
	jsonw_lit(w, "}");
}

int render_missing(const struct render_input *in, const char *server, struct jsonw *w)
{
	const struct pstore_result *r = in->r;
	const struct qsym_result *s = in->s;
	struct miss *ms = calloc(s->nbids + 1, sizeof(*ms));
	uint32_t *stamp = calloc(s->nbids + 1, sizeof(*stamp));
	int64_t unsym = 0;
	size_t n = 0;

	if (!ms || !stamp) {
		free(ms);
		free(stamp);
		return -ENOMEM;
	}
	for (size_t i = 0; i < s->nbids; i++)
		ms[i].bid = (uint32_t)i;
	for (size_t i = 0; i < r->nstacks; i++) {
		const struct pstore_stack *st = &r->stacks[i];
		int any = 0;

		for (size_t k = 0; k < st->nlocs; k++) {
			uint32_t loc = st->locs[k];
			int32_t b;

			if (loc >= r->nlocs || !s->locs[loc].unknown)
				continue;
			any = 1;
			b = s->locs[loc].bid;
			if (b < 0 || s->bids[b].status == QSYM_FOUND || stamp[b] == i + 1)
				continue;
			stamp[b] = (uint32_t)(i + 1);
			ms[b].samples += st->value;
		}
		unsym += any ? st->value : 0;
	}
	qsort_r(ms, s->nbids, sizeof(*ms), by_samples, (void *)s);
	jsonw_lit(w, "{");
	write_meta(w, "", in);
	jsonw_printf(w, "\"unsymbolized\":%" PRId64 ",", unsym);
	write_share(w, "unsymbolized_share", unsym, r->total);
	jsonw_lit(w, ",\"missing\":[");
	for (size_t i = 0; i < s->nbids; i++) {
		if (s->bids[ms[i].bid].status == QSYM_FOUND)
			continue;
		if (n++)
			jsonw_lit(w, ",");
		write_miss(w, in, &ms[i], server);
	}
	jsonw_lit(w, "]}\n");
	free(ms);
	free(stamp);
	return w->err;
}
