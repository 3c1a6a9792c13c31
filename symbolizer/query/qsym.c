/*
 * qsym - a query's locations are sorted by (build ID, offset) so each build ID is one group:
 * resolved once, its cached answers copied out under its table's lock, its misses translated
 * to addresses and looked up in one opensyms batch with no lock held, then added to the table.
 *
 * A table (struct btab) holds one build ID's answers for one stored file: an offset → entry
 * map, the entries' frames, and a string pool; the frames' strings are pool offsets. Tables
 * live in a small hash of build IDs and an LRU list, refcounted: a query holds its group's
 * table, so eviction and replacement never free a table in use (a replaced one is unlinked,
 * marked dead, and freed by its last user).
 *
 * A query's result interns its own copy of every string (the tables may be dropped as soon as
 * it returns); a per-group memo maps table string offsets to result offsets, so a warm query
 * hashes each distinct name once, not once per frame.
 *
 * Locks: q->lock (tables, LRU, counts) before t->lock (one table's contents), never the other
 * way; neither is held while resolving or looking up symbols.
 */
#include "symbolizer/query/qsym.h"

#include "lib/counter.h"
#include "lib/clock.h"
#include "lib/err.h"
#include "lib/log.h"
#include "lib/vec.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DEFAULT_WAIT_MS	   5000
#define DEFAULT_MAX_CACHED 1000000
#define DEFAULT_MAX_FRAMES ((size_t)16 << 20)
#define NBUCKETS	   1024
#define MAX_LOC_FRAMES	   UINT16_MAX

/* A frame while its strings are pool offsets (tables, and results under construction). */
struct oframe {
	uint32_t fn, file;
	uint32_t line, column;
	uint8_t inlined;
};

struct tentry {
	uint32_t first; /* into t->frames */
	uint16_t n;
	uint8_t unknown;
};

struct btab {
	struct btab *prev, *next; /* LRU, most recent first */
	struct btab *hnext;	  /* hash chain */
	unsigned refs;
	int dead;

	/* the stored file these answers came from */
	char build_id[BUILDID_HEX_MAX];
	char *path;
	uint64_t size;
	time_t added;
	unsigned quality;

	pthread_mutex_t lock;
	int map_done;
	enum loadrebuild_how how;
	int map_err;
	struct loadmap lm;
	struct u64map ix; /* file offset → entry */
	struct tentry *ents;
	size_t nents, ents_cap;
	struct oframe *frames;
	size_t nframes, frames_cap;
	struct strpool pool;
};

struct qsym {
	struct qsym_opts o;
	pthread_mutex_t lock;
	struct btab *buckets[NBUCKETS];
	struct btab *head, *tail;
	size_t ntabs, cached;
	struct qsym_stats st; /* atomics, except cached/build_ids (under lock) */
};

static size_t bucket(const char *bid)
{
	uint32_t h = 2166136261u;

	for (; *bid; bid++)
		h = (h ^ (unsigned char)*bid) * 16777619u;
	return h % NBUCKETS;
}

int qsym_new(const struct qsym_opts *opts, struct qsym **out)
{
	struct qsym *q;

	*out = NULL;
	if (!opts->resolver || !opts->opensyms)
		return -EINVAL;
	q = calloc(1, sizeof(*q));
	if (!q)
		return -ENOMEM;
	q->o = *opts;
	if (q->o.wait_ms <= 0)
		q->o.wait_ms = DEFAULT_WAIT_MS;
	if (!q->o.max_cached)
		q->o.max_cached = DEFAULT_MAX_CACHED;
	if (!q->o.max_frames)
		q->o.max_frames = DEFAULT_MAX_FRAMES;
	pthread_mutex_init(&q->lock, NULL);
	*out = q;
	return 0;
}

static void tab_free(struct btab *t)
{
	if (!t)
		return;
	pthread_mutex_destroy(&t->lock);
	free(t->path);
	u64map_free(&t->ix);
	free(t->ents);
	free(t->frames);
	strpool_free(&t->pool);
	free(t);
}

