/*
 * profstore - schema, connections, the pstore_samples() table-valued function, selection,
 * queries and retention. The write path (pprof decoding) is in profstore_ingest.c.
 *
 * Schema (PRAGMA user_version 1):
 *   series(id, hash, labels, first_seen, last_seen)      canonical label sets; first/last exact
 *   types(id, name, unit)                                 sample types ("cpu"/"nanoseconds")
 *   profiles(id, series_id, type_id, time, duration, period, nsamples, total, samples)
 *       index (series_id, time, type_id): "these series, this window, this type" is one range
 *       scan per series; (time) for retention. samples = the packed blob (profstore_int.h),
 *       total = its sum, so a timeline without sample-label matchers never opens a blob.
 *   stacks(id, hash, locs, last_seen)                     locs = varint location ids, leaf first
 *   locations(id, hash, key, build_id, file_off, mapping_file, kernel, frames, last_seen)
 *   labelsets(id, hash, labels, last_seen)                per-sample label sets (pid, comm, ...)
 *   label_values(name, value, sample, last_seen)          for /labels and /labels/NAME/values
 * Dictionary tables are found by hash (indexed) and compared in full. last_seen is raised
 * lazily (PSTORE_SEEN_SLACK_NS), which is what lets retention delete orphans without
 * scanning the samples of the profiles that remain.
 *
 * Connections: one writer under a mutex (sqlite has one writer anyway), a pool of readers
 * (WAL lets them run beside the writer). synchronous=FULL: with WAL, NORMAL survives a crash
 * of the process but may lose the last commits on power loss, and an acknowledged ingest
 * must be durable.
 */
#include "symbolizer/store/profstore_int.h"
#include "symbolizer/store/chstore.h"

#include "lib/clock.h"
#include "lib/deadline.h"

#include "lib/err.h"
#include "lib/vec.h"
#include "lib/u64map.h"
#include "lib/log.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <limits.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_RETENTION_S (7 * 86400)
#define DEFAULT_MAX_INGEST  ((size_t)64 << 20)
#define DEFAULT_MAX_STACKS  1000000
#define RETAIN_BATCH	    5000
#define MAX_TIMELINE_POINTS 11000
#define MAX_LISTED	    100000 /* label values, series in one answer */
#define CACHE_BYTES_STACKS  ((size_t)256 << 20)
#define CACHE_BYTES_OTHER   ((size_t)64 << 20)
#define SCHEMA_VERSION	    1
#define PROGRESS_OPS	    10000

struct rconn {
	sqlite3 *db;
	int immutable; /* PSTORE_CONNECT_IMMUTABLE: closed after use, never pooled */
	struct rconn *next;
};

int pstore_sqlite_err(sqlite3 *db, int rc, const char *what)
{
	int prim = rc & 0xff;

	/* pstore_merge() reports sums past 64 bits as SQLITE_RANGE, which sqlite words otherwise */
	log_msg(FS_LOG_ERROR, "profile store: %s: %s (%d)", what,
		prim == SQLITE_RANGE ? "sample values add up past 64 bits"
		: db		     ? sqlite3_errmsg(db)
				     : "",
		rc);
	if (prim == SQLITE_FULL)
		return -ENOSPC;
	if (prim == SQLITE_READONLY)
		return -EROFS;
	if (prim == SQLITE_BUSY || prim == SQLITE_LOCKED)
		return -EBUSY;
	if (prim == SQLITE_NOMEM)
		return -ENOMEM;
	if (prim == SQLITE_INTERRUPT)
		return -ETIME; /* the caller's deadline (lib/deadline.h) passed */
	if (prim == SQLITE_TOOBIG)
		return -E2BIG;
	if (prim == SQLITE_RANGE)
		return -ERANGE; /* pstore_merge(): values past 64 bits */
	return -EIO;
}

/* ---- kcache ----
 * Not a lib/u64map: the keys are byte strings (stack, location, label-set blobs) compared in
 * full, and each entry carries the row's last_seen besides its id. */

struct kcache_ent *kcache_find(struct kcache *c, uint64_t hash, const void *key, size_t klen)
{
	size_t mask = c->cap - 1;

	if (!c->cap)
		return NULL;
	for (size_t i = hash & mask;; i = (i + 1) & mask) {
		struct kcache_ent *e = &c->tab[i];

		if (!e->id)
			return NULL;
		if (e->hash == hash && (!key || (e->klen == klen && !memcmp(e->key, key, klen))))
			return e;
	}
}

static int kcache_grow(struct kcache *c)
{
	size_t ncap = c->cap ? c->cap * 2 : 1024;
	struct kcache_ent *nt = calloc(ncap, sizeof(*nt));

	if (!nt)
		return -ENOMEM;
	for (size_t i = 0; i < c->cap; i++) {
		struct kcache_ent *e = &c->tab[i];
		size_t j;

		if (!e->id)
			continue;
		for (j = e->hash & (ncap - 1); nt[j].id; j = (j + 1) & (ncap - 1))
			;
		nt[j] = *e;
	}
	c->bytes += (ncap - c->cap) * sizeof(*nt);
	free(c->tab);
	c->tab = nt;
	c->cap = ncap;
	return 0;
}

int kcache_add(struct kcache *c, uint64_t hash, const void *key, size_t klen, int64_t id,
	       int64_t seen)
{
	struct kcache_ent *e;
	size_t i;

	if (c->bytes + klen + sizeof(*e) > c->max_bytes)
		kcache_clear(c); /* bounded: start over rather than grow past the cap */
	if ((c->n + 1) * 4 > c->cap * 3 && kcache_grow(c))
		return 0; /* a cache that cannot grow is only slower */
	for (i = hash & (c->cap - 1); c->tab[i].id; i = (i + 1) & (c->cap - 1))
		;
	e = &c->tab[i];
	e->key = NULL;
	if (key && (e->key = malloc(klen ? klen : 1)) == NULL)
		return 0;
	if (key)
		memcpy(e->key, key, klen);
	e->klen = (uint32_t)klen;
	e->hash = hash;
	e->id = id;
	e->seen = seen;
	c->n++;
	c->bytes += klen + 16;
	return 0;
}

void kcache_clear(struct kcache *c)
{
	for (size_t i = 0; i < c->cap; i++)
		free(c->tab[i].key);
	free(c->tab);
	c->tab = NULL;
	c->cap = c->n = c->bytes = 0;
}

/* ---- canonical label blobs ---- */

int pstore_labels_each(const uint8_t *b, size_t n,
		       int (*fn)(void *ctx, const char *name, const char *value), void *ctx)
{
	const uint8_t *p = b, *end = b + n;

	while (p < end) {
		const uint8_t *name = p, *value, *z = memchr(p, 0, (size_t)(end - p));

		if (!z)
			return -1;
		value = z + 1;
		z = value < end ? memchr(value, 0, (size_t)(end - value)) : NULL;
		if (!z)
			return -1;
		p = z + 1;
		if (fn(ctx, (const char *)name, (const char *)value))
			return 0;
	}
	return 0;
}

/* ---- pstore_samples(blob, filter, group): the blob back as rows ---- */

struct sv_cursor {
	sqlite3_vtab_cursor base;
	uint8_t *buf;
	size_t cap;
	struct pblob_rd rd;
	const struct u64map *allow;
	int64_t stack, ls, value, rowid;
	int eof;
};

static int sv_connect(sqlite3 *db, void *aux, int argc, const char *const *argv, sqlite3_vtab **pp,
		      char **err)
{
	int rc = sqlite3_declare_vtab(db, "CREATE TABLE x(stack INTEGER, labelset INTEGER, "
					  "value INTEGER, samples HIDDEN, filter HIDDEN, "
					  "grp HIDDEN)");

	if (rc != SQLITE_OK)
		return rc;
	*pp = sqlite3_malloc(sizeof(**pp));
	if (!*pp)
		return SQLITE_NOMEM;
	memset(*pp, 0, sizeof(**pp));
	return SQLITE_OK;
}

static int sv_disconnect(sqlite3_vtab *vt)
{
	sqlite3_free(vt);
	return SQLITE_OK;
}

static int sv_best_index(sqlite3_vtab *vt, sqlite3_index_info *ii)
{
	int at[3] = {-1, -1, -1}, n = 0, mask = 0;

	for (int i = 0; i < ii->nConstraint; i++) {
		const struct sqlite3_index_constraint *c = &ii->aConstraint[i];

		if (c->iColumn < 3 || c->op != SQLITE_INDEX_CONSTRAINT_EQ)
			continue;
		if (!c->usable)
			return SQLITE_CONSTRAINT;
		at[c->iColumn - 3] = i;
	}
	if (at[0] < 0)
		return SQLITE_CONSTRAINT; /* no blob, no rows */
	for (int k = 0; k < 3; k++)
		if (at[k] >= 0) {
			ii->aConstraintUsage[at[k]].argvIndex = ++n;
			ii->aConstraintUsage[at[k]].omit = 1;
			mask |= 1 << k;
		}
	ii->idxNum = mask;
	ii->estimatedCost = 100;
	ii->estimatedRows = 1000;
	return SQLITE_OK;
}

