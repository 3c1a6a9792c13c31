/*
 * profstore_int - what profstore.c (schema, connections, queries, retention) and
 * profstore_ingest.c (pprof decoding and the write path) share: the store object, the
 * varint and hash helpers, the key-to-id caches of the writer, and the sample blob format.
 *
 * Sample blob (profiles.samples), version 2: varint(0) varint(2) varint(scale), then one group
 * per label set of the profile, in label-set id order:
 *     varint(labelset_id - previous labelset_id)  varint(entries in the group)
 * and in each group one entry per stack, in stack id order:
 *     varint((stack_id - previous stack_id in the group) << 2 | c)
 *     [varint(zigzag(value / scale)) when c is 0; else value / scale is c, 1 to 3]
 * scale is the period when every value is a multiple of it (CPU profiles: counts), else 1.
 * A CPU sample of a small count whose stack is near its neighbour's costs one byte. On
 * bench/store.sh's data (12.2 M samples) the profiles table takes 1.49 bytes a sample (17.3 MiB),
 * where version 1 took 4.65 (54.2 MiB). Version 1, still read: varint(scale) with scale >= 1,
 * then per entry, sorted by stack: varint(stack delta) varint(labelset) varint(zigzag(value /
 * scale)). One row per profile keeps
 * the profiles index the only index touched per ingest. In SQL, the table-valued function
 * pstore_samples(blob, filter, group) turns a blob back into rows (timelines and series by
 * sample labels use it), and the aggregate pstore_merge(blob, filter, group) sums the blobs
 * of the selected profiles by stack: the GROUP BY of the merge, done in a hash table because
 * sqlite's GROUP BY sorts every sample row (0.56 s against 0.11 s for 550k sample rows).
 */
#ifndef FLEETSYM_PROFSTORE_INT_H
#define FLEETSYM_PROFSTORE_INT_H

#include "symbolizer/store/profstore.h"
#include "symbolizer/store/selector.h"

#include "lib/u64map.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdint.h>
#include <string.h>

/* last_seen columns are raised lazily: only when a use is this much newer than the stored
 * value. Retention therefore deletes dictionary rows (stacks, locations, label sets, label
 * values) only when last_seen is older than the cutoff minus this slack, which keeps every
 * row that a remaining profile may reference. */
#define PSTORE_SEEN_SLACK_NS ((int64_t)3600 * 1000000000)

/* The most the absolute values of a merged answer may add up to: any sum a renderer makes of
 * them stays far from int64's edge. More is -ERANGE, not a wrapped total. */
#define PSTORE_MAX_MAGNITUDE ((uint64_t)1 << 62)

/* How long an ingest's idempotency key is remembered: a retry after a lost reply comes
 * within the agent's backoff, minutes; an hour of keys of 1,000 hosts is ~20 MB. */
#define PSTORE_KEY_KEEP_NS ((int64_t)3600 * 1000000000)

#define PSTORE_MAX_READERS 32 /* open read connections; more callers wait for one */

/* ---- varints ---- */

static inline size_t pv_put(uint8_t *p, uint64_t v)
{
	size_t n = 0;

	while (v >= 0x80) {
		p[n++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	p[n++] = (uint8_t)v;
	return n;
}

/* Reads a varint from *P (before END); -1 when truncated or longer than 10 bytes. */
static inline int pv_get(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
	uint64_t r = 0;

	for (int shift = 0; shift < 70 && *p < end; shift += 7) {
		uint8_t b = *(*p)++;

		r |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80)) {
			*v = r;
			return 0;
		}
	}
	return -1;
}

static inline uint64_t pv_zig(int64_t v)
{
	return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
}