void qsym_free(struct qsym *q)
{
	struct btab *t, *next;

	if (!q)
		return;
	for (t = q->head; t; t = next) {
		next = t->next;
		tab_free(t);
	}
	pthread_mutex_destroy(&q->lock);
	free(q);
}

/* ---- tables ---- */

static void lru_unlink(struct qsym *q, struct btab *t)
{
	if (t->prev)
		t->prev->next = t->next;
	else
		q->head = t->next;
	if (t->next)
		t->next->prev = t->prev;
	else
		q->tail = t->prev;
	t->prev = t->next = NULL;
}

static void lru_front(struct qsym *q, struct btab *t)
{
	t->prev = NULL;
	t->next = q->head;
	if (q->head)
		q->head->prev = t;
	q->head = t;
	if (!q->tail)
		q->tail = t;
}

/* Unlink T from the table and the LRU (under q->lock); returns T when it can be freed now. */
static struct btab *tab_remove_locked(struct qsym *q, struct btab *t)
{
	struct btab **pp = &q->buckets[bucket(t->build_id)];

	while (*pp && *pp != t)
		pp = &(*pp)->hnext;
	if (*pp)
		*pp = t->hnext;
	lru_unlink(q, t);
	t->dead = 1;
	q->ntabs--;
	q->cached -= t->nents;
	q->st.dropped++;
	return t->refs == 0 ? t : NULL;
}

static int same_file(const struct btab *t, const struct dstore_entry *e)
{
	return t->size == e->size && t->added == e->added && t->quality == e->quality &&
	       !strcmp(t->path, e->path);
}

/* The table for E's build ID and file, made or replaced as needed; holds a reference. */
static int tab_get(struct qsym *q, const struct dstore_entry *e, struct btab **out)
{
	struct btab *t, *stale = NULL, *fresh;

	fresh = calloc(1, sizeof(*fresh));
	if (!fresh || !(fresh->path = strdup(e->path))) {
		free(fresh);
		return -ENOMEM;
	}
	pthread_mutex_lock(&q->lock);
	for (t = q->buckets[bucket(e->build_id)]; t; t = t->hnext)
		if (!strcmp(t->build_id, e->build_id))
			break;
	if (t && !same_file(t, e)) {
		stale = tab_remove_locked(q, t);
		t = NULL;
	}
	if (!t) {
		t = fresh;
		fresh = NULL;
		snprintf(t->build_id, sizeof(t->build_id), "%s", e->build_id);
		t->size = e->size;
		t->added = e->added;
		t->quality = e->quality;
		pthread_mutex_init(&t->lock, NULL);
		t->hnext = q->buckets[bucket(t->build_id)];
		q->buckets[bucket(t->build_id)] = t;
		q->ntabs++;
	} else {
		lru_unlink(q, t);
	}
	lru_front(q, t);
	t->refs++;
	pthread_mutex_unlock(&q->lock);
	if (fresh) {
		free(fresh->path);
		free(fresh);
	}
	tab_free(stale);
	*out = t;
	return 0;
}

static void tab_put(struct qsym *q, struct btab *t)
{
	struct btab *dead = NULL;

	pthread_mutex_lock(&q->lock);
	if (--t->refs == 0 && t->dead)
		dead = t;
	pthread_mutex_unlock(&q->lock);
	tab_free(dead);
}

/* Account N new answers of T and evict least recently used tables past the cap. */
static void tab_added(struct qsym *q, struct btab *t, size_t n)
{
	struct btab *victims = NULL, *v, *prev;

	pthread_mutex_lock(&q->lock);
	if (!t->dead)
		q->cached += n;
	for (v = q->tail; v && q->cached > q->o.max_cached; v = prev) {
		prev = v->prev;
		if (v->refs)
			continue;
		tab_remove_locked(q, v);
		v->hnext = victims;
		victims = v;
	}
	pthread_mutex_unlock(&q->lock);
	while (victims) {
		v = victims->hnext;
		tab_free(victims);
		victims = v;
	}
}

/* ---- results under construction ---- */