static int sv_open(sqlite3_vtab *vt, sqlite3_vtab_cursor **pc)
{
	struct sv_cursor *c = sqlite3_malloc(sizeof(*c));

	if (!c)
		return SQLITE_NOMEM;
	memset(c, 0, sizeof(*c));
	*pc = &c->base;
	return SQLITE_OK;
}

static int sv_close(sqlite3_vtab_cursor *cur)
{
	struct sv_cursor *c = (struct sv_cursor *)cur;

	free(c->buf);
	sqlite3_free(c);
	return SQLITE_OK;
}

static int sv_next(sqlite3_vtab_cursor *cur)
{
	struct sv_cursor *c = (struct sv_cursor *)cur;
	int rc;

	for (;;) {
		rc = pblob_rd_next(&c->rd, &c->stack, &c->ls, &c->value);
		if (rc <= 0) {
			c->eof = 1;
			return rc ? SQLITE_CORRUPT : SQLITE_OK;
		}
		c->rowid++;
		if (!c->allow || u64map_has(c->allow, (uint64_t)c->ls))
			return SQLITE_OK;
	}
}

static int sv_filter(sqlite3_vtab_cursor *cur, int idx, const char *idxstr, int argc,
		     sqlite3_value **argv)
{
	struct sv_cursor *c = (struct sv_cursor *)cur;
	const struct lsfilter *f = NULL;
	int64_t grp = 0;
	int j = 0, n = 0;
	const void *b = NULL;

	if (idx & 1) {
		b = sqlite3_value_blob(argv[j]);
		n = sqlite3_value_bytes(argv[j++]);
	}
	if (idx & 2)
		f = sqlite3_value_pointer(argv[j++], LSFILTER_PTR_TYPE);
	if (idx & 4)
		grp = sqlite3_value_int64(argv[j++]);
	c->allow = f && grp > 0 && (size_t)grp <= f->ngroups ? &f->groups[grp - 1] : NULL;
	/* the argument's memory is only ours during this call */
	if ((size_t)n > c->cap) {
		uint8_t *nb = realloc(c->buf, (size_t)n);

		if (!nb)
			return SQLITE_NOMEM;
		c->buf = nb;
		c->cap = (size_t)n;
	}
	if (n)
		memcpy(c->buf, b, (size_t)n);
	c->rowid = 0;
	c->eof = 0;
	if (pblob_rd_init(&c->rd, c->buf, (size_t)n)) {
		c->eof = 1;
		return SQLITE_CORRUPT;
	}
	return sv_next(cur);
}

static int sv_eof(sqlite3_vtab_cursor *cur)
{
	return ((struct sv_cursor *)cur)->eof;
}

static int sv_column(sqlite3_vtab_cursor *cur, sqlite3_context *ctx, int col)
{
	struct sv_cursor *c = (struct sv_cursor *)cur;

	switch (col) {
	case 0: sqlite3_result_int64(ctx, c->stack); break;
	case 1: sqlite3_result_int64(ctx, c->ls); break;
	case 2: sqlite3_result_int64(ctx, c->value); break;
	default: sqlite3_result_null(ctx);
	}
	return SQLITE_OK;
}

static int sv_rowid(sqlite3_vtab_cursor *cur, sqlite_int64 *rowid)
{
	*rowid = ((struct sv_cursor *)cur)->rowid;
	return SQLITE_OK;
}

static sqlite3_module sv_module = {
    .xConnect = sv_connect,
    .xBestIndex = sv_best_index,
    .xDisconnect = sv_disconnect,
    .xOpen = sv_open,
    .xClose = sv_close,
    .xFilter = sv_filter,
    .xNext = sv_next,
    .xEof = sv_eof,
    .xColumn = sv_column,
    .xRowid = sv_rowid,
};

/* ---- pstore_merge(blob, filter, group): sum by stack over many blobs, in a hash table ---- */

#define MERGE_MAX_STACKS (64u << 20) /* distinct stacks in one merge */

struct merge_acc {
	int64_t *ids, *vals; /* open addressing; id 0 is empty (stack ids start at 1) */
	size_t cap, n;
	int err;
};

static int merge_add(struct merge_acc *a, int64_t id, int64_t v)
{
	size_t j;

	if ((a->n + 1) * 2 > a->cap) {
		size_t ncap = a->cap ? a->cap * 2 : 4096;
		int64_t *ni, *nv;

		if (ncap > 2 * (size_t)MERGE_MAX_STACKS)
			return -E2BIG;
		ni = calloc(ncap, sizeof(*ni));
		nv = calloc(ncap, sizeof(*nv));
		if (!ni || !nv) {
			free(ni);
			free(nv);
			return -ENOMEM;
		}
		for (size_t i = 0; i < a->cap; i++) {
			if (!a->ids[i])
				continue;
			for (j = (uint64_t)a->ids[i] * 0x9e3779b97f4a7c15ULL >> 17 & (ncap - 1);
			     ni[j]; j = (j + 1) & (ncap - 1))
				;
			ni[j] = a->ids[i];
			nv[j] = a->vals[i];
		}
		free(a->ids);
		free(a->vals);
		a->ids = ni;
		a->vals = nv;
		a->cap = ncap;
	}
	for (j = (uint64_t)id * 0x9e3779b97f4a7c15ULL >> 17 & (a->cap - 1); a->ids[j];
	     j = (j + 1) & (a->cap - 1))
		if (a->ids[j] == id)
			return __builtin_add_overflow(a->vals[j], v, &a->vals[j]) ? -ERANGE : 0;
	a->ids[j] = id;
	a->vals[j] = v;
	a->n++;
	return 0;
}

static void merge_step(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
	struct merge_acc *a = sqlite3_aggregate_context(ctx, sizeof(*a));
	const uint8_t *p = sqlite3_value_blob(argv[0]);
	const struct lsfilter *f = sqlite3_value_pointer(argv[1], LSFILTER_PTR_TYPE);
	int64_t grp = sqlite3_value_int64(argv[2]), stack, ls, v;
	const struct u64map *allow;
	struct pblob_rd rd;
	int rc;

	if (!a || a->err || !p)
		return;
	allow = f && grp > 0 && (size_t)grp <= f->ngroups ? &f->groups[grp - 1] : NULL;
	if (pblob_rd_init(&rd, p, (size_t)sqlite3_value_bytes(argv[0]))) {
		a->err = -EIO;
		return;
	}
	while (!a->err && (rc = pblob_rd_next(&rd, &stack, &ls, &v)) != 0) {
		if (rc < 0)
			a->err = -EIO;
		else if (!allow || u64map_has(allow, (uint64_t)ls))
			a->err = merge_add(a, stack, v);
	}
}

/* The merged (stack, value) pairs as varint(stack) varint(zigzag(value)), unordered. */
static void merge_final(sqlite3_context *ctx)
{
	struct merge_acc *a = sqlite3_aggregate_context(ctx, 0);
	uint8_t *buf;
	size_t n = 0;

	if (a && a->err) {
		sqlite3_result_error_code(ctx, a->err == -ENOMEM   ? SQLITE_NOMEM
					       : a->err == -EIO	   ? SQLITE_CORRUPT
					       : a->err == -ERANGE ? SQLITE_RANGE
								   : SQLITE_TOOBIG);
		goto out;
	}
	if (!a || !a->n) {
		sqlite3_result_null(ctx);
		goto out;
	}
	buf = malloc(a->n * 20 + 1);
	if (!buf) {
		sqlite3_result_error_nomem(ctx);
		goto out;
	}
	for (size_t i = 0; i < a->cap; i++)
		if (a->ids[i]) {
			n += pv_put(buf + n, (uint64_t)a->ids[i]);
			n += pv_put(buf + n, pv_zig(a->vals[i]));
		}
	sqlite3_result_blob64(ctx, buf, n, free);
out:
	if (a) {
		free(a->ids);
		free(a->vals);
		memset(a, 0, sizeof(*a));
	}
}

int pstore_vtab_register(sqlite3 *db)
{
	int rc = sqlite3_create_module(db, "pstore_samples", &sv_module, NULL);

	if (rc == SQLITE_OK)
		rc = sqlite3_create_function(db, "pstore_merge", 3, SQLITE_UTF8, NULL, NULL,
					     merge_step, merge_final);
	return rc;
}

/* ---- connections and schema ---- */

