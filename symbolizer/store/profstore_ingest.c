/*
 * profstore_ingest - pprof in, rows out.
 *
 * Three phases. (1) Decode: gunzip with a cap on the output, protobuf-c unpack through an
 * allocator with a byte cap, so a bomb or a hostile length prefix ends in -ERR_TOOBIG, not in
 * the OOM killer. (2) Validate everything that refers to something (string, mapping, function
 * and location indexes, value counts) before the database is touched, so garbage is refused
 * with a message and nothing is stored. (3) Write, in one transaction under the writer lock:
 * each pprof location becomes a deduplicated store location, each sample's location list a
 * deduplicated stack, each sample's labels a deduplicated label set, and each sample type one
 * profile row holding the packed (stack, label set, value) entries. The writer's caches
 * (key -> id) make the common case — a stack seen before — a hash lookup with no SQL.
 */
#include "symbolizer/store/profstore_int.h"
#include "symbolizer/store/chstore.h"

#include "profile.pb-c.h"

#include "lib/clock.h"
#include "lib/bsearch.h"
#include "lib/err.h"
#include "lib/fsutil.h"
#include "lib/log.h"
#include "lib/u64map.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <zlib.h>

#define DECODE_FACTOR	 32			 /* unpacked bytes per encoded byte allowed */
#define DECODE_MAX_BYTES ((size_t)2 << 30)	 /* and never more than this */
#define KEY_MAX		 (PSTORE_MAX_DEPTH * 10) /* a stack key: varint location ids */

/* ---- the capped arena for protobuf-c ----
 * protobuf-c allocates every message, string and array of a profile apart (one malloc per
 * sample and location); here each is a pointer bump in chunks that grow to 8 MiB, and the whole
 * profile is freed at once. malloc and free took 17 % of ingest before. */

struct pa_chunk {
	struct pa_chunk *next;
	size_t size, off;
	uint8_t data[] __attribute__((aligned(16)));
};

struct palloc {
	size_t used, max; /* bytes of chunks held; the cap */
	int over;	  /* an allocation passed the cap */
	int busy;	  /* an allocation passed the shared budget that others hold */
	struct pstore *s; /* whose decode budget the chunks are taken from */
	size_t charged;	  /* bytes of it this arena holds (with the gunzip'd body's) */
	size_t plain;	  /* of those, the gunzip'd body's, given back when it is freed */
	struct pa_chunk *head;
};

/* Take N bytes of S's shared decode budget (opts.decode_budget) for one ingest that holds
 * MINE already: 0, -EBUSY (other ingests hold it), -ERR_TOOBIG (N + MINE alone pass it). */
static int budget_take(struct pstore *s, size_t mine, size_t n)
{
	uint64_t budget = s->o.decode_budget, used;

	if (!budget)
		return 0;
	if (n > budget || mine > budget - n)
		return -ERR_TOOBIG;
	used = __atomic_add_fetch(&s->decode_used, n, __ATOMIC_RELAXED);
	if (used > budget) {
		__atomic_sub_fetch(&s->decode_used, n, __ATOMIC_RELAXED);
		return -EBUSY;
	}
	return 0;
}

static void budget_give(struct pstore *s, size_t n)
{
	if (s->o.decode_budget && n)
		__atomic_sub_fetch(&s->decode_used, n, __ATOMIC_RELAXED);
}

/* Freed chunks wait in the store's pool for the next ingest, up to PA_POOL_MAX of them of at
 * most PA_POOL_CHUNK bytes: fresh chunks came from the kernel at every ingest, and their page
 * faults (46 per bench profile, 2 with the pool) showed as 8 % of the server's ingest CPU. A
 * pooled chunk is charged to the decode budget only while an ingest holds it. */
#define PA_POOL_MAX   16
#define PA_POOL_CHUNK ((size_t)1 << 20)

static struct pa_chunk *pool_take(struct pstore *s, size_t want)
{
	struct pa_chunk **pp, *c = NULL;

	pthread_mutex_lock(&s->palock);
	for (pp = &s->pa_pool; *pp; pp = &(*pp)->next) {
		if ((*pp)->size == want) {
			c = *pp;
			*pp = c->next;
			s->pa_npool--;
			break;
		}
	}
	pthread_mutex_unlock(&s->palock);
	return c;
}

/* Keep C in S's pool, or free it. */
static void pool_put(struct pstore *s, struct pa_chunk *c)
{
	if (s && c->size <= PA_POOL_CHUNK) {
		pthread_mutex_lock(&s->palock);
		if (s->pa_npool < PA_POOL_MAX) {
			c->next = s->pa_pool;
			s->pa_pool = c;
			s->pa_npool++;
			c = NULL;
		}
		pthread_mutex_unlock(&s->palock);
	}
	free(c);
}

void pstore_pa_pool_free(struct pstore *s)
{
	while (s->pa_pool) {
		struct pa_chunk *c = s->pa_pool;

		s->pa_pool = c->next;
		free(c);
	}
	s->pa_npool = 0;
}

static void *pa_alloc(void *data, size_t size)
{
	struct palloc *a = data;
	struct pa_chunk *c = a->head;
	size_t want;
	void *p;

	if (size > a->max - a->used) {
		a->over = 1;
		return NULL;
	}
	size = (size + 15) & ~(size_t)15;
	if (!c || c->size - c->off < size) {
		want = c ? c->size * 2 : (size_t)64 << 10;
		want = want > ((size_t)8 << 20) ? (size_t)8 << 20 : want;
		want = want < size ? size : want;
		if (want > a->max - a->used)
			want = size;
		if (want > a->max - a->used) {
			a->over = 1;
			return NULL;
		}
		switch (budget_take(a->s, a->charged, want)) {
		case 0: break;
		case -EBUSY: a->busy = 1; return NULL;
		default: a->over = 1; return NULL;
		}
		a->charged += want;
		c = pool_take(a->s, want);
		if (!c)
			c = malloc(sizeof(*c) + want);
		if (!c)
			return NULL;
		c->size = want;
		c->off = 0;
		c->next = a->head;
		a->head = c;
		a->used += want;
	}
	p = c->data + c->off;
	c->off += size;
	return p;
}

/* Memory goes back with the whole arena (pa_release), not piece by piece. */
static void pa_free(void *data, void *ptr)
{
	(void)data;
	(void)ptr;
}

static void pa_release(struct palloc *a)
{
	while (a->head) {
		struct pa_chunk *c = a->head;

		a->head = c->next;
		pool_put(a->s, c);
	}
	a->used = 0;
	if (a->s)
		budget_give(a->s, a->charged);
	a->charged = 0;
}

/* ---- gunzip ---- */

static int gunzip(const uint8_t *in, size_t len, size_t cap, uint8_t **out, size_t *outlen,
		  char *err, size_t errlen)
{
	z_stream z = {0};
	size_t size = len * 4 < cap ? len * 4 + 4096 : cap + 1, n = 0;
	uint8_t *buf = NULL;
	int rc, ret = 0;

	if (size > cap + 1)
		size = cap + 1;
	buf = malloc(size);
	if (!buf || inflateInit2(&z, 15 + 16) != Z_OK) {
		free(buf);
		return -ENOMEM;
	}
	z.next_in = (uint8_t *)in;
	z.avail_in = (uInt)(len > UINT32_MAX ? UINT32_MAX : len);
	for (;;) {
		if (n == size) {
			size_t ns = size * 2 > cap + 1 ? cap + 1 : size * 2;
			uint8_t *nb;

			if (n > cap) {
				snprintf(err, errlen,
					 "the gzip body decompresses to more than %zu bytes "
					 "(--max-ingest-size)",
					 cap);
				ret = -ERR_TOOBIG;
				break;
			}
			nb = realloc(buf, ns);
			if (!nb) {
				ret = -ENOMEM;
				break;
			}
			buf = nb;
			size = ns;
		}
		z.next_out = buf + n;
		z.avail_out = (uInt)(size - n > UINT32_MAX ? UINT32_MAX : size - n);
		rc = inflate(&z, Z_NO_FLUSH);
		n = (size_t)(z.next_out - buf);
		if (rc == Z_STREAM_END) {
			size_t used = (size_t)(z.next_in - in);

			/* concatenated members, as gzip(1) makes them */
			if (used + 2 <= len && in[used] == 0x1f && in[used + 1] == 0x8b) {
				inflateReset(&z);
				z.avail_in =
				    (uInt)(len - used > UINT32_MAX ? UINT32_MAX : len - used);
				continue;
			}
			if (used != len) {
				snprintf(err, errlen, "%zu bytes of garbage after the gzip data",
					 len - used);
				ret = -ERR_BADINPUT;
			}
			break;
		}
		if (rc == Z_BUF_ERROR && z.avail_in == 0 && z.avail_out > 0) {
			snprintf(err, errlen, "truncated gzip data (after %zu decompressed bytes)",
				 n);
			ret = -ERR_BADINPUT;
			break;
		}
		if (rc != Z_OK && rc != Z_BUF_ERROR) {
			snprintf(err, errlen, "damaged gzip data: %s", z.msg ? z.msg : "error");
			ret = rc == Z_MEM_ERROR ? -ENOMEM : -ERR_BADINPUT;
			break;
		}
	}
	inflateEnd(&z);
	if (!ret && n > cap) {
		snprintf(err, errlen,
			 "the gzip body decompresses to more than %zu bytes (--max-ingest-size)",
			 cap);
		ret = -ERR_TOOBIG;
	}
	if (ret) {
		free(buf);
		return ret;
	}
	*out = buf;
	*outlen = n;
	return 0;
}