struct build {
	struct qsym *q;
	const struct pstore_result *r;
	struct qsym_result *res;
	struct oframe *of; /* result frames, strings as res->pool offsets */
	size_t nof, of_cap;
	uint32_t *first; /* per location: first frame in of */
	uint32_t *order; /* raw locations with a build ID, by (build ID, offset) */
	size_t nraw;
};

static int push_frame(struct build *b, uint32_t fn, uint32_t file, uint32_t line, uint32_t col,
		      int inlined)
{
	struct oframe f = {fn, file, line, col, (uint8_t)inlined};

	if (b->nof >= b->q->o.max_frames)
		return -E2BIG;
	return VEC_PUSH(b->of, b->nof, b->of_cap, f);
}

static int named_loc(struct build *b, size_t i)
{
	const struct pstore_loc *l = &b->r->locs[i];
	struct qsym_loc *ql = &b->res->locs[i];
	size_t n = l->nframes < MAX_LOC_FRAMES ? l->nframes : MAX_LOC_FRAMES;
	int err;

	ql->named = 1;
	b->first[i] = (uint32_t)b->nof;
	for (size_t k = 0; k < n; k++) {
		const struct pstore_named_frame *f = &l->frames[k];
		uint32_t fn, file;
		int64_t line = f->line > 0 && f->line <= UINT32_MAX ? f->line : 0;

		err = strpool_intern(&b->res->pool, f->function ? f->function : "??", &fn);
		if (!err)
			err = strpool_intern(&b->res->pool, f->file && *f->file ? f->file : NULL,
					     &file);
		if (!err)
			err = push_frame(b, fn, file, (uint32_t)line, 0, k + 1 < n);
		if (err)
			return err;
	}
	ql->nframes = (uint32_t)n;
	ql->unknown = n == 0;
	return 0;
}

static int by_bid_off(const void *a, const void *b, void *ctx)
{
	const struct pstore_result *r = ctx;
	const struct pstore_loc *x = &r->locs[*(const uint32_t *)a];
	const struct pstore_loc *y = &r->locs[*(const uint32_t *)b];
	int c = strcmp(x->build_id, y->build_id);

	if (c)
		return c;
	return x->file_off < y->file_off ? -1 : x->file_off > y->file_off;
}

/* Fill the named and build-ID-less locations, sort the rest into groups, list the build IDs. */
static int prepare(struct build *b)
{
	const struct pstore_result *r = b->r;
	struct qsym_result *res = b->res;
	size_t bids_cap = 0;
	int err;

	for (size_t i = 0; i < r->nlocs; i++) {
		res->locs[i].bid = -1;
		if (r->locs[i].build_id[0]) {
			b->order[b->nraw++] = (uint32_t)i; /* names, if any, are a fallback */
		} else if (r->locs[i].frames) {
			err = named_loc(b, i);
			if (err)
				return err;
		} else {
			res->locs[i].unknown = 1;
		}
	}
	qsort_r(b->order, b->nraw, sizeof(*b->order), by_bid_off, (void *)r);
	for (size_t k = 0; k < b->nraw; k++) {
		const char *bid = r->locs[b->order[k]].build_id;

		if (!res->nbids || strcmp(res->bids[res->nbids - 1].build_id, bid)) {
			struct qsym_bid qb = {.status = QSYM_MISSING};

			snprintf(qb.build_id, sizeof(qb.build_id), "%s", bid);
			err = VEC_PUSH(res->bids, res->nbids, bids_cap, qb);
			if (err)
				return err;
		}
		res->locs[b->order[k]].bid = (int32_t)(res->nbids - 1);
		res->bids[res->nbids - 1].nlocs++;
	}
	return 0;
}

/* ---- one build ID ---- */

struct group {
	struct build *b;
	struct qsym_bid *qb;
	const uint32_t *locs; /* its locations, by offset */
	size_t n;
	struct u64map memo; /* table string offset → result string offset */
	/* misses */
	uint32_t *miss;	 /* locations */
	uint64_t *vaddr; /* their addresses, for those that translate */
	uint32_t *mloc;	 /* batch position → location */
	size_t nmiss, nv;
	struct dup {
		uint32_t loc, from; /* a location, and the earlier one at the same offset */
	} * dup;
	size_t ndup;
};