static const char schema[] =
    "CREATE TABLE IF NOT EXISTS series(id INTEGER PRIMARY KEY, hash INTEGER NOT NULL, "
    " labels BLOB NOT NULL, first_seen INTEGER NOT NULL, last_seen INTEGER NOT NULL);"
    "CREATE INDEX IF NOT EXISTS series_hash ON series(hash);"
    "CREATE TABLE IF NOT EXISTS types(id INTEGER PRIMARY KEY, name TEXT NOT NULL, "
    " unit TEXT NOT NULL, UNIQUE(name, unit));"
    "CREATE TABLE IF NOT EXISTS profiles(id INTEGER PRIMARY KEY, series_id INTEGER NOT NULL, "
    " type_id INTEGER NOT NULL, time INTEGER NOT NULL, duration INTEGER NOT NULL, "
    " period INTEGER NOT NULL, nsamples INTEGER NOT NULL, total INTEGER NOT NULL, "
    " samples BLOB NOT NULL);"
    "CREATE INDEX IF NOT EXISTS profiles_series ON profiles(series_id, time, type_id);"
    "CREATE INDEX IF NOT EXISTS profiles_time ON profiles(time);"
    "CREATE TABLE IF NOT EXISTS stacks(id INTEGER PRIMARY KEY, hash INTEGER NOT NULL, "
    " locs BLOB NOT NULL, last_seen INTEGER NOT NULL);"
    "CREATE INDEX IF NOT EXISTS stacks_hash ON stacks(hash);"
    "CREATE TABLE IF NOT EXISTS locations(id INTEGER PRIMARY KEY, hash INTEGER NOT NULL, "
    " key BLOB NOT NULL, build_id TEXT NOT NULL, file_off INTEGER NOT NULL, "
    " mapping_file TEXT NOT NULL, kernel INTEGER NOT NULL, frames BLOB, "
    " last_seen INTEGER NOT NULL);"
    "CREATE INDEX IF NOT EXISTS locations_hash ON locations(hash);"
    "CREATE TABLE IF NOT EXISTS labelsets(id INTEGER PRIMARY KEY, hash INTEGER NOT NULL, "
    " labels BLOB NOT NULL, last_seen INTEGER NOT NULL);"
    "CREATE INDEX IF NOT EXISTS labelsets_hash ON labelsets(hash);"
    "CREATE TABLE IF NOT EXISTS label_values(name TEXT NOT NULL, value TEXT NOT NULL, "
    " sample INTEGER NOT NULL, last_seen INTEGER NOT NULL, "
    " PRIMARY KEY(name, value, sample)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS ingest_keys(key TEXT PRIMARY KEY, time INTEGER NOT NULL) "
    " WITHOUT ROWID;";

static const char *const wsql[W_COUNT_] = {
    [W_LOC_FIND] = "SELECT id, last_seen, key FROM locations WHERE hash = ?1",
    [W_LOC_INS] = "INSERT INTO locations(hash, key, last_seen, build_id, file_off, "
		  "mapping_file, kernel, frames) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    [W_LOC_SEEN] = "UPDATE locations SET last_seen = ?2 WHERE id = ?1 AND last_seen < ?2",
    [W_STACK_FIND] = "SELECT id, last_seen, locs FROM stacks WHERE hash = ?1",
    [W_STACK_INS] = "INSERT INTO stacks(hash, locs, last_seen) VALUES(?1, ?2, ?3)",
    [W_STACK_SEEN] = "UPDATE stacks SET last_seen = ?2 WHERE id = ?1 AND last_seen < ?2",
    [W_LS_FIND] = "SELECT id, last_seen, labels FROM labelsets WHERE hash = ?1",
    [W_LS_INS] = "INSERT INTO labelsets(hash, labels, last_seen) VALUES(?1, ?2, ?3)",
    [W_LS_SEEN] = "UPDATE labelsets SET last_seen = ?2 WHERE id = ?1 AND last_seen < ?2",
    [W_SERIES_FIND] = "SELECT id, last_seen, labels FROM series WHERE hash = ?1",
    [W_SERIES_INS] = "INSERT INTO series(hash, labels, last_seen, first_seen) "
		     "VALUES(?1, ?2, ?3, ?3)",
    [W_SERIES_SEEN] = "UPDATE series SET first_seen = min(first_seen, ?2), "
		      "last_seen = max(last_seen, ?2) WHERE id = ?1",
    [W_LV_UPSERT] = "INSERT INTO label_values(name, value, sample, last_seen) "
		    "VALUES(?1, ?2, ?3, ?4) ON CONFLICT(name, value, sample) DO UPDATE "
		    "SET last_seen = max(last_seen, excluded.last_seen)",
    [W_TYPE_FIND] = "SELECT id FROM types WHERE name = ?1 AND unit = ?2",
    [W_TYPE_INS] = "INSERT OR IGNORE INTO types(name, unit) VALUES(?1, ?2)",
    [W_KEY_INS] = "INSERT INTO ingest_keys(key, time) VALUES(?1, ?2) ON CONFLICT DO NOTHING",
    [W_PROFILE_INS] = "INSERT INTO profiles(series_id, type_id, time, duration, period, "
		      "nsamples, total, samples) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
};