/* ---- id -> index maps for mappings, functions, locations ---- */

struct idmap {
	uint64_t (*pairs)[2]; /* sorted (id, index); NULL when ids are 1..n in order */
	size_t n;
};

static int idmap_cmp(const void *a, const void *b)
{
	const uint64_t *x = a, *y = b;

	return x[0] < y[0] ? -1 : x[0] > y[0];
}

/* IDS(i) gives the id of element i. -EEXIST on a duplicate or zero id. */
static int idmap_build(struct idmap *m, size_t n, uint64_t (*ids)(const void *arr, size_t i),
		       const void *arr)
{
	int dense = 1;

	m->n = n;
	for (size_t i = 0; i < n && dense; i++)
		dense = ids(arr, i) == i + 1;
	if (dense)
		return 0;
	m->pairs = malloc((n ? n : 1) * sizeof(*m->pairs));
	if (!m->pairs)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		m->pairs[i][0] = ids(arr, i);
		m->pairs[i][1] = i;
	}
	qsort(m->pairs, n, sizeof(*m->pairs), idmap_cmp);
	for (size_t i = 0; i < n; i++)
		if (m->pairs[i][0] == 0 || (i && m->pairs[i][0] == m->pairs[i - 1][0]))
			return -EEXIST;
	return 0;
}

/* Index of ID, or -1. Inline: validation and every stack call it per frame. */
static inline long idmap_get(const struct idmap *m, uint64_t id)
{
	long k;

	if (!m->pairs)
		return id >= 1 && id <= m->n ? (long)(id - 1) : -1;
	k = bsearch_last_le64(m->pairs, m->n, sizeof(*m->pairs), id);
	return k >= 0 && m->pairs[k][0] == id ? (long)m->pairs[k][1] : -1;
}

static uint64_t mapping_id(const void *arr, size_t i)
{
	return ((Perftools__Profiles__Mapping *const *)arr)[i]->id;
}

static uint64_t function_id(const void *arr, size_t i)
{
	return ((Perftools__Profiles__Function *const *)arr)[i]->id;
}

static uint64_t location_id(const void *arr, size_t i)
{
	return ((Perftools__Profiles__Location *const *)arr)[i]->id;
}

/* ---- one ingest ---- */

struct entry {
	int64_t stack, ls, value;
};

struct ing {
	struct pstore *s;
	const Perftools__Profiles__Profile *p;
	char *err;
	size_t errlen;
	int64_t time, duration;
	struct idmap maps, funcs, locs;
	int64_t *loc_store;	       /* per pprof location: store id, 0 until needed */
	char (*bids)[BUILDID_HEX_MAX]; /* per mapping: its build ID if usable, else "" */
	uint8_t *kernel;	       /* per mapping: its file is the kernel's or a module's */
	int64_t *sample_stack, *sample_ls;
	struct u64map ls_seen; /* hash of a sample's raw labels -> 1 + a sample that has them */
	int64_t truncated_loc; /* store id of "[truncated]", 0 until needed */
	size_t truncated;
	uint8_t key[KEY_MAX + 64];
	uint8_t *buf;	    /* scratch for location keys, frames, label sets */
	struct chbatch *cb; /* ClickHouse: the rows this ingest sends; NULL for sqlite */
	size_t buf_cap;

	/* group commit: the series labels, the idempotency key, what was written, the queue */
	const struct lpair *sp;
	const char *idem_key;
	int duplicate;
	size_t nsp, rows;
	struct ing *qnext;
	int qdone, qerr;
};