/* Copy table T's entry ENT into the result as location I's frames. */
static int copy_entry(struct group *g, const struct btab *t, const struct tentry *ent, size_t i)
{
	struct build *b = g->b;
	struct qsym_loc *ql = &b->res->locs[i];
	int err;

	b->first[i] = (uint32_t)b->nof;
	ql->unknown = ent->unknown;
	ql->nframes = ent->unknown ? 0 : ent->n;
	for (size_t k = 0; k < ql->nframes; k++) {
		const struct oframe *f = &t->frames[ent->first + k];
		uint32_t s[2] = {f->fn, f->file};

		for (int j = 0; j < 2; j++) {
			uint32_t to;

			if (s[j] == STRPOOL_NONE)
				continue;
			if (u64map_get(&g->memo, s[j], &to)) {
				s[j] = to;
				continue;
			}
			err = strpool_intern(&b->res->pool, strpool_str(&t->pool, s[j]), &to);
			if (!err)
				err = u64map_put(&g->memo, s[j], to);
			if (err)
				return err;
			s[j] = to;
		}
		err = push_frame(b, s[0], s[1], f->line, f->column, f->inlined);
		if (err)
			return err;
	}
	return 0;
}

/* Store location I's answer (in the result) into table T. Under t->lock. */
static int cache_entry(struct btab *t, const struct build *b, size_t i)
{
	const struct qsym_loc *ql = &b->res->locs[i];
	struct tentry ent = {
	    .first = (uint32_t)t->nframes, .n = (uint16_t)ql->nframes, .unknown = ql->unknown};
	int err;

	for (size_t k = 0; k < ql->nframes; k++) {
		struct oframe f = b->of[b->first[i] + k];

		err = strpool_intern(&t->pool, strpool_str(&b->res->pool, f.fn), &f.fn);
		if (!err)
			err = strpool_intern(&t->pool, strpool_str(&b->res->pool, f.file), &f.file);
		if (!err)
			err = VEC_PUSH(t->frames, t->nframes, t->frames_cap, f);
		if (err)
			return err;
	}
	err = VEC_PUSH(t->ents, t->nents, t->ents_cap, ent);
	if (!err)
		err = u64map_put(&t->ix, b->r->locs[i].file_off, (uint32_t)(t->nents - 1));
	if (err)
		t->nents--;
	return err;
}

static int emit(void *ctx, size_t k, uint64_t addr, const struct sym_frame *f, int n)
{
	struct group *g = ctx;
	struct build *b = g->b;
	size_t i = g->mloc[k];
	struct qsym_loc *ql = &b->res->locs[i];
	int err;

	b->first[i] = (uint32_t)b->nof;
	if (n < 1 || f[0].source == SYM_SRC_NONE) {
		ql->unknown = 1;
		return 0;
	}
	if (n > MAX_LOC_FRAMES)
		n = MAX_LOC_FRAMES;
	for (int j = 0; j < n; j++) {
		const char *name = f[j].function  ? f[j].function
				   : f[j].linkage ? f[j].linkage
						  : "??";
		uint32_t fn, file;

		err = strpool_intern(&b->res->pool, name, &fn);
		if (!err)
			err = strpool_intern(&b->res->pool, f[j].file, &file);
		if (!err)
			err = push_frame(b, fn, file, f[j].file ? f[j].line : 0,
					 f[j].file ? f[j].column : 0, f[j].inlined);
		if (err)
			return err;
	}
	ql->nframes = (uint32_t)n;
	ql->unknown = 0;
	return 0;
}

static const char *unmappable =
    "the stored debug file's program headers cannot map file offsets to addresses (zeroed "
    "by objcopy --only-keep-debug and not rebuildable): upload the executable, or its debug "
    "info extracted by fleetsym-upload";