/* Whether DB has no page yet (a new file): reading page_count writes nothing. */
static int db_is_empty(sqlite3 *db)
{
	sqlite3_stmt *st;
	int n = -1;

	if (sqlite3_prepare_v2(db, "PRAGMA page_count", -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return n == 0;
}

/* "file:PATH?immutable=1" with PATH's URI specials escaped; NULL without memory. */
static char *immutable_uri(const char *path)
{
	static const char tail[] = "?immutable=1";
	size_t n = strlen(path);
	char *u = malloc(5 + 3 * n + sizeof(tail)), *p = u;

	if (!u)
		return NULL;
	p += sprintf(p, "file:");
	for (; *path; path++)
		p += strchr("%?#", *path) ? sprintf(p, "%%%02X", (unsigned char)*path)
					  : (*p = *path, 1);
	memcpy(p, tail, sizeof(tail));
	return u;
}

int pstore_connect(const char *path, int cflags, sqlite3 **out)
{
	static const char pragmas[] = "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; "
				      "PRAGMA temp_store=MEMORY; PRAGMA cache_size=-65536; "
				      "PRAGMA foreign_keys=OFF;";
	int create = cflags & PSTORE_CONNECT_CREATE, immutable = cflags & PSTORE_CONNECT_IMMUTABLE;
	int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | (create ? SQLITE_OPEN_CREATE : 0);
	char *uri = NULL;
	sqlite3 *db = NULL;
	int rc, err;

	*out = NULL;
	if (immutable) {
		uri = immutable_uri(path);
		if (!uri)
			return -ENOMEM;
		flags = SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_URI;
	}
	rc = sqlite3_open_v2(uri ? uri : path, &db, flags, NULL);
	free(uri);
	if (rc != SQLITE_OK) {
		err = pstore_sqlite_err(db, rc, path);
		sqlite3_close(db);
		return err;
	}
	sqlite3_busy_timeout(db, 10000);
	sqlite3_extended_result_codes(db, 1);
	/* incremental vacuum must be chosen before the first table exists; setting it on an
	 * existing database writes, which fails on a full disk */
	rc = sqlite3_exec(db, create && db_is_empty(db) ? "PRAGMA auto_vacuum=INCREMENTAL;" : "",
			  NULL, NULL, NULL);
	if (rc == SQLITE_OK) /* an immutable file keeps its journal mode: it cannot be set */
		rc = sqlite3_exec(db,
				  pragmas + (immutable ? strlen("PRAGMA journal_mode=WAL; ") : 0),
				  NULL, NULL, NULL);
	if (rc == SQLITE_OK)
		rc = pstore_vtab_register(db);
	if (rc != SQLITE_OK) {
		err = pstore_sqlite_err(db, rc, "connection setup");
		sqlite3_close(db);
		return err;
	}
	*out = db;
	return 0;
}

static int open_writer(struct pstore *s)
{
	sqlite3_stmt *st;
	int rc, err, version = 0;

	err = pstore_connect(s->path, PSTORE_CONNECT_CREATE, &s->wdb);
	if (err)
		return err;
	rc = sqlite3_prepare_v2(s->wdb, "PRAGMA user_version", -1, &st, NULL);
	if (rc == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
		version = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	if (version > SCHEMA_VERSION) {
		log_msg(FS_LOG_ERROR, "profile store %s has schema version %d; this build knows %d",
			s->path, version, SCHEMA_VERSION);
		return -ERR_BADINPUT;
	}
	/* sqlite opens a file it may not write (read-only file system or file) read-only */
	if (sqlite3_db_readonly(s->wdb, "main") == 1) {
		log_msg(FS_LOG_WARN, "profile store %s: the file cannot be written", s->path);
		return -EROFS;
	}
	/* CREATE ... IF NOT EXISTS of what exists writes nothing, so an existing store opens on a
	 * full disk */
	rc = sqlite3_exec(s->wdb, schema, NULL, NULL, NULL);
	if (rc == SQLITE_OK && version != SCHEMA_VERSION)
		rc = sqlite3_exec(s->wdb, "PRAGMA user_version=1", NULL, NULL, NULL);
	if (rc != SQLITE_OK)
		return pstore_sqlite_err(s->wdb, rc, "schema");
	for (int i = 0; i < W_COUNT_; i++) {
		rc = sqlite3_prepare_v3(s->wdb, wsql[i], -1, SQLITE_PREPARE_PERSISTENT, &s->wst[i],
					NULL);
		if (rc != SQLITE_OK)
			return pstore_sqlite_err(s->wdb, rc, wsql[i]);
	}
	return 0;
}

static void close_writer(struct pstore *s)
{
	for (int i = 0; i < W_COUNT_; i++) {
		sqlite3_finalize(s->wst[i]);
		s->wst[i] = NULL;
	}
	sqlite3_close(s->wdb);
	s->wdb = NULL;
}

/* Whether open_writer()'s ERR leaves a store that still serves reads: the disk is full, or
 * the file system or the file is read-only (sqlite says "cannot open" when it cannot make the
 * -shm file there). */
static int read_only_cause(const struct pstore *s, int err)
{
	struct statvfs v;

	if (err == -ENOSPC || err == -EROFS || err == -EACCES || err == -EPERM)
		return 1;
	return err && statvfs(s->o.data_dir, &v) == 0 && (v.f_flag & ST_RDONLY);
}

/* Readers of a store on a read-only file system without a WAL to replay open it immutable:
 * sqlite cannot make the -shm file a WAL database otherwise needs. */
static int readers_immutable(const struct pstore *s)
{
	struct statvfs v;
	char wal[PATH_MAX];

	if (statvfs(s->o.data_dir, &v) != 0 || !(v.f_flag & ST_RDONLY))
		return 0;
	if (snprintf(wal, sizeof(wal), "%s-wal", s->path) >= (int)sizeof(wal))
		return 0;
	return access(wal, F_OK) != 0;
}

int pstore_writer_ready(struct pstore *s)
{
	int64_t now;
	int err;

	if (s->wdb)
		return 0;
	now = clock_mono_ms();
	if (now - s->ro_tried < PSTORE_WRITER_RETRY_MS)
		return s->ro_err;
	s->ro_tried = now;
	err = open_writer(s);
	if (err) {
		close_writer(s);
		if (err == -EIO && read_only_cause(s, err))
			err = -EROFS;
		__atomic_store_n(&s->ro_err, err, __ATOMIC_RELAXED);
		return err;
	}
	__atomic_store_n(&s->ro_err, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&s->ro_immutable, 0, __ATOMIC_RELAXED);
	log_msg(FS_LOG_WARN, "event=store_writable path=%s: the profile store takes ingests again",
		s->path);
	return 0;
}

int pstore_read_only(const struct pstore *s)
{
	return __atomic_load_n(&s->ro_err, __ATOMIC_RELAXED);
}

static void *retain_main(void *arg);

int pstore_open(const struct pstore_opts *opts, struct pstore **out)
{
	struct pstore *s;
	int err;

	*out = NULL;
	if (!opts || !opts->data_dir)
		return -EINVAL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->o = *opts;
	if (s->o.retention_s <= 0)
		s->o.retention_s = DEFAULT_RETENTION_S;
	if (!s->o.max_ingest_size)
		s->o.max_ingest_size = DEFAULT_MAX_INGEST;
	s->locs.max_bytes = s->lsets.max_bytes = s->series.max_bytes = s->lvals.max_bytes =
	    CACHE_BYTES_OTHER;
	s->stacks.max_bytes = CACHE_BYTES_STACKS;
	pthread_mutex_init(&s->wlock, NULL);
	pthread_mutex_init(&s->qlock, NULL);
	pthread_mutex_init(&s->palock, NULL);
	pthread_cond_init(&s->qcond, NULL);
	s->qtail = &s->qhead;
	pthread_mutex_init(&s->rlock, NULL);
	pthread_cond_init(&s->rfree, NULL);
	pthread_mutex_init(&s->stop_lock, NULL);
	pthread_cond_init(&s->stop_cond, NULL);
	if (asprintf(&s->path, "%s/profiles.db", opts->data_dir) < 0) {
		s->path = NULL;
		pstore_close(s);
		return -ENOMEM;
	}
	if (opts->store_url && !chstore_is_url(opts->store_url) &&
	    strcmp(opts->store_url, "sqlite:") != 0) {
		pstore_close(s);
		return -EINVAL;
	}
	if (chstore_is_url(opts->store_url)) {
		err = chstore_open(opts->store_url, opts->store_auth_file, &s->ch);
	} else if (mkdir(opts->data_dir, 0755) < 0 && errno != EEXIST) {
		err = -errno;
		pstore_close(s);
		return err;
	} else {
		err = open_writer(s);
		if (read_only_cause(s, err) && access(s->path, R_OK) == 0) {
			err = err == -EIO ? -EROFS : err;
			/* serve what is stored; ingest retries the writer (pstore_writer_ready) */
			log_msg(FS_LOG_WARN,
				"event=store_read_only path=%s reason=\"%s\": the profile store "
				"answers queries and refuses ingests until it can write",
				s->path, err_str(err));
			close_writer(s);
			s->ro_err = err;
			s->ro_immutable = readers_immutable(s);
			s->ro_tried = clock_mono_ms();
			err = 0;
		}
	}
	if (!err && s->o.retain_interval_s > 0) {
		err = -pthread_create(&s->retain_thread, NULL, retain_main, s);
		s->retain_started = !err;
	}
	if (err) {
		pstore_close(s);
		return err;
	}
	*out = s;
	return 0;
}

void pstore_close(struct pstore *s)
{
	if (!s)
		return;
	if (s->retain_started) {
		pthread_mutex_lock(&s->stop_lock);
		s->stopping = 1;
		pthread_cond_broadcast(&s->stop_cond);
		pthread_mutex_unlock(&s->stop_lock);
		pthread_join(s->retain_thread, NULL);
	}
	while (s->idle) {
		struct rconn *c = s->idle;

		s->idle = c->next;
		sqlite3_close(c->db);
		free(c);
	}
	close_writer(s);
	chstore_close(s->ch);
	pstore_drop_caches(s);
	pstore_pa_pool_free(s);
	pthread_mutex_destroy(&s->wlock);
	pthread_mutex_destroy(&s->qlock);
	pthread_mutex_destroy(&s->palock);
	pthread_cond_destroy(&s->qcond);
	pthread_mutex_destroy(&s->rlock);
	pthread_cond_destroy(&s->rfree);
	pthread_mutex_destroy(&s->stop_lock);
	pthread_cond_destroy(&s->stop_cond);
	free(s->path);
	free(s);
}

/* A reader's statements stop (SQLITE_INTERRUPT, -ETIME) once the calling request's deadline
 * has passed; checked every PROGRESS_OPS virtual machine steps. */
static int past_deadline(void *unused)
{
	return deadline_passed();
}

/* A reader connection that is not kept: closed, and its place in the pool given back. */
static void reader_drop(struct pstore *s, struct rconn *c)
{
	if (c)
		sqlite3_close(c->db);
	free(c);
	pthread_mutex_lock(&s->rlock);
	s->nreaders--;
	pthread_cond_signal(&s->rfree);
	pthread_mutex_unlock(&s->rlock);
}

static int reader_get(struct pstore *s, struct rconn **out)
{
	struct rconn *c = NULL;
	int err;

	pthread_mutex_lock(&s->rlock);
	while (!s->idle && s->nreaders >= PSTORE_MAX_READERS)
		pthread_cond_wait(&s->rfree, &s->rlock);
	if (s->idle) {
		c = s->idle;
		s->idle = c->next;
	} else {
		s->nreaders++;
	}
	pthread_mutex_unlock(&s->rlock);
	if (c) {
		*out = c;
		return 0;
	}
	c = calloc(1, sizeof(*c));
	if (c)
		c->immutable = __atomic_load_n(&s->ro_immutable, __ATOMIC_RELAXED);
	err = c ? pstore_connect(s->path, c->immutable ? PSTORE_CONNECT_IMMUTABLE : 0, &c->db)
		: -ENOMEM;
	if (!err)
		sqlite3_progress_handler(c->db, PROGRESS_OPS, past_deadline, NULL);
	if (!err && sqlite3_exec(c->db,
				 "CREATE TEMP TABLE q_series(id INTEGER PRIMARY KEY, "
				 "grp INTEGER NOT NULL)",
				 NULL, NULL, NULL) != SQLITE_OK)
		err = pstore_sqlite_err(c->db, SQLITE_ERROR, "temp table");
	if (err) {
		reader_drop(s, c);
		return err;
	}
	*out = c;
	return 0;
}

static void reader_put(struct pstore *s, struct rconn *c)
{
	if (!c)
		return;
	if (c->immutable) {
		/* not kept: the store may be writable by the next query, and then it changes */
		reader_drop(s, c);
		return;
	}
	pthread_mutex_lock(&s->rlock);
	c->next = s->idle;
	s->idle = c;
	pthread_cond_signal(&s->rfree);
	pthread_mutex_unlock(&s->rlock);
}

static int prep(sqlite3 *db, const char *sql, sqlite3_stmt **st)
{
	int rc = sqlite3_prepare_v2(db, sql, -1, st, NULL);

	return rc == SQLITE_OK ? 0 : pstore_sqlite_err(db, rc, sql);
}

static int exec_r(sqlite3 *db, const char *sql)
{
	int rc = sqlite3_exec(db, sql, NULL, NULL, NULL);

	return rc == SQLITE_OK ? 0 : pstore_sqlite_err(db, rc, sql);
}

/* ---- selection: the series of a selector and window into temp.q_series ---- */

int pq_add_pair(void *ctx, const char *name, const char *value)
{
	struct pairs *p = ctx;

	if (p->n >= sizeof(p->names) / sizeof(p->names[0]))
		return 1;
	p->names[p->n] = name;
	p->values[p->n++] = value;
	return 0;
}

static const char *pair_value(const struct pairs *p, const char *name)
{
	for (size_t i = 0; i < p->n; i++)
		if (!strcmp(p->names[i], name))
			return p->values[i];
	return NULL;
}

void pq_selection_free(struct selection *sl)
{
	for (size_t g = 0; g < sl->f.ngroups; g++)
		u64map_free(&sl->f.groups[g]);
	free(sl->f.groups);
	memset(sl, 0, sizeof(*sl));
}

/* Series labels decide the matchers they name; the rest (MASK) are left for sample labels.
 * Returns 0 when a series-side matcher fails. */
int pq_series_matches(const struct selector *sel, const struct pairs *p, uint64_t *mask)
{
	*mask = 0;
	for (size_t i = 0; i < selector_count(sel); i++) {
		const char *v = pair_value(p, selector_name(sel, i));

		if (!v)
			*mask |= (uint64_t)1 << i;
		else if (!selector_match_one(sel, i, v))
			return 0;
	}
	return 1;
}

int pq_group_of(struct selection *sl, uint64_t mask)
{
	size_t g;

	if (!mask)
		return 0;
	for (g = 0; g < sl->f.ngroups; g++)
		if (sl->masks[g] == mask)
			return (int)g + 1;
	if (g >= SELECTOR_MAX_MATCHERS)
		return -E2BIG;
	if (!sl->f.groups) {
		sl->f.groups = calloc(SELECTOR_MAX_MATCHERS, sizeof(*sl->f.groups));
		if (!sl->f.groups)
			return -ENOMEM;
	}
	memset(&sl->f.groups[g], 0, sizeof(sl->f.groups[g]));
	sl->masks[g] = mask;
	sl->f.ngroups = g + 1;
	return (int)g + 1;
}

int pq_ls_matches(const struct selector *sel, uint64_t mask, const struct pairs *p)
{
	for (size_t i = 0; i < selector_count(sel); i++)
		if ((mask >> i & 1) &&
		    !selector_match_one(sel, i, pair_value(p, selector_name(sel, i))))
			return 0;
	return 1;
}

/* The label sets each group allows. */
static int fill_groups(sqlite3 *db, const struct selector *sel, int64_t from, struct selection *sl)
{
	struct pairs empty = {0};
	sqlite3_stmt *st = NULL;
	int rc, err = 0;

	if (!sl->f.ngroups)
		return 0;
	for (size_t g = 0; g < sl->f.ngroups; g++)
		if (!err && pq_ls_matches(sel, sl->masks[g], &empty))
			err = u64map_put(&sl->f.groups[g], 0, 1);
	if (err)
		return err;
	err = prep(db, "SELECT id, labels FROM labelsets WHERE last_seen >= ?1", &st);
	if (err)
		return err;
	sqlite3_bind_int64(st, 1, from - PSTORE_SEEN_SLACK_NS);
	while (!err && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct pairs p = {0};

		if (pstore_labels_each(sqlite3_column_blob(st, 1),
				       (size_t)sqlite3_column_bytes(st, 1), pq_add_pair, &p))
			continue;
		for (size_t g = 0; !err && g < sl->f.ngroups; g++)
			if (pq_ls_matches(sel, sl->masks[g], &p))
				err = u64map_put(&sl->f.groups[g],
						 (uint64_t)sqlite3_column_int64(st, 0), 1);
	}
	if (!err && rc != SQLITE_DONE)
		err = pstore_sqlite_err(db, rc, "label sets");
	sqlite3_finalize(st);
	return err;
}

static int select_series(sqlite3 *db, const struct selector *sel, int64_t from, int64_t to,
			 struct selection *sl)
{
	sqlite3_stmt *st = NULL, *ins = NULL;
	int rc, err;

	memset(sl, 0, sizeof(*sl));
	err = exec_r(db, "DELETE FROM temp.q_series");
	if (!err)
		err = prep(
		    db, "SELECT id, labels FROM series WHERE first_seen < ?2 AND last_seen >= ?1",
		    &st);
	if (!err)
		err = prep(db, "INSERT INTO temp.q_series(id, grp) VALUES(?1, ?2)", &ins);
	if (err)
		goto out;
	sqlite3_bind_int64(st, 1, from);
	sqlite3_bind_int64(st, 2, to);
	while (!err && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct pairs p = {0};
		uint64_t mask;
		int g;

		if (pstore_labels_each(sqlite3_column_blob(st, 1),
				       (size_t)sqlite3_column_bytes(st, 1), pq_add_pair, &p))
			continue;
		if (!pq_series_matches(sel, &p, &mask))
			continue;
		g = pq_group_of(sl, mask);
		if (g < 0) {
			err = g;
			break;
		}
		sqlite3_bind_int64(ins, 1, sqlite3_column_int64(st, 0));
		sqlite3_bind_int(ins, 2, g);
		rc = sqlite3_step(ins);
		sqlite3_reset(ins);
		if (rc != SQLITE_DONE)
			err = pstore_sqlite_err(db, rc, "q_series");
		sl->nseries++;
	}
	if (!err && rc != SQLITE_DONE && rc != SQLITE_ROW)
		err = pstore_sqlite_err(db, rc, "series");
	if (!err)
		err = fill_groups(db, sel, from, sl);
out:
	sqlite3_finalize(st);
	sqlite3_finalize(ins);
	if (err)
		pq_selection_free(sl);
	return err;
}

/* The type id for TYPE ("cpu", or "cpu:nanoseconds"; NULL: cpu if present, else the first);
 * 0 when there is none. Fills NAME and UNIT (64 bytes each). */
static int find_type(sqlite3 *db, const char *type, int64_t *id, char *name, char *unit)
{
	sqlite3_stmt *st = NULL;
	char want[64] = "", wunit[64] = "";
	const char *colon = type ? strchr(type, ':') : NULL;
	int rc, err;

	*id = 0;
	if (type) {
		snprintf(want, sizeof(want), "%.*s", colon ? (int)(colon - type) : 63, type);
		if (colon)
			snprintf(wunit, sizeof(wunit), "%s", colon + 1);
		snprintf(name, 64, "%s", want);
		snprintf(unit, 64, "%s", wunit);
	}
	err = prep(db,
		   type ? "SELECT id, name, unit FROM types WHERE name = ?1 AND "
			  "(?2 = '' OR unit = ?2) ORDER BY id LIMIT 1"
			: "SELECT id, name, unit FROM types ORDER BY name != 'cpu', id LIMIT 1",
		   &st);
	if (err)
		return err;
	if (type) {
		sqlite3_bind_text(st, 1, want, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, wunit, -1, SQLITE_STATIC);
	}
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*id = sqlite3_column_int64(st, 0);
		snprintf(name, 64, "%s", (const char *)sqlite3_column_text(st, 1));
		snprintf(unit, 64, "%s", (const char *)sqlite3_column_text(st, 2));
	} else if (rc != SQLITE_DONE) {
		err = pstore_sqlite_err(db, rc, "types");
	}
	sqlite3_finalize(st);
	return err;
}

/* ---- pstore_query ---- */

void *pq_arena_alloc(struct result_priv *rp, size_t n)
{
	struct achunk *c = rp->chunks;

	n = (n + 7) & ~(size_t)7;
	if (!c || c->size - c->used < n) {
		size_t size = n > 60000 ? n : 65536 - sizeof(*c);

		c = malloc(sizeof(*c) + size);
		if (!c)
			return NULL;
		c->next = rp->chunks;
		c->used = 0;
		c->size = size;
		rp->chunks = c;
	}
	c->used += n;
	return c->data + c->used - n;
}

const char *pq_arena_str(struct result_priv *rp, const void *s, size_t n)
{
	char *d = pq_arena_alloc(rp, n + 1);

	if (!d)
		return NULL;
	memcpy(d, s, n);
	d[n] = '\0';
	return d;
}

void pstore_result_free(struct pstore_result *r)
{
	struct result_priv *rp = (struct result_priv *)r;

	if (!r)
		return;
	while (rp->chunks) {
		struct achunk *c = rp->chunks;

		rp->chunks = c->next;
		free(c);
	}
	free(rp->locidx);
	free(r->locs);
	free(r->stacks);
	free(rp);
}

/* The index in r->locs of location ID, added on first sight. */
static int merge_loc(struct merge *m, int64_t id, uint32_t *out)
{
	struct pstore_result *r = &m->rp->r;
	int err;

	if (u64map_get(&m->locs, (uint64_t)id, out))
		return 0;
	err = vec_reserve((void **)&r->locs, &m->lcap, r->nlocs + 1, sizeof(*r->locs));
	if (!err)
		err = u64map_put(&m->locs, (uint64_t)id, (uint32_t)r->nlocs);
	if (err)
		return err;
	memset(&r->locs[r->nlocs], 0, sizeof(r->locs[0]));
	r->locs[r->nlocs].id = id;
	*out = (uint32_t)r->nlocs++;
	return 0;
}

/* Append a stack of value V whose locations are the varint ids in P..END. */
int pq_merge_stack(struct merge *m, const uint8_t *p, const uint8_t *end, int64_t v)
{
	struct result_priv *rp = m->rp;
	struct pstore_result *r = &rp->r;
	size_t start = m->nidx;
	int err;

	err = vec_reserve((void **)&r->stacks, &m->scap, r->nstacks + 1, sizeof(*r->stacks));
	if (!err)
		err = vec_reserve((void **)&m->offs, &m->ocap, r->nstacks + 1, sizeof(*m->offs));
	while (!err && p < end) {
		uint64_t lid;
		uint32_t li;

		if (pv_get(&p, end, &lid) || m->nidx - start >= PSTORE_MAX_DEPTH)
			return -EIO;
		err = merge_loc(m, (int64_t)lid, &li);
		if (!err)
			err = VEC_PUSH(rp->locidx, m->nidx, m->icap, li);
	}
	if (err)
		return err;
	/* every sum the answer makes of these values is bounded by this one */
	m->mag += v < 0 ? -(uint64_t)v : (uint64_t)v;
	if (m->mag > PSTORE_MAX_MAGNITUDE)
		return -ERANGE;
	m->offs[r->nstacks] = start;
	r->stacks[r->nstacks].value = v;
	r->stacks[r->nstacks].nlocs = m->nidx - start;
	r->total += v;
	r->nstacks++;
	return 0;
}

/* The locations of stack SID, from statement LS ("SELECT locs FROM stacks WHERE id = ?1"),
 * merged with value V. */
static int merge_stack_id(sqlite3 *db, sqlite3_stmt *ls, struct merge *m, uint64_t sid, int64_t v)
{
	const uint8_t *p;
	int rc, err;

	sqlite3_bind_int64(ls, 1, (int64_t)sid);
	rc = sqlite3_step(ls);
	if (rc == SQLITE_DONE)
		err = 0; /* cannot happen while a profile refers to it */
	else if (rc != SQLITE_ROW)
		err = pstore_sqlite_err(db, rc, "stacks");
	else {
		p = sqlite3_column_blob(ls, 0);
		err = pq_merge_stack(m, p, p + sqlite3_column_bytes(ls, 0), v);
	}
	sqlite3_reset(ls);
	return err;
}

static int merge_stacks(sqlite3 *db, struct result_priv *rp, int64_t tid, int64_t from, int64_t to,
			const struct selection *sl, size_t max_stacks)
{
	/* The merge is one aggregate over the selected profiles: pstore_merge() sums by stack in
	 * a hash table. The same query as "SELECT d.stack, sum(d.value) ... pstore_samples(...) d
	 * GROUP BY d.stack" gives the same answer, but sqlite groups by sorting every sample row:
	 * ~1 us per row against ~0.1 us here (profstore_int.h). */
	static const char sql[] =
	    "SELECT pstore_merge(p.samples, ?4, q.grp) FROM temp.q_series q JOIN profiles p "
	    " ON p.series_id = q.id AND p.time >= ?2 AND p.time < ?3 AND p.type_id = ?1";
	struct pstore_result *r = &rp->r;
	struct merge m = {.rp = rp};
	sqlite3_stmt *st = NULL, *ls = NULL;
	const uint8_t *mp = NULL, *mend = NULL;
	int rc, err;

	err = prep(db, sql, &st);
	if (!err)
		err = prep(db, "SELECT locs FROM stacks WHERE id = ?1", &ls);
	if (err)
		goto out;
	sqlite3_bind_int64(st, 1, tid);
	sqlite3_bind_int64(st, 2, from);
	sqlite3_bind_int64(st, 3, to);
	sqlite3_bind_pointer(st, 4, sl->f.ngroups ? (void *)&sl->f : NULL, LSFILTER_PTR_TYPE, NULL);
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		err = pstore_sqlite_err(db, rc, "merge");
		goto out;
	}
	/* the aggregate's blob: (stack id, zigzag value) varint pairs */
	mp = sqlite3_column_blob(st, 0);
	mend = mp ? mp + sqlite3_column_bytes(st, 0) : NULL; /* NULL when nothing matched */
	while (!err && mp && mp < mend) {
		uint64_t sid, zv;

		if (pv_get(&mp, mend, &sid) || pv_get(&mp, mend, &zv))
			err = -EIO;
		else if (!pv_unzig(zv))
			continue;
		else if (r->nstacks >= max_stacks)
			err = -E2BIG;
		else
			err = merge_stack_id(db, ls, &m, sid, pv_unzig(zv));
	}
	for (size_t i = 0; !err && i < r->nstacks; i++)
		r->stacks[i].locs = rp->locidx + m.offs[i];
out:
	sqlite3_finalize(st);
	sqlite3_finalize(ls);
	free(m.offs);
	u64map_free(&m.locs);
	return err;
}

int pq_decode_frames(struct result_priv *rp, struct pstore_loc *l, const uint8_t *p, size_t n)
{
	const uint8_t *end = p + n, *q = p;
	struct pstore_named_frame *f;
	size_t nf = 0;
	uint64_t len, v;

	while (q < end) { /* count */
		for (int k = 0; k < 2; k++)
			if (pv_get(&q, end, &len) || len > (size_t)(end - q))
				return -EIO;
			else
				q += len;
		if (pv_get(&q, end, &v))
			return -EIO;
		nf++;
	}
	f = pq_arena_alloc(rp, (nf ? nf : 1) * sizeof(*f));
	if (!f)
		return -ENOMEM;
	for (size_t i = 0; i < nf; i++) {
		pv_get(&p, end, &len);
		f[i].function = pq_arena_str(rp, p, len);
		p += len;
		pv_get(&p, end, &len);
		f[i].file = len ? pq_arena_str(rp, p, len) : NULL;
		p += len;
		pv_get(&p, end, &v);
		f[i].line = pv_unzig(v);
		if (!f[i].function || (len && !f[i].file))
			return -ENOMEM;
	}
	l->frames = f;
	l->nframes = nf;
	return 0;
}

static int fill_locations(sqlite3 *db, struct result_priv *rp)
{
	struct pstore_result *r = &rp->r;
	sqlite3_stmt *st = NULL;
	int rc, err;

	err = prep(db,
		   "SELECT build_id, file_off, mapping_file, kernel, frames FROM locations "
		   "WHERE id = ?1",
		   &st);
	for (size_t i = 0; !err && i < r->nlocs; i++) {
		struct pstore_loc *l = &r->locs[i];

		sqlite3_bind_int64(st, 1, l->id);
		rc = sqlite3_step(st);
		if (rc == SQLITE_ROW) {
			snprintf(l->build_id, sizeof(l->build_id), "%s",
				 (const char *)sqlite3_column_text(st, 0));
			l->file_off = (uint64_t)sqlite3_column_int64(st, 1);
			l->mapping_file = pq_arena_str(rp, sqlite3_column_text(st, 2),
						       (size_t)sqlite3_column_bytes(st, 2));
			l->kernel = sqlite3_column_int(st, 3);
			if (!l->mapping_file)
				err = -ENOMEM;
			else if (sqlite3_column_type(st, 4) == SQLITE_BLOB)
				err = pq_decode_frames(rp, l, sqlite3_column_blob(st, 4),
						       (size_t)sqlite3_column_bytes(st, 4));
		} else if (rc == SQLITE_DONE) {
			l->mapping_file = "[location missing from the store]";
		} else {
			err = pstore_sqlite_err(db, rc, "locations");
		}
		sqlite3_reset(st);
	}
	sqlite3_finalize(st);
	return err;
}

static int count_profiles(sqlite3 *db, int64_t tid, int64_t from, int64_t to,
			  struct pstore_result *r)
{
	sqlite3_stmt *st = NULL;
	int rc, err;

	err = prep(db,
		   "SELECT count(*), max(p.period), min(p.time), total(p.duration) "
		   "FROM temp.q_series q JOIN profiles p ON "
		   "p.series_id = q.id AND p.time >= ?2 AND p.time < ?3 AND p.type_id = ?1",
		   &st);
	if (err)
		return err;
	sqlite3_bind_int64(st, 1, tid);
	sqlite3_bind_int64(st, 2, from);
	sqlite3_bind_int64(st, 3, to);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		r->nprofiles = (size_t)sqlite3_column_int64(st, 0);
		double d = sqlite3_column_double(st, 3); /* total(): a float, cannot overflow */

		r->period = sqlite3_column_int64(st, 1);
		r->time_nanos = sqlite3_column_int64(st, 2);
		r->duration_nanos = d >= 0x1p63 ? INT64_MAX : (int64_t)d;
	} else {
		err = pstore_sqlite_err(db, rc, "count");
	}
	sqlite3_finalize(st);
	return err;
}