static inline int64_t pv_unzig(uint64_t v)
{
	return (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
}

/* ---- sample blobs (the format above) ---- */

/* Write the version 2 header with SCALE (>= 1) at P (room for 12 bytes); its length. */
static inline size_t pblob_header(uint8_t *p, int64_t scale)
{
	p[0] = 0;
	p[1] = 2;
	return 2 + pv_put(p + 2, (uint64_t)scale);
}

struct pblob_rd {
	const uint8_t *p, *end;
	int64_t scale;
	uint64_t stack, ls; /* unsigned: a damaged blob's deltas wrap, they don't overflow */
	uint64_t left;	    /* version 2: entries left in the current label set's group */
	int v1;
};

/* Start reading the blob P (N bytes). 0, or -1 when damaged. An empty blob has no entries. */
static inline int pblob_rd_init(struct pblob_rd *r, const uint8_t *p, size_t n)
{
	uint64_t v, ver;

	*r = (struct pblob_rd){.p = p, .end = p + n, .scale = 1};
	if (!n)
		return 0;
	if (pv_get(&r->p, r->end, &v))
		return -1;
	if (v) { /* version 1: the scale comes first */
		r->v1 = 1;
		r->scale = (int64_t)v;
		return 0;
	}
	if (pv_get(&r->p, r->end, &ver) || ver != 2 || pv_get(&r->p, r->end, &v) || !v)
		return -1;
	r->scale = (int64_t)v;
	return 0;
}

/* The next entry: 1 (and *STACK, *LS, *VALUE), 0 at the end, -1 when damaged. */
static inline int pblob_rd_next(struct pblob_rd *r, int64_t *stack, int64_t *ls, int64_t *value)
{
	uint64_t d, v = 1;
	int64_t n;

	if (r->v1) {
		uint64_t l;

		if (r->p >= r->end)
			return 0;
		if (pv_get(&r->p, r->end, &d) || pv_get(&r->p, r->end, &l) ||
		    pv_get(&r->p, r->end, &v))
			return -1;
		r->stack += d;
		*stack = (int64_t)r->stack;
		*ls = (int64_t)l;
		return __builtin_mul_overflow(pv_unzig(v), r->scale, value) ? -1 : 1;
	}
	while (!r->left) {
		if (r->p >= r->end)
			return 0;
		if (pv_get(&r->p, r->end, &d) || pv_get(&r->p, r->end, &r->left) || !r->left)
			return -1;
		r->ls += d;
		r->stack = 0;
	}
	if (pv_get(&r->p, r->end, &d) || (!(d & 3) && pv_get(&r->p, r->end, &v)))
		return -1;
	r->left--;
	r->stack += d >> 2;
	*stack = (int64_t)r->stack;
	*ls = (int64_t)r->ls;
	n = d & 3 ? (int64_t)(d & 3) : pv_unzig(v);
	return __builtin_mul_overflow(n, r->scale, value) ? -1 : 1;
}

/* 64-bit hash of a byte string (word at a time, good enough for hash tables and a DB index;
 * keys are compared in full after a hash match). */
static inline uint64_t pstore_hash(const void *data, size_t n)
{
	const uint8_t *p = data;
	uint64_t h = 0x9e3779b97f4a7c15ULL ^ (n * 0xff51afd7ed558ccdULL);

	while (n >= 8) {
		uint64_t w;

		memcpy(&w, p, 8);
		h = (h ^ w) * 0xc4ceb9fe1a85ec53ULL;
		h ^= h >> 31;
		p += 8;
		n -= 8;
	}
	if (n) {
		uint64_t w = 0;

		memcpy(&w, p, n);
		h = (h ^ w) * 0xc4ceb9fe1a85ec53ULL;
	}
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	return h;
}

/* ---- canonical label sets: name NUL value NUL ..., sorted by name ---- */

/* Calls FN for each pair of the canonical blob B (N bytes); stops on nonzero. -1 if damaged. */
int pstore_labels_each(const uint8_t *b, size_t n,
		       int (*fn)(void *ctx, const char *name, const char *value), void *ctx);

/* ---- the writer's key -> (id, last_seen) caches ---- */

struct kcache_ent {
	uint64_t hash;
	int64_t id;
	int64_t seen; /* last_seen as stored in the DB */
	uint8_t *key;
	uint32_t klen;
};

struct kcache {
	struct kcache_ent *tab; /* open addressing, power-of-two size; id 0 = empty */
	size_t cap, n;
	size_t bytes, max_bytes; /* keys + table; cleared when over max_bytes */
};

/* The entry of KEY (KLEN bytes, hash HASH), or NULL. KEY NULL: the entry of HASH, whatever its
 * key (for a cache whose ids are the hashes themselves; kcache_add() with KEY NULL keeps no
 * copy). */
struct kcache_ent *kcache_find(struct kcache *c, uint64_t hash, const void *key, size_t klen);
int kcache_add(struct kcache *c, uint64_t hash, const void *key, size_t klen, int64_t id,
	       int64_t seen);
void kcache_clear(struct kcache *c);

/* ---- label-set filters handed to pstore_samples() through sqlite3_bind_pointer ---- */

struct lsfilter {
	struct u64map *groups; /* group g (1-based) allows the label-set ids in groups[g - 1] */
	size_t ngroups;
};

#define LSFILTER_PTR_TYPE "fleetsym_lsfilter"

/* Register pstore_samples() and pstore_merge() on DB. */
int pstore_vtab_register(sqlite3 *db);

/* ---- query helpers (profstore.c) shared with the ClickHouse backend (chstore.c) ---- */

struct selection {
	struct lsfilter f;
	uint64_t masks[SELECTOR_MAX_MATCHERS]; /* sample-side matchers of group g = index + 1 */
	size_t nseries;
};

struct pairs {
	const char *names[PSTORE_MAX_SAMPLE_LABELS + PSTORE_MAX_SERIES_LABELS];
	const char *values[PSTORE_MAX_SAMPLE_LABELS + PSTORE_MAX_SERIES_LABELS];
	size_t n;
};

struct achunk {
	struct achunk *next;
	size_t used, size;
	uint8_t data[];
};

struct result_priv {
	struct pstore_result r; /* first: the public part */
	struct achunk *chunks;
	uint32_t *locidx;
};

/* A merge under way: the stacks, their location indexes, and the distinct locations grow
 * together in the result. */
struct merge {
	struct result_priv *rp;
	struct u64map locs;	       /* location id -> index into r->locs */
	size_t *offs;		       /* per stack: where its locations start in rp->locidx */
	size_t scap, ocap, lcap, icap; /* capacities of r->stacks, offs, r->locs, rp->locidx */
	size_t nidx;		       /* rp->locidx in use */
	uint64_t mag;		       /* sum of the stacks' absolute values */
};

/* Label pairs of a canonical blob (pstore_labels_each's callback pq_add_pair fills it). */
int pq_add_pair(void *ctx, const char *name, const char *value);
void pq_selection_free(struct selection *sl);
/* Series labels decide the matchers they name; the rest (*MASK) are left for sample labels.
 * 0 when a series-side matcher fails. */
int pq_series_matches(const struct selector *sel, const struct pairs *p, uint64_t *mask);
/* The 1-based group of sample-side MASK (0 for none), added on first sight; -E2BIG. */
int pq_group_of(struct selection *sl, uint64_t mask);
int pq_ls_matches(const struct selector *sel, uint64_t mask, const struct pairs *p);
/* Memory owned by the result (freed by pstore_result_free()). */
void *pq_arena_alloc(struct result_priv *rp, size_t n);
const char *pq_arena_str(struct result_priv *rp, const void *s, size_t n);
/* Append a stack of value V whose locations are the varint ids in P..END. */
int pq_merge_stack(struct merge *m, const uint8_t *p, const uint8_t *end, int64_t v);
/* Append a copy of S to L (*CAP its capacity). */
int pq_strings_add(struct pstore_strings *l, size_t *cap, const char *s);
/* The named frames blob P (N bytes) of a location into L. */
int pq_decode_frames(struct result_priv *rp, struct pstore_loc *l, const uint8_t *p, size_t n);

#define PSTORE_DEFAULT_MAX_STACKS  1000000
#define PSTORE_MAX_LISTED	   100000
#define PSTORE_MAX_TIMELINE_POINTS 11000

/* ---- the store ---- */

enum wstmt {
	W_LOC_FIND,
	W_LOC_INS,
	W_LOC_SEEN,
	W_STACK_FIND,
	W_STACK_INS,
	W_STACK_SEEN,
	W_LS_FIND,
	W_LS_INS,
	W_LS_SEEN,
	W_SERIES_FIND,
	W_SERIES_INS,
	W_SERIES_SEEN,
	W_LV_UPSERT,
	W_TYPE_FIND,
	W_TYPE_INS,
	W_KEY_INS,
	W_PROFILE_INS,
	W_COUNT_
};

struct ing;
struct chstore;

struct pstore {
	struct pstore_opts o;
	struct chstore *ch; /* the ClickHouse backend (chstore.h), or NULL: sqlite */
	char *path;

	/* writer: one connection, one transaction at a time */
	pthread_mutex_t wlock;
	sqlite3 *wdb; /* NULL while the store is read-only (ro_err says why) */
	sqlite3_stmt *wst[W_COUNT_];
	int ro_err;	  /* 0, or why the writer could not open (-ENOSPC, -EROFS, ...) */
	int ro_immutable; /* readers open the file immutable: read-only file system, no WAL */
	int64_t ro_tried; /* clock_mono_ms() of the last attempt to open it */
	struct kcache locs, stacks, lsets, series, lvals;
	/* ClickHouse's health as the writer saw it (clock_mono_ms(), atomics): when the send in
	 * flight began (0: none), and when a send last found it unreachable or slow */
	int64_t ch_send_ms, ch_down_ms;

	/* group commit (profstore_ingest.c): ingests waiting to be written, and whether one of
	 * their threads is writing them */
	pthread_mutex_t qlock;
	pthread_cond_t qcond;
	struct ing *qhead, **qtail;
	int qleader;

	/* readers: a pool of connections */
	pthread_mutex_t rlock;
	pthread_cond_t rfree;
	struct rconn *idle;
	int nreaders;

	/* background retention */
	pthread_t retain_thread;
	int retain_started;
	pthread_mutex_t stop_lock;
	pthread_cond_t stop_cond;
	int stopping;

	struct pstore_stats stats; /* updated with atomics */
	uint64_t decode_used;	   /* bytes of opts.decode_budget held now (atomics) */

	/* decode arena chunks kept for the next ingest (profstore_ingest.c) */
	pthread_mutex_t palock;
	struct pa_chunk *pa_pool;
	size_t pa_npool;
};

/* Free the kept decode arena chunks (pstore_close). */
void pstore_pa_pool_free(struct pstore *s);

/* Open the writer if the store is read-only and the last attempt is PSTORE_WRITER_RETRY_MS
 * old; 0 when there is a writer, else why not (-ENOSPC, -EROFS, ...). Writer lock. */
#define PSTORE_WRITER_RETRY_MS 2000
int pstore_writer_ready(struct pstore *s);

/* Forget every cached dictionary id (after a rollback: the rows may be gone). Writer lock. */
void pstore_drop_caches(struct pstore *s);

/* Translate and log a sqlite error of DB (WHAT names the operation); returns a negative
 * errno: -ENOSPC (disk full), -EBUSY, -EIO. */
int pstore_sqlite_err(sqlite3 *db, int rc, const char *what);

/* Open a connection to PATH with our pragmas and functions. FLAGS: PSTORE_CONNECT_CREATE
 * creates the file; PSTORE_CONNECT_IMMUTABLE opens it read-only as a file nobody changes
 * (sqlite's immutable=1: no -shm or locks, which a read-only file system cannot hold). */
#define PSTORE_CONNECT_CREATE	 1
#define PSTORE_CONNECT_IMMUTABLE 2
int pstore_connect(const char *path, int flags, sqlite3 **out);

#endif