/* Look up the misses of G in F (no table lock held). 0, or a fatal error. */
static int lookup_misses(struct group *g, struct btab *t, struct opensyms_file *f)
{
	struct build *b = g->b;
	int err;

	for (size_t k = 0; k < g->nmiss; k++) {
		size_t i = g->miss[k];

		b->res->locs[i].unknown = 1; /* until emit() says otherwise */
		if (!t->lm.usable ||
		    loadmap_offset_to_vaddr(&t->lm, b->r->locs[i].file_off, &g->vaddr[g->nv]))
			continue;
		g->mloc[g->nv++] = (uint32_t)i;
	}
	if (!g->nv)
		return 0;
	err = opensyms_lookup_batch(b->q->o.opensyms, f, g->vaddr, g->nv, emit, g);
	if (!err)
		counter_add(&b->q->st.symbolized, g->nv);
	b->res->symbolized += g->nv;
	return err;
}

/* Sort G's locations (in file-offset order) under T's lock: a repeat of the previous offset
 * is a duplicate, one in T's results cache is copied now (counted in *HITS), the rest are
 * misses. */
static int classify_locked(struct group *g, struct btab *t, size_t *hits)
{
	struct build *b = g->b;
	int err = 0;

	for (size_t k = 0; k < g->n && !err; k++) {
		uint64_t off = b->r->locs[g->locs[k]].file_off;
		uint32_t ei;

		if (k && off == b->r->locs[g->locs[k - 1]].file_off) {
			g->dup[g->ndup++] = (struct dup){g->locs[k], g->locs[k - 1]};
		} else if (u64map_get(&t->ix, off, &ei)) {
			err = copy_entry(g, t, &t->ents[ei], g->locs[k]);
			(*hits)++;
		} else {
			g->miss[g->nmiss++] = g->locs[k];
		}
	}
	return err;
}

/* Under T's lock: how file offsets of F's file become ELF addresses (the worker read its
 * program headers, rebuilt where objcopy zeroed them), taken once per table; a file that
 * cannot be mapped fails the build ID. */
static void map_locked(struct group *g, struct btab *t, const struct opensyms_file *f)
{
	if (!t->map_done) {
		t->lm = *opensyms_file_rebuilt(f, &t->how);
		t->map_done = 1;
	}
	g->qb->map = t->how;
	if (t->how == LOADREBUILD_NONE) {
		g->qb->status = QSYM_FAILED;
		g->qb->reason = unmappable;
	}
}

/* Put G's fresh answers into T's results cache; how many went in. A failure only means they
 * are not cached. */
static size_t cache_misses(struct group *g, struct btab *t)
{
	struct build *b = g->b;
	size_t added = 0;
	int err = 0;

	pthread_mutex_lock(&t->lock);
	for (size_t k = 0; k < g->nmiss && !err; k++) {
		uint32_t ei;

		/* another query may have added it meanwhile */
		if (u64map_get(&t->ix, b->r->locs[g->miss[k]].file_off, &ei))
			continue;
		err = cache_entry(t, b, g->miss[k]);
		added += !err;
	}
	pthread_mutex_unlock(&t->lock);
	if (err)
		log_msg(FS_LOG_WARN, "results cache of %s: %s; answers not cached", t->build_id,
			err_str(err));
	return added;
}

/* The debug info of G's build ID is E: answer G's locations from the results cache, the rest
 * from the symbols, and the duplicates as their first. */