int pstore_query(struct pstore *s, const struct selector *sel, int64_t from_ns, int64_t to_ns,
		 const char *type, size_t max_stacks, struct pstore_result **out)
{
	struct result_priv *rp;
	struct selection sl = {0};
	struct rconn *c = NULL;
	int64_t tid;
	int err;

	if (s->ch)
		return chstore_query(s, sel, from_ns, to_ns, type, max_stacks, out);
	*out = NULL;
	rp = calloc(1, sizeof(*rp));
	if (!rp)
		return -ENOMEM;
	err = reader_get(s, &c);
	if (err)
		goto out;
	/* one snapshot for the steps below: an ingest committing meanwhile is not half-seen */
	err = exec_r(c->db, "BEGIN");
	if (err)
		goto out;
	err = find_type(c->db, type, &tid, rp->r.sample_type, rp->r.sample_unit);
	if (!err && tid)
		err = select_series(c->db, sel, from_ns, to_ns, &sl);
	if (!err && tid && sl.nseries)
		err = count_profiles(c->db, tid, from_ns, to_ns, &rp->r);
	if (!err && rp->r.nprofiles)
		err = merge_stacks(c->db, rp, tid, from_ns, to_ns, &sl,
				   max_stacks ? max_stacks : DEFAULT_MAX_STACKS);
	if (!err)
		err = fill_locations(c->db, rp);
	sqlite3_exec(c->db, "COMMIT", NULL, NULL, NULL);
out:
	pq_selection_free(&sl);
	reader_put(s, c);
	if (err) {
		pstore_result_free(&rp->r);
		return err;
	}
	*out = &rp->r;
	return 0;
}