static int bad(struct ing *g, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int bad(struct ing *g, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(g->err, g->errlen, fmt, ap);
	va_end(ap);
	return -ERR_BADINPUT;
}

static int str_ok(const struct ing *g, int64_t i)
{
	return i >= 0 && (uint64_t)i < g->p->n_string_table;
}

static const char *str(const struct ing *g, int64_t i)
{
	const char *s = str_ok(g, i) ? g->p->string_table[i] : NULL;

	return s ? s : "";
}

/* Length of S cut to at most MAX bytes without splitting a UTF-8 sequence. */
static size_t cut_len(const char *s, size_t max)
{
	size_t n = strnlen(s, max + 1);

	if (n <= max)
		return n;
	n = max;
	while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
		n--;
	return n;
}

static int validate_header(struct ing *g)
{
	const Perftools__Profiles__Profile *p = g->p;

	if (p->n_sample_type == 0)
		return bad(g, "the profile has no sample_type");
	if (p->n_sample_type > PSTORE_MAX_SAMPLE_TYPES)
		return bad(g, "%zu sample types; at most %d are taken", p->n_sample_type,
			   PSTORE_MAX_SAMPLE_TYPES);
	if (p->n_sample > PSTORE_MAX_SAMPLES || p->n_location > PSTORE_MAX_LOCATIONS ||
	    p->n_function > PSTORE_MAX_FUNCTIONS || p->n_mapping > PSTORE_MAX_MAPPINGS) {
		snprintf(g->err, g->errlen,
			 "the profile has %zu samples, %zu locations, %zu functions, %zu "
			 "mappings; at most %d, %d, %d, %d are taken",
			 p->n_sample, p->n_location, p->n_function, p->n_mapping,
			 PSTORE_MAX_SAMPLES, PSTORE_MAX_LOCATIONS, PSTORE_MAX_FUNCTIONS,
			 PSTORE_MAX_MAPPINGS);
		return -ERR_TOOBIG;
	}
	for (size_t i = 0; i < p->n_sample_type; i++) {
		const Perftools__Profiles__ValueType *vt = p->sample_type[i];

		if (!str_ok(g, vt->type) || !str_ok(g, vt->unit))
			return bad(g, "sample_type[%zu] has a string index out of range", i);
		if (!*str(g, vt->type))
			return bad(g, "sample_type[%zu] has an empty type name", i);
	}
	if (p->period_type &&
	    (!str_ok(g, p->period_type->type) || !str_ok(g, p->period_type->unit)))
		return bad(g, "period_type has a string index out of range");
	if (p->time_nanos < 0 || p->duration_nanos < 0)
		return bad(g, "negative time_nanos or duration_nanos");
	if (p->time_nanos > clock_wall_ns() + (int64_t)86400 * 1000000000)
		return bad(g, "time_nanos is more than a day in the future");
	return 0;
}

static int is_kernel_file(const char *f)
{
	return !strncmp(f, "[kernel", 7) || !strcmp(f, "[vmlinux]") || !strncmp(f, "[module", 7);
}

static int validate_tables(struct ing *g)
{
	const Perftools__Profiles__Profile *p = g->p;
	int err;

	for (size_t i = 0; i < p->n_mapping; i++) {
		const Perftools__Profiles__Mapping *m = p->mapping[i];

		if (!str_ok(g, m->filename) || !str_ok(g, m->build_id))
			return bad(g, "mapping[%zu] has a string index out of range", i);
	}
	for (size_t i = 0; i < p->n_function; i++) {
		const Perftools__Profiles__Function *f = p->function[i];

		if (!str_ok(g, f->name) || !str_ok(g, f->system_name) || !str_ok(g, f->filename))
			return bad(g, "function[%zu] has a string index out of range", i);
	}
	err = idmap_build(&g->maps, p->n_mapping, mapping_id, p->mapping);
	if (!err)
		err = idmap_build(&g->funcs, p->n_function, function_id, p->function);
	if (!err)
		err = idmap_build(&g->locs, p->n_location, location_id, p->location);
	if (err == -EEXIST)
		return bad(g, "a mapping, function or location id is 0 or used twice");
	if (err)
		return err;
	g->bids = calloc(p->n_mapping + 1, sizeof(*g->bids));
	g->kernel = calloc(p->n_mapping + 1, 1);
	if (!g->bids || !g->kernel)
		return -ENOMEM;
	for (size_t i = 0; i < p->n_mapping; i++) {
		g->kernel[i] = (uint8_t)is_kernel_file(str(g, p->mapping[i]->filename));
		/* a mapping without a usable build ID keeps "" (its frames stay raw) */
		if (buildid_normalize(str(g, p->mapping[i]->build_id), BUILDID_WHOLE, g->bids[i]))
			g->bids[i][0] = '\0';
	}
	for (size_t i = 0; i < p->n_location; i++) {
		const Perftools__Profiles__Location *l = p->location[i];

		if (l->mapping_id && idmap_get(&g->maps, l->mapping_id) < 0)
			return bad(g, "location id %llu refers to mapping id %llu, which is absent",
				   (unsigned long long)l->id, (unsigned long long)l->mapping_id);
		for (size_t k = 0; k < l->n_line; k++)
			if (l->line[k]->function_id &&
			    idmap_get(&g->funcs, l->line[k]->function_id) < 0)
				return bad(g,
					   "location id %llu refers to function id %llu, which is "
					   "absent",
					   (unsigned long long)l->id,
					   (unsigned long long)l->line[k]->function_id);
	}
	return 0;
}

static int validate_samples(struct ing *g)
{
	const Perftools__Profiles__Profile *p = g->p;

	for (size_t i = 0; i < p->n_sample; i++) {
		const Perftools__Profiles__Sample *sm = p->sample[i];

		if (sm->n_value != p->n_sample_type)
			return bad(g, "sample %zu has %zu values for %zu sample types", i,
				   sm->n_value, p->n_sample_type);
		for (size_t k = 0; k < sm->n_location_id; k++)
			if (idmap_get(&g->locs, sm->location_id[k]) < 0)
				return bad(g,
					   "sample %zu refers to location id %llu, which is absent",
					   i, (unsigned long long)sm->location_id[k]);
		for (size_t k = 0; k < sm->n_label; k++) {
			const Perftools__Profiles__Label *l = sm->label[k];

			if (!str_ok(g, l->key) || !str_ok(g, l->str) || !str_ok(g, l->num_unit))
				return bad(g,
					   "sample %zu has a label with a string index out of "
					   "range",
					   i);
		}
	}
	return 0;
}

/* ---- scratch ---- */

static int reserve(struct ing *g, size_t n)
{
	uint8_t *nb;
	size_t cap = g->buf_cap ? g->buf_cap : 4096;

	if (n <= g->buf_cap)
		return 0;
	while (cap < n)
		cap *= 2;
	nb = realloc(g->buf, cap);
	if (!nb)
		return -ENOMEM;
	g->buf = nb;
	g->buf_cap = cap;
	return 0;
}

/* ---- dictionary rows: find in cache, else in the DB by hash, else insert ---- */

struct dict {
	struct kcache *cache;
	enum wstmt find, ins, seen;
	/* binds the insert's columns after ?1 hash, ?2 key, ?3 last_seen */
	int (*bind_extra)(sqlite3_stmt *st, void *ctx);
	void *ctx;
	/* ClickHouse: the table of the row, and the columns after id and key (NULL: only the
	 * key, hex) */
	enum chtable cht;
	void (*ch_row)(struct chbuf *b, uint64_t id, const uint8_t *key, size_t klen, void *ctx);
};

/* The store id of KEY (hash H) in ClickHouse: the hash itself, positive and nonzero. */
static int64_t ch_id(uint64_t h)
{
	int64_t id = (int64_t)(h & (uint64_t)INT64_MAX);

	return id ? id : 1;
}

/* dict_get() for ClickHouse: the id is the key's hash; the row goes into this ingest's batch
 * unless the cache says it was sent already. Two keys of one hash share an id in ClickHouse
 * anyway, so the cache matches by hash alone and keeps no copy of the key. */
static int dict_get_ch(struct ing *g, const struct dict *d, uint64_t h, const uint8_t *key,
		       size_t klen, int64_t *id)
{
	struct chbuf *b = &g->cb->t[d->cht];

	*id = ch_id(h);
	if (kcache_find(d->cache, h, NULL, 0))
		return 0;
	if (d->ch_row) {
		d->ch_row(b, (uint64_t)*id, key, klen, d->ctx);
	} else {
		chbuf_printf(b, "%" PRId64 "\t", *id);
		chbuf_hex(b, key, klen);
		chbuf_printf(b, "\n");
	}
	return b->err ?: kcache_add(d->cache, h, NULL, 0, *id, g->time);
}

static int step_done(struct pstore *s, sqlite3_stmt *st, const char *what)
{
	int rc = sqlite3_step(st);

	sqlite3_reset(st);
	return rc == SQLITE_DONE ? 0 : pstore_sqlite_err(s->wdb, rc, what);
}

static int bump_seen(struct pstore *s, enum wstmt seen, int64_t id, int64_t t)
{
	sqlite3_stmt *st = s->wst[seen];

	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int64(st, 2, t);
	return step_done(s, st, "update last_seen");
}

static int dict_get(struct ing *g, const struct dict *d, const uint8_t *key, size_t klen,
		    int64_t *id)
{
	struct pstore *s = g->s;
	uint64_t h = pstore_hash(key, klen);
	struct kcache_ent *e;
	sqlite3_stmt *st;
	int64_t seen = 0;
	int rc, err;

	if (g->cb)
		return dict_get_ch(g, d, h, key, klen, id);
	e = kcache_find(d->cache, h, key, klen);
	if (e) {
		if (g->time > e->seen + PSTORE_SEEN_SLACK_NS) {
			err = bump_seen(s, d->seen, e->id, g->time);
			if (err)
				return err;
			e->seen = g->time;
		}
		*id = e->id;
		return 0;
	}
	*id = 0;
	st = s->wst[d->find];
	sqlite3_bind_int64(st, 1, (int64_t)h);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if ((size_t)sqlite3_column_bytes(st, 2) == klen &&
		    !memcmp(sqlite3_column_blob(st, 2), key, klen)) {
			*id = sqlite3_column_int64(st, 0);
			seen = sqlite3_column_int64(st, 1);
			break;
		}
	}
	sqlite3_reset(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return pstore_sqlite_err(s->wdb, rc, "dictionary lookup");
	if (*id) {
		if (g->time > seen + PSTORE_SEEN_SLACK_NS) {
			err = bump_seen(s, d->seen, *id, g->time);
			if (err)
				return err;
			seen = g->time;
		}
	} else {
		st = s->wst[d->ins];
		sqlite3_bind_int64(st, 1, (int64_t)h);
		sqlite3_bind_blob(st, 2, key, (int)klen, SQLITE_STATIC);
		sqlite3_bind_int64(st, 3, g->time);
		err = d->bind_extra ? d->bind_extra(st, d->ctx) : 0;
		if (!err)
			err = step_done(s, st, "dictionary insert");
		sqlite3_clear_bindings(st);
		if (err)
			return err;
		*id = sqlite3_last_insert_rowid(s->wdb);
		seen = g->time;
	}
	return kcache_add(d->cache, h, key, klen, *id, seen);
}

/* ---- locations ---- */

struct loc_cols {
	const char *build_id, *mapping_file;
	uint64_t file_off;
	int kernel;
	const uint8_t *frames;
	size_t frames_len;
};

static int bind_loc(sqlite3_stmt *st, void *ctx)
{
	const struct loc_cols *c = ctx;

	sqlite3_bind_text(st, 4, c->build_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 5, (int64_t)c->file_off);
	sqlite3_bind_text(st, 6, c->mapping_file, (int)cut_len(c->mapping_file, PSTORE_MAX_STRING),
			  SQLITE_STATIC);
	sqlite3_bind_int(st, 7, c->kernel);
	if (c->frames)
		sqlite3_bind_blob(st, 8, c->frames, (int)c->frames_len, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, 8);
	return 0;
}

static void ch_loc_row(struct chbuf *b, uint64_t id, const uint8_t *key, size_t klen, void *ctx)
{
	const struct loc_cols *c = ctx;

	chbuf_printf(b, "%" PRIu64 "\t", id);
	chbuf_hex(b, c->build_id, strlen(c->build_id));
	chbuf_printf(b, "\t%" PRIu64 "\t", c->file_off);
	chbuf_hex(b, c->mapping_file, cut_len(c->mapping_file, PSTORE_MAX_STRING));
	chbuf_printf(b, "\t%d\t%d\t", c->kernel ? 1 : 0, c->frames ? 1 : 0);
	if (c->frames)
		chbuf_hex(b, c->frames, c->frames_len);
	chbuf_printf(b, "\n");
}

static size_t put_str(uint8_t *b, const char *s, size_t n)
{
	size_t k = pv_put(b, n);

	memcpy(b + k, s, n);
	return k + n;
}

/* The frames blob of L into g->buf at offset OFF: per Line, innermost first,
 * varint(len) function, varint(len) file, varint(zigzag(line)). Sets *LEN (0: no names). */
static int encode_frames(struct ing *g, const Perftools__Profiles__Location *l, size_t off,
			 size_t *len)
{
	size_t n = off, nl = l->n_line < PSTORE_MAX_INLINE ? l->n_line : PSTORE_MAX_INLINE;
	int named = 0, err;

	for (size_t k = 0; k < nl; k++) {
		const Perftools__Profiles__Line *ln = l->line[k];
		long fi = ln->function_id ? idmap_get(&g->funcs, ln->function_id) : -1;
		const Perftools__Profiles__Function *f = fi >= 0 ? g->p->function[fi] : NULL;
		const char *name = f ? str(g, f->name) : "", *file = f ? str(g, f->filename) : "";
		size_t nn, fn;

		if (!*name && f)
			name = str(g, f->system_name);
		if (!*name)
			name = "[unknown function]";
		else
			named = 1;
		nn = cut_len(name, PSTORE_MAX_STRING);
		fn = cut_len(file, PSTORE_MAX_STRING);
		err = reserve(g, n + nn + fn + 40);
		if (err)
			return err;
		n += put_str(g->buf + n, name, nn);
		n += put_str(g->buf + n, file, fn);
		n += pv_put(g->buf + n, pv_zig(ln->line));
	}
	*len = named ? n - off : 0;
	return 0;
}

/* location()'s use of the scratch buffer: a key goes first, the encoded frames KEY_ROOM bytes
 * past the mapping file's length, so no key overlaps them (a key is a tag, a build ID or the
 * file name, and a varint: at most 80 bytes besides the name). A named location's key holds
 * its frames, so it goes after them. */
#define KEY_ROOM 128

/* Where location L points: its mapping's build ID into BID ("" if none or unusable), file
 * name and kind, and the file offset of its address. */
static void loc_place(struct ing *g, const Perftools__Profiles__Location *l, struct loc_cols *c,
		      char bid[BUILDID_HEX_MAX])
{
	const Perftools__Profiles__Mapping *m = NULL;
	long mi = l->mapping_id ? idmap_get(&g->maps, l->mapping_id) : -1;

	c->file_off = l->address;
	if (mi < 0)
		return;
	m = g->p->mapping[mi];
	memcpy(bid, g->bids[mi], BUILDID_HEX_MAX);
	c->mapping_file = str(g, m->filename);
	c->kernel = g->kernel[mi];
	if (l->address >= m->memory_start)
		c->file_off = l->address - m->memory_start + m->file_offset;
}

/* The identity a location is stored under, written into the scratch buffer: 'R' build ID and
 * file offset; without a build ID, 'N' kernel flag and frames when it names its frames, else
 * 'U' mapping file and file offset. FL is the mapping file's length as stored. */
static uint8_t *loc_key(struct ing *g, const struct loc_cols *c, size_t fl, size_t *klen)
{
	uint8_t *k = g->buf;
	size_t n = 0;

	if (c->build_id[0]) {
		size_t bl = strlen(c->build_id) + 1;

		k[n++] = 'R';
		memcpy(k + n, c->build_id, bl);
		n += bl;
		n += pv_put(k + n, c->file_off);
	} else if (c->frames_len) {
		k = g->buf + fl + KEY_ROOM + c->frames_len;
		k[n++] = 'N';
		k[n++] = (uint8_t)c->kernel;
		memcpy(k + n, c->frames, c->frames_len);
		n += c->frames_len;
	} else {
		k[n++] = 'U';
		memcpy(k + n, c->mapping_file, fl);
		n += fl;
		k[n++] = '\0';
		n += pv_put(k + n, c->file_off);
	}
	*klen = n;
	return k;
}

/* The store id of pprof location I. */
static int location(struct ing *g, long i, int64_t *id)
{
	const Perftools__Profiles__Location *l = g->p->location[i];
	struct loc_cols c = {.build_id = "", .mapping_file = ""};
	struct dict d = {&g->s->locs, W_LOC_FIND, W_LOC_INS,	 W_LOC_SEEN,
			 bind_loc,    &c,	  CHT_LOCATIONS, ch_loc_row};
	char bid[BUILDID_HEX_MAX] = "";
	size_t fl, flen = 0, klen;
	uint8_t *key;
	int err;

	if (g->loc_store[i]) {
		*id = g->loc_store[i];
		return 0;
	}
	loc_place(g, l, &c, bid);
	c.build_id = bid;
	fl = cut_len(c.mapping_file, PSTORE_MAX_STRING);
	err = reserve(g, fl + KEY_ROOM);
	if (!err)
		err = encode_frames(g, l, fl + KEY_ROOM, &flen);
	if (!err && !bid[0] && flen) /* the named key after the frames */
		err = reserve(g, fl + KEY_ROOM + 2 * flen + 8);
	if (err)
		return err;
	if (flen) {
		c.frames = g->buf + fl + KEY_ROOM;
		c.frames_len = flen;
	}
	key = loc_key(g, &c, fl, &klen);
	err = dict_get(g, &d, key, klen, &g->loc_store[i]);
	if (!err)
		*id = g->loc_store[i];
	return err;
}

/* The named location "[truncated]" that roots a cut stack. */
static int truncated_location(struct ing *g, int64_t *id)
{
	static const char name[] = "[truncated]";
	struct loc_cols c = {.build_id = "", .mapping_file = ""};
	struct dict d = {&g->s->locs, W_LOC_FIND, W_LOC_INS,	 W_LOC_SEEN,
			 bind_loc,    &c,	  CHT_LOCATIONS, ch_loc_row};
	uint8_t fr[32], key[40];
	size_t n = 0, klen = 0;

	if (g->truncated_loc) {
		*id = g->truncated_loc;
		return 0;
	}
	n += put_str(fr + n, name, sizeof(name) - 1);
	n += put_str(fr + n, "", 0);
	n += pv_put(fr + n, 0);
	c.frames = fr;
	c.frames_len = n;
	key[klen++] = 'N';
	key[klen++] = 0;
	memcpy(key + klen, fr, n);
	klen += n;
	return dict_get(g, &d, key, klen, &g->truncated_loc) ?: (*id = g->truncated_loc, 0);
}

/* ---- stacks ---- */

static int stack(struct ing *g, const Perftools__Profiles__Sample *sm, int64_t *id)
{
	struct dict d = {&g->s->stacks, W_STACK_FIND, W_STACK_INS, W_STACK_SEEN,
			 NULL,		NULL,	      CHT_STACKS,  NULL};
	size_t n = sm->n_location_id, klen = 0;
	int cut = n > PSTORE_MAX_DEPTH;
	int64_t lid;
	int err;

	if (cut)
		n = PSTORE_MAX_DEPTH - 1;
	for (size_t k = 0; k < n; k++) {
		long li = idmap_get(&g->locs, sm->location_id[k]);

		lid = g->loc_store[li]; /* seen in this profile already: the common case */
		if (!lid && (err = location(g, li, &lid)))
			return err;
		klen += pv_put(g->key + klen, (uint64_t)lid);
	}
	if (cut) {
		err = truncated_location(g, &lid);
		if (err)
			return err;
		klen += pv_put(g->key + klen, (uint64_t)lid);
		g->truncated++;
	}
	return dict_get(g, &d, g->key, klen, id);
}

/* ---- label sets ---- */

struct lpair {
	char name[PSTORE_MAX_LABEL_NAME + 2];
	const char *value; /* borrowed from the string table, or points into num */
	size_t vlen;
	int isnum; /* VALUE is NUM (fixed up after sorting moves the struct) */
	char num[24];
};

static int lpair_cmp(const void *a, const void *b)
{
	return strcmp(((const struct lpair *)a)->name, ((const struct lpair *)b)->name);
}

/* Label keys become selector-addressable names: [a-zA-Z_][a-zA-Z0-9_]*, other bytes '_'. */
static void sanitize_name(const char *k, char *out)
{
	size_t n = 0;

	if (isdigit((unsigned char)k[0]))
		out[n++] = '_';
	for (; *k && n < PSTORE_MAX_LABEL_NAME; k++)
		out[n++] = isalnum((unsigned char)*k) || *k == '_' ? *k : '_';
	out[n] = '\0';
}

static int lvalue_seen(struct ing *g, int sample, const char *name, const char *value, size_t vlen);

/* Canonical blob of a sorted pair list into g->buf; sets *LEN. */
static int encode_pairs(struct ing *g, const struct lpair *lp, size_t n, size_t *len)
{
	size_t off = 0;
	int err = reserve(g, n * (PSTORE_MAX_LABEL_NAME + PSTORE_MAX_LABEL_VALUE + 4) + 1);

	if (err)
		return err;
	for (size_t i = 0; i < n; i++) {
		size_t nl = strlen(lp[i].name);

		memcpy(g->buf + off, lp[i].name, nl + 1);
		off += nl + 1;
		memcpy(g->buf + off, lp[i].value, lp[i].vlen);
		off += lp[i].vlen;
		g->buf[off++] = '\0';
	}
	*len = off;
	return 0;
}

/* Hash of sample SM's labels as the pprof holds them (string indexes, numbers). */
static uint64_t raw_labels_hash(const Perftools__Profiles__Sample *sm)
{
	uint64_t w[4], h = pstore_hash(&sm->n_label, sizeof(sm->n_label));

	for (size_t k = 0; k < sm->n_label; k++) {
		const Perftools__Profiles__Label *l = sm->label[k];

		w[0] = (uint64_t)l->key;
		w[1] = (uint64_t)l->str;
		w[2] = (uint64_t)l->num;
		w[3] = (uint64_t)l->num_unit ^ h;
		h = pstore_hash(w, sizeof(w));
	}
	return h;
}

static int raw_labels_equal(const Perftools__Profiles__Sample *a,
			    const Perftools__Profiles__Sample *b)
{
	if (a->n_label != b->n_label)
		return 0;
	for (size_t k = 0; k < a->n_label; k++) {
		const Perftools__Profiles__Label *x = a->label[k], *y = b->label[k];

		if (x->key != y->key || x->str != y->str || x->num != y->num ||
		    x->num_unit != y->num_unit)
			return 0;
	}
	return 1;
}

static int labelset_uncached(struct ing *g, const Perftools__Profiles__Sample *sm, int64_t *id);

/* The label set of sample I into g->sample_ls[I]. A profile's samples share few label sets
 * (an agent's: one per pid), so a sample whose raw labels equal an earlier one's takes its id
 * without decoding, sorting and looking them up again. */
static int labelset(struct ing *g, size_t i)
{
	const Perftools__Profiles__Sample *sm = g->p->sample[i];
	uint64_t h = raw_labels_hash(sm);
	uint32_t j;
	int err;

	if (u64map_get(&g->ls_seen, h, &j) && raw_labels_equal(g->p->sample[j - 1], sm)) {
		g->sample_ls[i] = g->sample_ls[j - 1];
		return 0;
	}
	err = labelset_uncached(g, sm, &g->sample_ls[i]);
	if (err || i >= UINT32_MAX || u64map_put(&g->ls_seen, h, (uint32_t)i + 1))
		return err; /* a cache that cannot grow is only slower */
	return 0;
}

static int labelset_uncached(struct ing *g, const Perftools__Profiles__Sample *sm, int64_t *id)
{
	struct dict d = {&g->s->lsets, W_LS_FIND, W_LS_INS,	 W_LS_SEEN,
			 NULL,	       NULL,	  CHT_LABELSETS, NULL};
	struct lpair lp[PSTORE_MAX_SAMPLE_LABELS];
	size_t n = 0, len;
	int err;

	*id = 0;
	for (size_t k = 0; k < sm->n_label && n < PSTORE_MAX_SAMPLE_LABELS; k++) {
		const Perftools__Profiles__Label *l = sm->label[k];
		struct lpair *p = &lp[n];
		int dup = 0;

		if (!*str(g, l->key))
			continue;
		sanitize_name(str(g, l->key), p->name);
		p->isnum = !l->str;
		if (l->str) {
			p->value = str(g, l->str);
		} else {
			snprintf(p->num, sizeof(p->num), "%lld", (long long)l->num);
			p->value = p->num;
		}
		p->vlen = cut_len(p->value, PSTORE_MAX_LABEL_VALUE);
		if (!p->vlen || memchr(p->value, '\0', p->vlen))
			continue;
		for (size_t j = 0; j < n && !dup; j++)
			dup = !strcmp(lp[j].name, p->name);
		if (!dup)
			n++;
	}
	if (!n)
		return 0;
	qsort(lp, n, sizeof(lp[0]), lpair_cmp);
	for (size_t k = 0; k < n; k++)
		if (lp[k].isnum)
			lp[k].value = lp[k].num;
	for (size_t k = 0; k < n; k++) {
		err = lvalue_seen(g, 1, lp[k].name, lp[k].value, lp[k].vlen);
		if (err)
			return err;
	}
	err = encode_pairs(g, lp, n, &len);
	if (err)
		return err;
	return dict_get(g, &d, g->buf, len, id);
}

/* label_values rows (for /labels and /labels/NAME/values), with the same lazy last_seen. */
static int lvalue_seen(struct ing *g, int sample, const char *name, const char *value, size_t vlen)
{
	struct pstore *s = g->s;
	uint8_t key[PSTORE_MAX_LABEL_NAME + PSTORE_MAX_LABEL_VALUE + 8];
	size_t nl = strlen(name), klen = 0;
	struct kcache_ent *e;
	sqlite3_stmt *st;
	uint64_t h;
	int err;

	key[klen++] = (uint8_t)sample;
	memcpy(key + klen, name, nl + 1);
	klen += nl + 1;
	memcpy(key + klen, value, vlen);
	klen += vlen;
	h = pstore_hash(key, klen);
	e = kcache_find(&s->lvals, h, key, klen);
	if (e && (g->cb || g->time <= e->seen + PSTORE_SEEN_SLACK_NS))
		return 0;
	if (g->cb) {
		struct chbuf *b = &g->cb->t[CHT_LABEL_VALUES];

		chbuf_hex(b, name, nl);
		chbuf_printf(b, "\t");
		chbuf_hex(b, value, vlen);
		chbuf_printf(b, "\t%d\n", sample);
		return b->err ?: kcache_add(&s->lvals, h, key, klen, 1, g->time);
	}
	st = s->wst[W_LV_UPSERT];
	sqlite3_bind_text(st, 1, name, (int)nl, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, value, (int)vlen, SQLITE_STATIC);
	sqlite3_bind_int(st, 3, sample);
	sqlite3_bind_int64(st, 4, g->time);
	err = step_done(s, st, "label value upsert");
	if (err)
		return err;
	if (e) {
		e->seen = g->time;
		return 0;
	}
	return kcache_add(&s->lvals, h, key, klen, 1, g->time);
}

/* ---- series ---- */

static int valid_name(const char *n)
{
	if (!*n || !(isalpha((unsigned char)*n) || *n == '_'))
		return 0;
	for (; *n; n++)
		if (!isalnum((unsigned char)*n) && *n != '_')
			return 0;
	return 1;
}

/* Check and sort the series labels into LP (empty values dropped); sets *N. */
static int series_pairs(struct ing *g, const struct pstore_label *series, size_t nseries,
			struct lpair *lp, size_t *n)
{
	*n = 0;
	if (nseries > PSTORE_MAX_SERIES_LABELS)
		return bad(g, "%zu series labels; at most %d are taken", nseries,
			   PSTORE_MAX_SERIES_LABELS);
	for (size_t i = 0; i < nseries; i++) {
		const char *name = series[i].name, *v = series[i].value ? series[i].value : "";

		if (!valid_name(name) || strlen(name) > PSTORE_MAX_LABEL_NAME)
			return bad(g,
				   "series label name '%.64s' is not [a-zA-Z_][a-zA-Z0-9_]* of at "
				   "most %d bytes",
				   name, PSTORE_MAX_LABEL_NAME);
		if (strlen(v) > PSTORE_MAX_LABEL_VALUE)
			return bad(g, "the value of series label %s is longer than %d bytes", name,
				   PSTORE_MAX_LABEL_VALUE);
		for (size_t j = 0; j < *n; j++)
			if (!strcmp(lp[j].name, name))
				return bad(g, "series label %s is given twice", name);
		if (!*v)
			continue;
		snprintf(lp[*n].name, sizeof(lp[*n].name), "%s", name);
		lp[*n].value = v;
		lp[*n].vlen = strlen(v);
		(*n)++;
	}
	qsort(lp, *n, sizeof(lp[0]), lpair_cmp);
	return 0;
}

static int series_id(struct ing *g, const struct lpair *lp, size_t n, int64_t *id)
{
	struct pstore *s = g->s;
	struct dict d = {&s->series, W_SERIES_FIND, W_SERIES_INS, W_SERIES_SEEN,
			 NULL,	     NULL,	    CHT_SERIES,	  NULL};
	sqlite3_stmt *st;
	size_t len;
	int err;

	for (size_t k = 0; k < n; k++) {
		err = lvalue_seen(g, 0, lp[k].name, lp[k].value, lp[k].vlen);
		if (err)
			return err;
	}
	err = encode_pairs(g, lp, n, &len);
	if (!err)
		err = dict_get(g, &d, g->buf, len, id);
	if (err || g->cb)
		return err; /* ClickHouse: first/last seen come from the profiles */
	/* first/last seen are exact (the series listing filters on them) */
	st = s->wst[W_SERIES_SEEN];
	sqlite3_bind_int64(st, 1, *id);
	sqlite3_bind_int64(st, 2, g->time);
	return step_done(s, st, "series seen");
}

/* ---- profile rows ---- */

/* type_id() for ClickHouse: the id hashes "\2name\0unit" (the label-value cache holds it). */
static int type_id_ch(struct ing *g, const char *name, const char *unit, int64_t *id)
{
	struct pstore *s = g->s;
	size_t nl = cut_len(name, 64 - 1), ul = cut_len(unit, 64 - 1), klen = 0;
	struct chbuf *b = &g->cb->t[CHT_TYPES];
	uint8_t key[132];
	uint64_t h;

	key[klen++] = 2;
	memcpy(key + klen, name, nl);
	klen += nl;
	key[klen++] = '\0';
	memcpy(key + klen, unit, ul);
	klen += ul;
	h = pstore_hash(key, klen);
	*id = ch_id(h);
	if (kcache_find(&s->lvals, h, key, klen))
		return 0;
	chbuf_printf(b, "%" PRId64 "\t", *id);
	chbuf_hex(b, name, nl);
	chbuf_printf(b, "\t");
	chbuf_hex(b, unit, ul);
	chbuf_printf(b, "\t%" PRId64 "\n", g->time);
	return b->err ?: kcache_add(&s->lvals, h, key, klen, *id, g->time);
}

static int type_id(struct ing *g, const Perftools__Profiles__ValueType *vt, int64_t *id)
{
	struct pstore *s = g->s;
	sqlite3_stmt *st = s->wst[W_TYPE_INS];
	const char *name = str(g, vt->type), *unit = str(g, vt->unit);
	int rc, err;

	if (g->cb)
		return type_id_ch(g, name, unit, id);
	sqlite3_bind_text(st, 1, name, (int)cut_len(name, 64 - 1), SQLITE_STATIC);
	sqlite3_bind_text(st, 2, unit, (int)cut_len(unit, 64 - 1), SQLITE_STATIC);
	err = step_done(s, st, "type insert");
	if (err)
		return err;
	st = s->wst[W_TYPE_FIND];
	sqlite3_bind_text(st, 1, name, (int)cut_len(name, 64 - 1), SQLITE_STATIC);
	sqlite3_bind_text(st, 2, unit, (int)cut_len(unit, 64 - 1), SQLITE_STATIC);
	rc = sqlite3_step(st);
	*id = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
	sqlite3_reset(st);
	return rc == SQLITE_ROW ? 0 : pstore_sqlite_err(s->wdb, rc, "type lookup");
}

static int entry_cmp(const void *a, const void *b)
{
	const struct entry *x = a, *y = b;

	if (x->ls != y->ls)
		return x->ls < y->ls ? -1 : 1;
	return x->stack < y->stack ? -1 : x->stack > y->stack;
}

/* ClickHouse: the profile row and one samples row per (label set, stack) of sample type TID. */
static int profile_rows_ch(struct ing *g, int64_t sid, int64_t tid, int64_t period,
			   const struct entry *ents, size_t m, int *stored)
{
	struct chbuf *b = &g->cb->t[CHT_SAMPLES];
	char day[16], pre[96];
	int plen;

	chstore_day(g->time, day);
	/* the columns every row of this profile shares, then per row three numbers: the bulk of
	 * an ingest's CPU, so no printf per row */
	plen = snprintf(pre, sizeof(pre), "%s\t%" PRId64 "\t%" PRId64 "\t%" PRId64 "\t", day,
			g->time, tid, sid);
	chbuf_reserve(b, m * ((size_t)plen + 3 * 21));
	for (size_t i = 0; i < m && !b->err; i++) {
		chbuf_raw(b, pre, (size_t)plen);
		chbuf_i64(b, ents[i].ls, '\t');
		chbuf_i64(b, ents[i].stack, '\t');
		chbuf_i64(b, ents[i].value, '\n');
	}
	chbuf_printf(&g->cb->t[CHT_PROFILES],
		     "%s\t%" PRId64 "\t%" PRId64 "\t%" PRId64 "\t%" PRId64 "\t%" PRId64 "\n", day,
		     g->time, tid, sid, g->duration, period);
	*stored = !b->err && !g->cb->t[CHT_PROFILES].err;
	return b->err ?: g->cb->t[CHT_PROFILES].err;
}

/* One profile row for sample type K. Sets *STORED when a row was written. */
static int profile_row(struct ing *g, int64_t sid, size_t k, struct entry *ents, int *stored)
{
	const Perftools__Profiles__Profile *p = g->p;
	struct pstore *s = g->s;
	size_t n = 0, m = 0, off = 0;
	int64_t tid, total = 0, prev_ls = 0, period = p->period, scale;
	sqlite3_stmt *st;
	int err;

	*stored = 0;
	err = type_id(g, p->sample_type[k], &tid);
	if (err)
		return err;
	for (size_t i = 0; i < p->n_sample; i++)
		if (p->sample[i]->value[k])
			ents[n++] = (struct entry){g->sample_stack[i], g->sample_ls[i],
						   p->sample[i]->value[k]};
	qsort(ents, n, sizeof(*ents), entry_cmp);
	for (size_t i = 0; i < n; i++) {
		if (m && ents[m - 1].stack == ents[i].stack && ents[m - 1].ls == ents[i].ls) {
			if (__builtin_add_overflow(ents[m - 1].value, ents[i].value,
						   &ents[m - 1].value))
				return bad(g, "the values of sample type %zu pass 64 bits", k);
		} else {
			ents[m++] = ents[i];
		}
	}
	/* a period in another unit than this type says nothing about it */
	if (p->period_type && strcmp(str(g, p->period_type->type), str(g, p->sample_type[k]->type)))
		period = 0;
	if (g->cb)
		return profile_rows_ch(g, sid, tid, period, ents, m, stored);
	/* CPU values are counts times the period: store the counts (1 byte, not 5) */
	scale = period > 1 ? period : 1;
	for (size_t i = 0; i < m && scale > 1; i++)
		if (ents[i].value % scale)
			scale = 1;
	err = reserve(g, m * 40 + 12); /* per entry at most: a group header and two varints */
	if (err)
		return err;
	off = pblob_header(g->buf, scale);
	for (size_t i = 0, j; i < m; i = j) {
		for (j = i; j < m && ents[j].ls == ents[i].ls; j++)
			;
		off += pv_put(g->buf + off, (uint64_t)(ents[i].ls - prev_ls));
		off += pv_put(g->buf + off, j - i);
		prev_ls = ents[i].ls;
		for (size_t e = i; e < j; e++) {
			int64_t v = ents[e].value / scale;
			uint64_t c = v >= 1 && v <= 3 ? (uint64_t)v : 0;
			uint64_t d = (uint64_t)(ents[e].stack - (e > i ? ents[e - 1].stack : 0));

			off += pv_put(g->buf + off, d << 2 | c);
			if (!c)
				off += pv_put(g->buf + off, pv_zig(v));
			if (__builtin_add_overflow(total, ents[e].value, &total))
				return bad(g, "the values of sample type %zu pass 64 bits", k);
		}
	}
	st = s->wst[W_PROFILE_INS];
	sqlite3_bind_int64(st, 1, sid);
	sqlite3_bind_int64(st, 2, tid);
	sqlite3_bind_int64(st, 3, g->time);
	sqlite3_bind_int64(st, 4, g->duration);
	sqlite3_bind_int64(st, 5, period);
	sqlite3_bind_int64(st, 6, (int64_t)m);
	sqlite3_bind_int64(st, 7, total);
	sqlite3_bind_blob(st, 8, g->buf, (int)off, SQLITE_STATIC);
	err = step_done(s, st, "profile insert");
	sqlite3_clear_bindings(st);
	*stored = !err;
	return err;
}

static int exec(struct pstore *s, const char *sql)
{
	int rc = sqlite3_exec(s->wdb, sql, NULL, NULL, NULL);

	return rc == SQLITE_OK ? 0 : pstore_sqlite_err(s->wdb, rc, sql);
}

static int write_profile(struct ing *g, const struct lpair *sp, size_t nsp, size_t *rows)
{
	const Perftools__Profiles__Profile *p = g->p;
	struct entry *ents = NULL;
	int64_t sid;
	int err, stored;

	*rows = 0;
	u64map_free(&g->ls_seen); /* ids of this transaction only */
	err = series_id(g, sp, nsp, &sid);
	for (size_t i = 0; !err && i < p->n_sample; i++) {
		err = stack(g, p->sample[i], &g->sample_stack[i]);
		if (!err)
			err = labelset(g, i);
	}
	if (!err) {
		ents = malloc((p->n_sample ? p->n_sample : 1) * sizeof(*ents));
		if (!ents)
			err = -ENOMEM;
	}
	for (size_t k = 0; !err && k < p->n_sample_type; k++) {
		err = profile_row(g, sid, k, ents, &stored);
		*rows += (size_t)stored;
	}
	free(ents);
	return err;
}

/* ---- group commit ----
 * Each ingest decodes and checks its profile on its own thread, then queues it. One waiting
 * thread at a time leads: it writes every queued profile in one transaction, each in a
 * savepoint so that a bad one costs only itself, and commits once, so concurrent ingests share
 * one COMMIT and its fsync. A leader leads until its own profile is in, then hands over. Nobody
 * returns before the COMMIT that holds its profile: a 200 still means it survives kill -9.
 * With ClickHouse a batch is one INSERT per table instead (write_batch_ch()), and a 200 means
 * ClickHouse acknowledged every row of the profile. */

#define BATCH_MAX 64 /* profiles in one transaction */

/* G's idempotency key, recorded in the open transaction: 1 when it was there already (then
 * nothing else is written for G), 0 when recorded now or when G has none. */
static int key_seen(struct ing *g)
{
	struct pstore *s = g->s;
	sqlite3_stmt *st = s->wst[W_KEY_INS];
	int err;

	if (!g->idem_key)
		return 0;
	sqlite3_bind_text(st, 1, g->idem_key, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, clock_wall_ns());
	err = step_done(s, st, "idempotency key");
	sqlite3_clear_bindings(st);
	return err ? err : sqlite3_changes(s->wdb) == 0;
}

/* One queued profile, inside the open transaction. */
static int write_one(struct ing *g)
{
	struct pstore *s = g->s;
	int err = exec(s, "SAVEPOINT one");

	if (err)
		return err;
	err = key_seen(g);
	if (err > 0)
		g->duplicate = 1;
	else if (!err)
		err = write_profile(g, g->sp, g->nsp, &g->rows);
	if (err < 0) {
		sqlite3_exec(s->wdb, "ROLLBACK TO one", NULL, NULL, NULL);
		/* rows the caches point at, and last_seen values they hold, are gone */
		pstore_drop_caches(s);
		g->rows = 0;
	}
	return exec(s, "RELEASE one") ?: (err < 0 ? err : 0);
}

/* A ClickHouse that did not answer in time less than this ago, or that has been sending for
 * longer, is taken as down: ingests get 503 (Retry-After) at once instead of queueing behind a
 * hung send, so a hung ClickHouse holds few pool threads, each for at most one deadline. */
#define CH_DOWN_MS 2000

static int ch_down(struct pstore *s)
{
	int64_t now = clock_mono_ms(), t;

	if (!s->ch)
		return 0;

	t = __atomic_load_n(&s->ch_down_ms, __ATOMIC_RELAXED);
	if (t && now - t < CH_DOWN_MS)
		return 1;
	t = __atomic_load_n(&s->ch_send_ms, __ATOMIC_RELAXED);
	return t && now - t > CH_DOWN_MS;
}

int pstore_backend_down(struct pstore *s)
{
	return ch_down(s);
}

/* A ClickHouse call ended with ERR: -EBUSY marks ClickHouse as down for CH_DOWN_MS. */
static void ch_saw(struct pstore *s, int err)
{
	if (err == -EBUSY)
		__atomic_store_n(&s->ch_down_ms, clock_mono_ms(), __ATOMIC_RELAXED);
}

/* ClickHouse: BATCH's rows, built under the writer lock, go out in one INSERT per table for
 * the whole batch (chstore_send(): dictionaries first, then profiles and samples; keys after
 * them), so concurrent ingests share
 * the round trips and ClickHouse gets fewer, larger parts. The lock covers the caches and the
 * send: a failed send forgets every cached id, so the next batch sends those rows again
 * (ReplacingMergeTree folds the copies) and no batch refers to a row that was never stored.
 * A profile that fails to build takes its own rows out of the batch. */
static void write_batch_ch(struct pstore *s, struct ing *batch)
{
	struct chbatch cb = {0}, keys = {0};
	int64_t now = clock_wall_ns();
	int err;

	pthread_mutex_lock(&s->wlock);
	if (ch_down(s)) {
		err = -EBUSY; /* these queued behind the send that found it down */
		goto fail;
	}
	for (struct ing *g = batch; g; g = g->qnext) {
		size_t mark[CHT_COUNT_];

		for (int t = 0; t < CHT_COUNT_; t++)
			mark[t] = cb.t[t].n;
		g->cb = &cb;
		g->qerr = write_profile(g, g->sp, g->nsp, &g->rows);
		g->cb = NULL;
		if (!g->qerr && g->idem_key)
			chstore_key_row(&cb, g->idem_key, now);
		if (g->qerr) {
			for (int t = 0; t < CHT_COUNT_; t++)
				cb.t[t].n = mark[t];
			pstore_drop_caches(s); /* they may name rows just taken out */
			g->rows = 0;
		}
	}
	/* the keys go last and on their own: once the profiles are in, a lost key must not turn
	 * into a 503 whose resend would store them twice */
	keys.t[CHT_INGEST_KEYS] = cb.t[CHT_INGEST_KEYS];
	memset(&cb.t[CHT_INGEST_KEYS], 0, sizeof(cb.t[0]));
	__atomic_store_n(&s->ch_send_ms, clock_mono_ms(), __ATOMIC_RELAXED);
	err = chstore_send(s->ch, &cb);
	if (!err && chstore_send(s->ch, &keys))
		log_msg(FS_LOG_WARN, "event=ingest_key_lost: the profiles are stored, their "
				     "idempotency keys are not (a resend would store them again)");
	__atomic_store_n(&s->ch_send_ms, 0, __ATOMIC_RELAXED);
	ch_saw(s, err);
	if (!err)
		__atomic_fetch_add(&s->stats.ingest_commits, 1, __ATOMIC_RELAXED);
fail:
	if (err) {
		pstore_drop_caches(s);
		for (struct ing *g = batch; g; g = g->qnext) {
			g->qerr = g->qerr ?: err;
			g->rows = 0;
		}
	}
	pthread_mutex_unlock(&s->wlock);
	chbatch_free(&cb);
	chbatch_free(&keys);
}

/* Write BATCH (a list through qnext) in one transaction; each one's result in its qerr. */
static void write_batch(struct pstore *s, struct ing *batch)
{
	int err;

	if (s->ch) {
		write_batch_ch(s, batch);
		return;
	}
	pthread_mutex_lock(&s->wlock);
	err = pstore_writer_ready(s);
	if (err) {
		for (struct ing *g = batch; g; g = g->qnext)
			g->qerr = err;
		goto out;
	}
	err = exec(s, "BEGIN IMMEDIATE");
	for (struct ing *g = batch; g; g = g->qnext)
		g->qerr = err ?: write_one(g);
	/* COMMIT with synchronous=FULL: the WAL is fsynced before it returns */
	if (!err && (err = exec(s, "COMMIT")) == 0)
		__atomic_fetch_add(&s->stats.ingest_commits, 1, __ATOMIC_RELAXED);
	if (err) {
		sqlite3_exec(s->wdb, "ROLLBACK", NULL, NULL, NULL);
		pstore_drop_caches(s);
		for (struct ing *g = batch; g; g = g->qnext) {
			g->qerr = g->qerr ?: err;
			g->rows = 0;
		}
	}
out:
	pthread_mutex_unlock(&s->wlock);
}

/* Called with qlock held, and returns with it held: write batches until G's is written. */
static void lead(struct pstore *s, struct ing *g)
{
	while (!g->qdone) {
		struct ing *batch = s->qhead, **end = &s->qhead, *next;
		size_t n = 0;

		while (*end && n++ < BATCH_MAX)
			end = &(*end)->qnext;
		s->qhead = *end;
		if (!s->qhead)
			s->qtail = &s->qhead;
		*end = NULL;
		pthread_mutex_unlock(&s->qlock);
		write_batch(s, batch);
		pthread_mutex_lock(&s->qlock);
		for (; batch; batch = next) {
			next = batch->qnext; /* BATCH's owner may free it once qdone is set */
			batch->qdone = 1;
		}
		pthread_cond_broadcast(&s->qcond);
	}
}

/* ERR, worded in G's message when ClickHouse did not answer */
static int ch_err(struct ing *g, int err)
{
	if (err == -EBUSY)
		snprintf(g->err, g->errlen,
			 "the profile store (ClickHouse) is unreachable or did not answer in time; "
			 "retry later");
	return err;
}

static int store(struct ing *g, const struct lpair *sp, size_t nsp, size_t *rows)
{
	struct pstore *s = g->s;

	g->loc_store = calloc(g->p->n_location + 1, sizeof(*g->loc_store));
	g->sample_stack = calloc(g->p->n_sample + 1, sizeof(*g->sample_stack));
	g->sample_ls = calloc(g->p->n_sample + 1, sizeof(*g->sample_ls));
	if (!g->loc_store || !g->sample_stack || !g->sample_ls)
		return -ENOMEM;
	g->sp = sp;
	g->nsp = nsp;
	g->duplicate = 0;
	*rows = 0;
	if (ch_down(s))
		return ch_err(g, -EBUSY);
	if (s->ch && g->idem_key) {
		/* sqlite looks the key up in the transaction (key_seen()); ClickHouse has none */
		int err = chstore_key_seen(s->ch, g->idem_key, clock_wall_ns() - PSTORE_KEY_KEEP_NS);

		if (err > 0)
			g->duplicate = 1;
		ch_saw(s, err);
		if (err)
			return ch_err(g, err < 0 ? err : 0);
	}
	pthread_mutex_lock(&s->qlock);
	g->qnext = NULL;
	*s->qtail = g;
	s->qtail = &g->qnext;
	while (!g->qdone) {
		if (s->qleader) {
			pthread_cond_wait(&s->qcond, &s->qlock);
			continue;
		}
		s->qleader = 1;
		lead(s, g);
		s->qleader = 0;
		pthread_cond_broadcast(&s->qcond); /* a waiter whose profile is queued leads next */
	}
	pthread_mutex_unlock(&s->qlock);
	*rows = g->rows;
	return s->ch ? ch_err(g, g->qerr) : g->qerr;
}

static int decode(struct ing *g, const uint8_t *body, size_t len, size_t cap,
		  Perftools__Profiles__Profile **out, struct palloc *pa, uint8_t **plain)
{
	ProtobufCAllocator alloc = {pa_alloc, pa_free, pa};
	size_t n = len;
	int err;

	*plain = NULL;
	if (g->s->o.decode_budget && g->s->o.decode_budget < cap)
		cap = (size_t)g->s->o.decode_budget; /* more could never be unpacked */
	if (len >= 2 && body[0] == 0x1f && body[1] == 0x8b) {
		err = gunzip(body, len, cap, plain, &n, g->err, g->errlen);
		if (err)
			return err;
		body = *plain;
	} else if (len > cap) {
		snprintf(g->err, g->errlen, "the profile is %zu bytes; at most %zu are taken", len,
			 cap);
		return -ERR_TOOBIG;
	}
	if (n == 0)
		return bad(g, "empty body: expected a pprof profile (gzip'd or not)");
	__atomic_fetch_add(&g->s->stats.decoded_bytes, n, __ATOMIC_RELAXED);
	pa->s = g->s;
	if (*plain) {
		/* the gunzip'd body counts against the budget while it is unpacked */
		err = budget_take(g->s, 0, n);
		if (err == -EBUSY)
			goto busy;
		if (err) {
			snprintf(g->err, g->errlen,
				 "the profile is %zu bytes after gunzip, more than the server's "
				 "decode budget (--ingest-memory)",
				 n);
			return err;
		}
		pa->charged = pa->plain = n;
	}
	pa->max = n > (DECODE_MAX_BYTES - (4 << 20)) / DECODE_FACTOR
		      ? DECODE_MAX_BYTES
		      : n * DECODE_FACTOR + (4 << 20);
	*out = perftools__profiles__profile__unpack(&alloc, n, body);
	if (!*out && pa->busy)
		goto busy;
	if (!*out && pa->over) {
		uint64_t b = g->s->o.decode_budget;

		snprintf(g->err, g->errlen,
			 "the profile needs more than %" PRIu64 " bytes of memory to decode%s",
			 b && b < pa->max ? b : (uint64_t)pa->max,
			 b && b < pa->max ? " (the server's --ingest-memory)" : "");
		return -ERR_TOOBIG;
	}
	if (!*out)
		return bad(g, "not a pprof profile: protobuf decoding of %zu bytes failed%s", n,
			   *plain ? " (after gunzip)" : "");
	return 0;
busy:
	snprintf(g->err, g->errlen,
		 "the server is decoding other profiles with all of its decode memory "
		 "(--ingest-memory); retry shortly");
	return -EBUSY;
}

/* -ENOSPC, with a message, when the data dir's file system has less than opts.reserve free
 * (the sqlite store's disk; ClickHouse keeps its own). */
static int disk_room(struct ing *g)
{
	uint64_t free, want = g->s->o.reserve;

	if (!want || g->s->ch || (free = fsutil_free_bytes(g->s->o.data_dir)) >= want)
		return 0;
	snprintf(g->err, g->errlen,
		 "the disk of the data dir is full: %" PRIu64 " MiB free, less than the %" PRIu64
		 " MiB this server keeps free (--disk-reserve); ingest resumes once space is freed",
		 free >> 20, want >> 20);
	return -ENOSPC;
}

static int valid_key(const char *k)
{
	size_t n = strspn(k, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:-");

	return n >= 1 && n <= 128 && !k[n];
}

int pstore_ingest_ex(struct pstore *s, const struct pstore_label *series, size_t nseries,
		     const void *body, size_t len, struct pstore_ingest_info *info, char *errbuf,
		     size_t errlen)
{
	char dummy[8];
	struct ing g = {
	    .s = s, .err = errbuf ? errbuf : dummy, .errlen = errbuf ? errlen : sizeof(dummy)};
	struct palloc pa = {0};
	Perftools__Profiles__Profile *p = NULL;
	struct lpair *sp = NULL;
	uint8_t *plain = NULL;
	size_t nsp = 0, rows = 0;
	int err;

	if (info) {
		g.idem_key = info->key;
		memset(info, 0, sizeof(*info));
		info->key = g.idem_key;
	}
	g.err[0] = '\0';
	sp = calloc(PSTORE_MAX_SERIES_LABELS + 1, sizeof(*sp));
	if (!sp)
		return -ENOMEM;
	err = series_pairs(&g, series, nseries, sp, &nsp);
	if (!err && g.idem_key && !valid_key(g.idem_key))
		err = bad(&g, "the idempotency key is not 1-128 of [A-Za-z0-9._:-]");
	if (!err)
		err = disk_room(&g);
	if (!err)
		err = decode(&g, body, len, s->o.max_ingest_size, &p, &pa, &plain);
	free(plain);
	if (pa.plain) {
		budget_give(s, pa.plain);
		pa.charged -= pa.plain;
		pa.plain = 0;
	}
	if (!err) {
		g.p = p;
		err = validate_header(&g);
	}
	if (!err)
		err = validate_tables(&g);
	if (!err)
		err = validate_samples(&g);
	if (!err) {
		g.time = p->time_nanos ? p->time_nanos : clock_wall_ns();
		g.duration = p->duration_nanos;
		err = store(&g, sp, nsp, &rows);
	}
	if (err == -ERR_BADINPUT || err == -ERR_TOOBIG) {
		__atomic_fetch_add(&s->stats.ingest_rejected, 1, __ATOMIC_RELAXED);
	} else if (err) {
		__atomic_fetch_add(&s->stats.ingest_failed, 1, __ATOMIC_RELAXED);
		if (!g.err[0] && err == pstore_read_only(s))
			snprintf(g.err, g.errlen,
				 "the profile store is read-only (%s when it was opened or last "
				 "tried); queries answer, ingests are refused until it can write",
				 err_str(err));
		else if (!g.err[0] && err == -ENOSPC)
			snprintf(
			    g.err, g.errlen,
			    "the disk of the data dir is full: storing the profile failed (%s)",
			    err_str(err));
		else if (!g.err[0])
			snprintf(g.err, g.errlen, "storing the profile failed: %s", err_str(err));
	} else {
		__atomic_fetch_add(&s->stats.ingests, 1, __ATOMIC_RELAXED);
		__atomic_fetch_add(&s->stats.profile_rows, rows, __ATOMIC_RELAXED);
		__atomic_fetch_add(&s->stats.samples, p->n_sample, __ATOMIC_RELAXED);
		__atomic_fetch_add(&s->stats.truncated_stacks, g.truncated, __ATOMIC_RELAXED);
		if (info) {
			info->duplicate = g.duplicate;
			info->profiles = rows;
			info->samples = p->n_sample;
			info->time_ns = g.time;
			info->truncated = g.truncated;
		}
	}
	pa_release(&pa); /* P and everything it points at */
	free(g.maps.pairs);
	free(g.funcs.pairs);
	free(g.locs.pairs);
	free(g.loc_store);
	free(g.bids);
	free(g.kernel);
	free(g.sample_stack);
	free(g.sample_ls);
	u64map_free(&g.ls_seen);
	free(g.buf);
	free(sp);
	return err;
}

int pstore_ingest(struct pstore *s, const struct pstore_label *series, size_t nseries,
		  const void *body, size_t len, char *errbuf, size_t errlen)
{
	return pstore_ingest_ex(s, series, nseries, body, len, NULL, errbuf, errlen);
}