static int group_found(struct group *g, const struct dstore_entry *e)
{
	struct build *b = g->b;
	struct opensyms_file *f = NULL;
	struct btab *t;
	size_t hits = 0, added = 0;
	int err, cacheable = 0;

	g->qb->status = QSYM_FOUND;
	g->qb->quality = e->quality;
	g->qb->source = dstore_source_name(e->source);
	err = tab_get(b->q, e, &t);
	if (err)
		return err;
	pthread_mutex_lock(&t->lock);
	err = classify_locked(g, t, &hits);
	if (t->map_done)
		g->qb->map = t->how;
	pthread_mutex_unlock(&t->lock);
	if (!err && g->nmiss) {
		const char *reason = NULL;
		int ge = opensyms_get(b->q->o.opensyms, e, &f, &reason);

		if (ge) {
			/* the index is being built (pending) or the file is bad (failed) */
			g->qb->status = ge == -EAGAIN ? QSYM_PENDING : QSYM_FAILED;
			g->qb->reason = reason ? reason : err_str(ge);
			if (ge == -EAGAIN)
				b->res->partial = 1;
			for (size_t k = 0; k < g->nmiss; k++)
				b->res->locs[g->miss[k]].unknown = 1;
		} else {
			pthread_mutex_lock(&t->lock);
			map_locked(g, t, f);
			pthread_mutex_unlock(&t->lock);
			err = lookup_misses(g, t, f);
			cacheable = 1;
		}
	}
	if (!err && cacheable && g->nmiss)
		added = cache_misses(g, t);
	for (size_t k = 0; k < g->ndup; k++) {
		const struct dup *d = &g->dup[k];

		b->res->locs[d->loc].unknown = b->res->locs[d->from].unknown;
		b->res->locs[d->loc].nframes = b->res->locs[d->from].nframes;
		b->first[d->loc] = b->first[d->from];
	}
	if (added)
		tab_added(b->q, t, added);
	opensyms_put(b->q->o.opensyms, f);
	tab_put(b->q, t);
	b->res->cache_hits += hits;
	counter_add(&b->q->st.cache_hits, hits);
	return err;
}

static const char *pending_reason = "debug info is still being fetched; query again shortly";

static int all_named(const struct pstore_result *r, const uint32_t *locs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!r->locs[locs[i]].frames)
			return 0;
	return 1;
}

/* Resolve every build ID: a first pass starts the fetches without waiting, the second waits
 * for the pending ones, all within one deadline; then each group is symbolized. */
static int run_groups(struct build *b)
{
	struct qsym_result *res = b->res;
	struct resolver *rv = b->q->o.resolver;
	int64_t deadline = clock_mono_ms() + b->q->o.wait_ms;
	struct group g = {.b = b};
	size_t k = 0;
	int err = 0;

	for (size_t j = 0; j < res->nbids; j++) {
		const char *reason = NULL;
		struct dstore_entry e;
		int st = resolver_resolve(rv, res->bids[j].build_id, 0, &e, &reason);

		if (st == RESOLVER_FOUND) /* the sandboxed index builds run side by side */
			opensyms_prefetch(b->q->o.opensyms, &e);

		res->bids[j].status = st == RESOLVER_PENDING || st == -EAGAIN ? QSYM_PENDING
				      : st == RESOLVER_FOUND		      ? QSYM_FOUND
									      : QSYM_MISSING;
	}
	g.miss = calloc(b->nraw + 1, sizeof(*g.miss));
	g.mloc = calloc(b->nraw + 1, sizeof(*g.mloc));
	g.vaddr = calloc(b->nraw + 1, sizeof(*g.vaddr));
	g.dup = calloc(b->nraw + 1, sizeof(*g.dup));
	if (!g.miss || !g.mloc || !g.vaddr || !g.dup)
		err = -ENOMEM;
	for (size_t j = 0; j < res->nbids && !err; j++) {
		struct qsym_bid *qb = &res->bids[j];
		struct dstore_entry e;
		const char *reason = NULL;
		double left = (double)(deadline - clock_mono_ms());
		int st, wait = qb->status == QSYM_PENDING && left > 0 ? (int)left : 0;

		g.qb = qb;
		g.locs = &b->order[k];
		g.n = qb->nlocs;
		g.nmiss = g.nv = g.ndup = 0;
		k += qb->nlocs;
		if (wait && all_named(b->r, g.locs, g.n))
			wait = 0; /* its producer's names stand in meanwhile (Go, SDKs) */
		st = resolver_resolve(rv, qb->build_id, wait, &e, &reason);
		if (st == RESOLVER_FOUND) {
			err = group_found(&g, &e);
			u64map_free(&g.memo);
		} else if (st == RESOLVER_PENDING || st == -EAGAIN) {
			qb->status = QSYM_PENDING;
			qb->reason = st == -EAGAIN ? "too many build IDs are being resolved at "
						     "once; query again shortly"
						   : pending_reason;
			res->partial = 1;
		} else {
			qb->status = st == RESOLVER_MISSING ? QSYM_MISSING : QSYM_FAILED;
			qb->reason = st == RESOLVER_MISSING ? (reason ? reason : "no debug info")
							    : err_str(st);
		}
		if (st != RESOLVER_FOUND)
			for (size_t m = 0; m < g.n; m++)
				res->locs[g.locs[m]].unknown = 1;
	}
	free(g.miss);
	free(g.mloc);
	free(g.vaddr);
	free(g.dup);
	return err;
}