/* ---- listings ---- */

void pstore_strings_free(struct pstore_strings *l)
{
	if (!l)
		return;
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

/* Append a copy of S (NULL: "") to L, whose array holds *CAP. */
int pq_strings_add(struct pstore_strings *l, size_t *cap, const char *s)
{
	char *d = strdup(s ? s : "");
	int err;

	if (!d)
		return -ENOMEM;
	err = VEC_PUSH(l->v, l->n, *cap, d);
	if (err)
		free(d);
	return err;
}

/* Rows of ST (one text column; NULLs skipped) into OUT, at most MAX_LISTED. */
static int string_rows(sqlite3 *db, sqlite3_stmt *st, struct pstore_strings *out)
{
	size_t cap = 0;
	int rc, err = 0;

	while (!err && (rc = sqlite3_step(st)) == SQLITE_ROW && out->n < MAX_LISTED) {
		if (sqlite3_column_type(st, 0) == SQLITE_NULL)
			continue;
		err = pq_strings_add(out, &cap, (const char *)sqlite3_column_text(st, 0));
	}
	if (!err && rc != SQLITE_DONE && rc != SQLITE_ROW)
		err = pstore_sqlite_err(db, rc, "listing");
	if (err)
		pstore_strings_free(out);
	return err;
}

static int list(struct pstore *s, const char *sql, const char *arg, struct pstore_strings *out)
{
	struct rconn *c = NULL;
	sqlite3_stmt *st = NULL;
	int err;

	err = reader_get(s, &c);
	if (!err)
		err = prep(c->db, sql, &st);
	if (!err) {
		if (arg)
			sqlite3_bind_text(st, 1, arg, -1, SQLITE_STATIC);
		err = string_rows(c->db, st, out);
	}
	sqlite3_finalize(st);
	reader_put(s, c);
	return err;
}

int pstore_labels(struct pstore *s, struct pstore_strings *out)
{
	if (s->ch)
		return chstore_labels(s, out);
	/* distinct names by skipping through the primary key, not by reading every value */
	return list(s,
		    "WITH RECURSIVE n(x) AS (SELECT min(name) FROM label_values UNION ALL "
		    "SELECT (SELECT min(name) FROM label_values WHERE name > n.x) FROM n "
		    "WHERE n.x IS NOT NULL) SELECT x FROM n WHERE x IS NOT NULL",
		    NULL, out);
}

int pstore_label_values(struct pstore *s, const char *name, struct pstore_strings *out)
{
	if (s->ch)
		return chstore_label_values(s, name, out);
	return list(s, "SELECT DISTINCT value FROM label_values WHERE name = ?1 ORDER BY value",
		    name, out);
}

int pstore_types(struct pstore *s, struct pstore_strings *out)
{
	struct rconn *c = NULL;
	sqlite3_stmt *st = NULL;
	size_t cap = 0;
	int rc = SQLITE_DONE, err;

	if (s->ch)
		return chstore_types(s, out);
	err = reader_get(s, &c);
	if (!err)
		err = prep(c->db, "SELECT name, unit FROM types ORDER BY name, unit", &st);
	while (!err && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		err = pq_strings_add(out, &cap, (const char *)sqlite3_column_text(st, 0));
		if (!err)
			err = pq_strings_add(out, &cap, (const char *)sqlite3_column_text(st, 1));
	}
	if (!err && rc != SQLITE_DONE)
		err = pstore_sqlite_err(c->db, rc, "types");
	if (err)
		pstore_strings_free(out);
	sqlite3_finalize(st);
	reader_put(s, c);
	return err;
}

void pstore_series_list_free(struct pstore_series_list *l)
{
	if (!l)
		return;
	for (size_t i = 0; i < l->n; i++)
		pstore_strings_free(&l->v[i].labels);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

struct pair_sink {
	struct pstore_strings *l;
	size_t cap;
	int err;
};

static int copy_pair(void *ctx, const char *name, const char *value)
{
	struct pair_sink *p = ctx;

	p->err = pq_strings_add(p->l, &p->cap, name);
	if (!p->err)
		p->err = pq_strings_add(p->l, &p->cap, value);
	return p->err;
}

/* Does series ID have a profile in the window (whose samples pass group GRP)? */
static int series_has_data(sqlite3_stmt *plain, sqlite3_stmt *filtered, int64_t id, int grp,
			   int *yes)
{
	sqlite3_stmt *st = grp ? filtered : plain;
	int rc;

	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int(st, 4, grp);
	rc = sqlite3_step(st);
	*yes = rc == SQLITE_ROW;
	sqlite3_reset(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : -EIO;
}

/* Append the series of row ST (id, labels, first_seen, last_seen, grp) to OUT. */
static int series_row(sqlite3_stmt *st, struct pstore_series_list *out, size_t *cap)
{
	struct pstore_series_info si = {.first_seen_ns = sqlite3_column_int64(st, 2),
					.last_seen_ns = sqlite3_column_int64(st, 3)};
	struct pair_sink ps = {&si.labels};
	int err;

	pstore_labels_each(sqlite3_column_blob(st, 1), (size_t)sqlite3_column_bytes(st, 1),
			   copy_pair, &ps);
	err = ps.err ?: VEC_PUSH(out->v, out->n, *cap, si);
	if (err)
		pstore_strings_free(&si.labels);
	return err;
}

int pstore_series(struct pstore *s, const struct selector *sel, int64_t from_ns, int64_t to_ns,
		  struct pstore_series_list *out)
{
	struct selection sl = {0};
	struct rconn *c = NULL;
	sqlite3_stmt *st = NULL, *plain = NULL, *filt = NULL;
	size_t cap = 0;
	int rc, err;

	if (s->ch)
		return chstore_series(s, sel, from_ns, to_ns, out);
	err = reader_get(s, &c);
	if (!err)
		err = exec_r(c->db, "BEGIN");
	if (err)
		goto out;
	err = select_series(c->db, sel, from_ns, to_ns, &sl);
	if (!err)
		err = prep(c->db,
			   "SELECT s.id, s.labels, s.first_seen, s.last_seen, q.grp FROM "
			   "temp.q_series q JOIN series s ON s.id = q.id ORDER BY s.labels",
			   &st);
	if (!err)
		err = prep(c->db,
			   "SELECT 1 FROM profiles WHERE series_id = ?1 AND time >= ?2 AND "
			   "time < ?3 AND ?4 = 0 LIMIT 1",
			   &plain);
	if (!err)
		err = prep(c->db,
			   "SELECT 1 FROM profiles p, pstore_samples(p.samples, ?5, ?4) d "
			   "WHERE p.series_id = ?1 AND p.time >= ?2 AND p.time < ?3 LIMIT 1",
			   &filt);
	if (err)
		goto out;
	for (int k = 0; k < 2; k++) {
		sqlite3_stmt *x = k ? filt : plain;

		sqlite3_bind_int64(x, 2, from_ns);
		sqlite3_bind_int64(x, 3, to_ns);
	}
	sqlite3_bind_pointer(filt, 5, sl.f.ngroups ? (void *)&sl.f : NULL, LSFILTER_PTR_TYPE, NULL);
	while (!err && (rc = sqlite3_step(st)) == SQLITE_ROW && out->n < MAX_LISTED) {
		int yes;

		err = series_has_data(plain, filt, sqlite3_column_int64(st, 0),
				      sqlite3_column_int(st, 4), &yes);
		if (!err && yes)
			err = series_row(st, out, &cap);
	}
out:
	if (err)
		pstore_series_list_free(out);
	sqlite3_finalize(st);
	sqlite3_finalize(plain);
	sqlite3_finalize(filt);
	if (c)
		sqlite3_exec(c->db, "COMMIT", NULL, NULL, NULL);
	pq_selection_free(&sl);
	reader_put(s, c);
	return err;
}

/* ---- timeline ---- */

static int timeline_sum(sqlite3 *db, int64_t tid, int64_t from, int64_t to, int64_t step,
			const struct selection *sl, int64_t *buckets, size_t nb)
{
	/* Without sample-label matchers (grp 0) the stored totals answer; else the blobs. */
	static const char sql[] =
	    "SELECT (p.time - ?2) / ?4 AS b, sum(p.total) FROM temp.q_series q JOIN profiles p "
	    " ON p.series_id = q.id AND p.time >= ?2 AND p.time < ?3 AND p.type_id = ?1 "
	    " WHERE q.grp = 0 GROUP BY b "
	    "UNION ALL "
	    "SELECT (p.time - ?2) / ?4 AS b, sum(d.value) FROM temp.q_series q JOIN profiles p "
	    " ON p.series_id = q.id AND p.time >= ?2 AND p.time < ?3 AND p.type_id = ?1, "
	    " pstore_samples(p.samples, ?5, q.grp) d WHERE q.grp > 0 GROUP BY b";
	sqlite3_stmt *st = NULL;
	int rc, err;

	err = prep(db, sql, &st);
	if (err)
		return err;
	sqlite3_bind_int64(st, 1, tid);
	sqlite3_bind_int64(st, 2, from);
	sqlite3_bind_int64(st, 3, to);
	sqlite3_bind_int64(st, 4, step);
	sqlite3_bind_pointer(st, 5, sl->f.ngroups ? (void *)&sl->f : NULL, LSFILTER_PTR_TYPE, NULL);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		int64_t b = sqlite3_column_int64(st, 0);

		if (b >= 0 && (size_t)b < nb)
			buckets[b] += sqlite3_column_int64(st, 1);
	}
	if (rc != SQLITE_DONE)
		err = pstore_sqlite_err(db, rc, "timeline");
	sqlite3_finalize(st);
	return err;
}

int pstore_timeline(struct pstore *s, const struct selector *sel, int64_t from_ns, int64_t to_ns,
		    int64_t step_ns, const char *type, int64_t **values, size_t *n)
{
	struct selection sl = {0};
	struct rconn *c = NULL;
	char tname[64], tunit[64];
	int64_t *buckets = NULL, tid = 0;
	size_t nb;
	int err;

	if (s->ch)
		return chstore_timeline(s, sel, from_ns, to_ns, step_ns, type, values, n);
	*values = NULL;
	*n = 0;
	if (step_ns <= 0 || to_ns <= from_ns)
		return -EINVAL;
	if ((uint64_t)(to_ns - from_ns) / (uint64_t)step_ns >= MAX_TIMELINE_POINTS)
		return -E2BIG;
	nb = (size_t)((to_ns - from_ns + step_ns - 1) / step_ns);
	buckets = calloc(nb, sizeof(*buckets));
	if (!buckets)
		return -ENOMEM;
	err = reader_get(s, &c);
	if (!err)
		err = exec_r(c->db, "BEGIN");
	if (!err)
		err = find_type(c->db, type, &tid, tname, tunit);
	if (!err && tid)
		err = select_series(c->db, sel, from_ns, to_ns, &sl);
	if (!err && tid && sl.nseries)
		err = timeline_sum(c->db, tid, from_ns, to_ns, step_ns, &sl, buckets, nb);
	if (c)
		sqlite3_exec(c->db, "COMMIT", NULL, NULL, NULL);
	if (err) {
		free(buckets);
	} else {
		*values = buckets;
		*n = nb;
	}
	pq_selection_free(&sl);
	reader_put(s, c);
	return err;
}

/* ---- retention ---- */

static int wexec(struct pstore *s, const char *sql)
{
	int rc = sqlite3_exec(s->wdb, sql, NULL, NULL, NULL);

	return rc == SQLITE_OK ? 0 : pstore_sqlite_err(s->wdb, rc, sql);
}

/* Run SQL (one ?1 parameter) in a transaction; *CHANGES rows. Caller holds wlock. */
static int wdelete(struct pstore *s, const char *sql, int64_t arg, int *changes)
{
	sqlite3_stmt *st = NULL;
	int rc;

	rc = sqlite3_prepare_v2(s->wdb, sql, -1, &st, NULL);
	if (rc != SQLITE_OK)
		return pstore_sqlite_err(s->wdb, rc, sql);
	sqlite3_bind_int64(st, 1, arg);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return pstore_sqlite_err(s->wdb, rc, sql);
	*changes = sqlite3_changes(s->wdb);
	return 0;
}

void pstore_drop_caches(struct pstore *s)
{
	kcache_clear(&s->locs);
	kcache_clear(&s->stacks);
	kcache_clear(&s->lsets);
	kcache_clear(&s->series);
	kcache_clear(&s->lvals);
}

int pstore_retain(struct pstore *s)
{
	static const char *const orphans[] = {
	    "DELETE FROM stacks WHERE last_seen < ?1",
	    "DELETE FROM locations WHERE last_seen < ?1",
	    "DELETE FROM labelsets WHERE last_seen < ?1",
	    "DELETE FROM label_values WHERE last_seen < ?1",
	};
	int64_t cutoff = clock_wall_ns() - s->o.retention_s * (int64_t)1000000000;
	int64_t deleted = 0;
	int n = 0, err = 0;

	if (s->ch) {
		err = chstore_retain(s, cutoff);
		__atomic_fetch_add(&s->stats.retain_runs, 1, __ATOMIC_RELAXED);
		return err;
	}
	pthread_mutex_lock(&s->wlock);
	err = pstore_writer_ready(s);
	pthread_mutex_unlock(&s->wlock);
	if (err)
		return err;
	/* profiles in batches, so ingests get the writer between them */
	do {
		pthread_mutex_lock(&s->wlock);
		err = wdelete(s,
			      "DELETE FROM profiles WHERE id IN (SELECT id FROM profiles "
			      "WHERE time < ?1 LIMIT 5000)",
			      cutoff, &n);
		pthread_mutex_unlock(&s->wlock);
		deleted += n;
	} while (!err && n == RETAIN_BATCH);
	if (err)
		return err;
	pthread_mutex_lock(&s->wlock);
	err = wexec(s, "BEGIN IMMEDIATE");
	if (!err)
		err = wdelete(s, "DELETE FROM series WHERE last_seen < ?1", cutoff, &n);
	for (size_t i = 0; !err && i < sizeof(orphans) / sizeof(orphans[0]); i++)
		err = wdelete(s, orphans[i], cutoff - PSTORE_SEEN_SLACK_NS, &n);
	if (!err)
		err = wdelete(s, "DELETE FROM ingest_keys WHERE time < ?1",
			      clock_wall_ns() - PSTORE_KEY_KEEP_NS, &n);
	if (!err)
		err = wexec(s, "COMMIT");
	if (err)
		sqlite3_exec(s->wdb, "ROLLBACK", NULL, NULL, NULL);
	pstore_drop_caches(s);
	if (!err && deleted)
		sqlite3_exec(s->wdb, "PRAGMA incremental_vacuum", NULL, NULL, NULL);
	pthread_mutex_unlock(&s->wlock);
	__atomic_fetch_add(&s->stats.retain_runs, 1, __ATOMIC_RELAXED);
	__atomic_fetch_add(&s->stats.retained_profiles, (uint64_t)deleted, __ATOMIC_RELAXED);
	if (deleted)
		log_msg(FS_LOG_INFO, "event=retention deleted_profiles=%" PRId64, deleted);
	return err;
}

static void *retain_main(void *arg)
{
	struct pstore *s = arg;
	struct timespec ts;

	pthread_mutex_lock(&s->stop_lock);
	while (!s->stopping) {
		int err;

		pthread_mutex_unlock(&s->stop_lock);
		err = pstore_retain(s);
		if (err)
			log_msg(FS_LOG_WARN, "profile retention failed: %s", err_str(err));
		pthread_mutex_lock(&s->stop_lock);
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += s->o.retain_interval_s;
		while (!s->stopping &&
		       pthread_cond_timedwait(&s->stop_cond, &s->stop_lock, &ts) == 0)
			;
	}
	pthread_mutex_unlock(&s->stop_lock);
	return NULL;
}

void pstore_stats(struct pstore *s, struct pstore_stats *out)
{
	const uint64_t *src = (const uint64_t *)&s->stats;
	uint64_t *dst = (uint64_t *)out;

	for (size_t i = 0; i < sizeof(*out) / sizeof(uint64_t); i++)
		dst[i] = __atomic_load_n(&src[i], __ATOMIC_RELAXED);
}