/* Turn offset frames into the public ones, now that the pool stops growing. A raw location
 * left unknown falls back to the names its producer sent, if any. */
static int finish(struct build *b)
{
	struct qsym_result *res = b->res;
	int err;

	for (size_t i = 0; i < res->nlocs; i++) {
		if (!res->locs[i].unknown || !b->r->locs[i].frames || !b->r->locs[i].build_id[0])
			continue;
		err = named_loc(b, i);
		if (err)
			return err;
	}

	res->frames = calloc(b->nof + 1, sizeof(*res->frames));
	if (!res->frames)
		return -ENOMEM;
	res->nframes = b->nof;
	for (size_t i = 0; i < b->nof; i++) {
		const struct oframe *f = &b->of[i];

		res->frames[i] = (struct qsym_frame){
		    .function = strpool_str(&res->pool, f->fn),
		    .file = strpool_str(&res->pool, f->file),
		    .line = f->line,
		    .column = f->column,
		    .inlined = f->inlined,
		};
	}
	for (size_t i = 0; i < res->nlocs; i++) {
		struct qsym_loc *ql = &res->locs[i];

		if (ql->unknown)
			ql->nframes = 0;
		ql->frames = ql->nframes ? &res->frames[b->first[i]] : NULL;
		res->unknown += ql->unknown;
		if (ql->unknown && ql->bid >= 0)
			res->bids[ql->bid].nunknown++;
	}
	return 0;
}

int qsym_run(struct qsym *q, const struct pstore_result *r, struct qsym_result **out)
{
	struct build b = {.q = q, .r = r};
	struct qsym_result *res;
	int err;

	*out = NULL;
	res = calloc(1, sizeof(*res));
	if (!res)
		return -ENOMEM;
	b.res = res;
	res->nlocs = r->nlocs;
	res->locs = calloc(r->nlocs + 1, sizeof(*res->locs));
	b.first = calloc(r->nlocs + 1, sizeof(*b.first));
	b.order = calloc(r->nlocs + 1, sizeof(*b.order));
	if (!res->locs || !b.first || !b.order) {
		err = -ENOMEM;
		goto out;
	}
	err = prepare(&b);
	if (!err)
		err = run_groups(&b);
	if (!err)
		err = finish(&b);
out:
	free(b.of);
	free(b.first);
	free(b.order);
	counter_add(&q->st.queries, 1);
	counter_add(&q->st.locations, b.nraw);
	if (res->partial)
		counter_add(&q->st.partial, 1);
	if (err) {
		qsym_result_free(res);
		return err;
	}
	*out = res;
	return 0;
}

void qsym_result_free(struct qsym_result *res)
{
	if (!res)
		return;
	free(res->locs);
	free(res->bids);
	free(res->frames);
	strpool_free(&res->pool);
	free(res);
}

void qsym_stats(struct qsym *q, struct qsym_stats *st)
{
	st->queries = __atomic_load_n(&q->st.queries, __ATOMIC_RELAXED);
	st->partial = __atomic_load_n(&q->st.partial, __ATOMIC_RELAXED);
	st->locations = __atomic_load_n(&q->st.locations, __ATOMIC_RELAXED);
	st->symbolized = __atomic_load_n(&q->st.symbolized, __ATOMIC_RELAXED);
	st->cache_hits = __atomic_load_n(&q->st.cache_hits, __ATOMIC_RELAXED);
	pthread_mutex_lock(&q->lock);
	st->cached = q->cached;
	st->build_ids = q->ntabs;
	st->dropped = q->st.dropped;
	pthread_mutex_unlock(&q->lock);
}
