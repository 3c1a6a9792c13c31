/*
 * chstore - the ClickHouse backend of the profile store (chstore.h).
 */
#include "symbolizer/store/chstore.h"
#include "symbolizer/store/profstore_int.h"

#include "lib/err.h"
#include "lib/log.h"
#include "lib/vec.h"

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CH_IDLE_HANDLES 16 /* curl handles kept for their open connections */
#define CH_DICT_CACHE_BYTES (32u << 20) /* per dictionary cache (struct dictcache) */

/* Byte strings by id: a map to entries of one buffer. */
struct blobmap {
	struct u64map ix; /* id -> entry */
	struct chbuf b;
	struct blobent {
		uint64_t id;
		size_t off, len;
	} *e;
	size_t n, ecap;
};

/* Add ID's LEN bytes at P (and a NUL after them) as the next entry. 0 or -ENOMEM/-E2BIG. */
static int blob_add(struct blobmap *m, uint64_t id, const void *p, size_t len)
{
	int err = u64map_put(&m->ix, id, (uint32_t)m->n) ?:
		  VEC_PUSH(m->e, m->n, m->ecap, ((struct blobent){id, m->b.n, len}));

	chbuf_raw(&m->b, p, len);
	chbuf_raw(&m->b, "", 1);
	return err ?: m->b.err;
}

/* ID's entry (NUL-terminated, *LEN bytes before the NUL), or NULL. Valid until the next add. */
static char *blob_get(const struct blobmap *m, uint64_t id, size_t *len)
{
	uint32_t k;

	if (!u64map_get(&m->ix, id, &k))
		return NULL;
	*len = m->e[k].len;
	return m->b.p + m->e[k].off;
}

static void blobmap_free(struct blobmap *m)
{
	u64map_free(&m->ix);
	chbuf_free(&m->b);
	free(m->e);
	memset(m, 0, sizeof(*m));
}

/* The rows of an immutable dictionary (stacks, locations) kept for queries. An id is the hash
 * of its row's content, so a kept row is never stale, on any replica. Bounded: emptied whole
 * when the next row would pass CH_DICT_CACHE_BYTES. */
struct dictcache {
	pthread_mutex_t lock;
	struct blobmap m;
};

struct chstore {
	char *base; /* http://HOST:PORT/?max_query_size=... */
	char db[64];
	char *user, *password;
	pthread_mutex_t lock; /* idle */
	CURL *idle[CH_IDLE_HANDLES];
	int nidle;
	struct dictcache stacks, locs;
};

/* Copy the kept rows of the N ids at IDS (STRIDE bytes apart) into OUT; the ids not kept go
 * to MISS as a list "1,2,3" for an IN (...). */
static int dict_lookup(struct dictcache *d, const void *ids, size_t n, size_t stride,
		       struct blobmap *out, struct chbuf *miss)
{
	int err = 0;

	pthread_mutex_lock(&d->lock);
	for (size_t i = 0; !err && i < n; i++) {
		uint64_t id = *(const uint64_t *)((const char *)ids + i * stride);
		size_t len;
		const char *p = blob_get(&d->m, id, &len);

		if (p)
			err = blob_add(out, id, p, len);
		else
			chbuf_printf(miss, "%s%" PRIu64, miss->n ? "," : "", id);
	}
	pthread_mutex_unlock(&d->lock);
	return err ?: miss->err;
}

/* Keep entries FIRST.. of FROM in D (a cache that cannot grow is only slower). */
static void dict_keep(struct dictcache *d, const struct blobmap *from, size_t first)
{
	pthread_mutex_lock(&d->lock);
	for (size_t i = first; i < from->n; i++) {
		const struct blobent *e = &from->e[i];

		if (d->m.b.n + e->len + 1 > CH_DICT_CACHE_BYTES)
			blobmap_free(&d->m);
		if (blob_add(&d->m, e->id, from->b.p + e->off, e->len)) {
			blobmap_free(&d->m);
			break;
		}
	}
	pthread_mutex_unlock(&d->lock);
}

/* A handle with a kept-alive connection when one is idle, else a new one. */
static CURL *handle_get(struct chstore *c)
{
	CURL *h = NULL;

	pthread_mutex_lock(&c->lock);
	if (c->nidle)
		h = c->idle[--c->nidle];
	pthread_mutex_unlock(&c->lock);
	if (h)
		curl_easy_reset(h);
	return h ? h : curl_easy_init();
}

/* Keep H for the next call (OK: its connection is sound), else close it. */
static void handle_put(struct chstore *c, CURL *h, int ok)
{
	if (!h)
		return;
	pthread_mutex_lock(&c->lock);
	if (ok && c->nidle < CH_IDLE_HANDLES) {
		c->idle[c->nidle++] = h;
		h = NULL;
	}
	pthread_mutex_unlock(&c->lock);
	if (h)
		curl_easy_cleanup(h);
}

int chstore_is_url(const char *url)
{
	return url && !strncmp(url, "clickhouse://", 13);
}

/* ---- buffers ---- */

void chbuf_printf(struct chbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->err)
		return;
	for (;;) {
		size_t room = b->cap - b->n;

		va_start(ap, fmt);
		n = vsnprintf(b->p ? b->p + b->n : NULL, b->p ? room : 0, fmt, ap);
		va_end(ap);
		if (n < 0) {
			b->err = -EINVAL;
			return;
		}
		if ((size_t)n < room) {
			b->n += (size_t)n;
			return;
		}
		if ((b->err = vec_reserve((void **)&b->p, &b->cap, b->n + (size_t)n + 1, 1)))
			return;
	}
}

void chbuf_hex(struct chbuf *b, const void *p, size_t n)
{
	static const char hx[] = "0123456789abcdef";
	const uint8_t *s = p;

	if (b->err || (b->err = vec_reserve((void **)&b->p, &b->cap, b->n + 2 * n + 1, 1)))
		return;
	for (size_t i = 0; i < n; i++) {
		b->p[b->n++] = hx[s[i] >> 4];
		b->p[b->n++] = hx[s[i] & 15];
	}
	b->p[b->n] = '\0';
}

void chbuf_reserve(struct chbuf *b, size_t n)
{
	if (!b->err)
		b->err = vec_reserve((void **)&b->p, &b->cap, b->n + n + 1, 1);
}

void chbuf_raw(struct chbuf *b, const void *p, size_t n)
{
	if (b->n + n + 1 > b->cap)
		chbuf_reserve(b, n);
	if (b->err)
		return;
	memcpy(b->p + b->n, p, n);
	b->n += n;
	b->p[b->n] = '\0';
}

void chbuf_i64(struct chbuf *b, int64_t v, char end)
{
	char tmp[24], *e = tmp + sizeof(tmp), *p = e;
	uint64_t u = v < 0 ? -(uint64_t)v : (uint64_t)v;

	*--p = end;
	do {
		*--p = (char)('0' + u % 10);
		u /= 10;
	} while (u);
	if (v < 0)
		*--p = '-';
	chbuf_raw(b, p, (size_t)(e - p));
}

void chbuf_free(struct chbuf *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

void chbatch_free(struct chbatch *b)
{
	for (int i = 0; i < CHT_COUNT_; i++)
		chbuf_free(&b->t[i]);
}

void chstore_day(int64_t ts_ns, char out[16])
{
	time_t t = (time_t)(ts_ns / 1000000000);
	struct tm tm;

	if (ts_ns < 0 || !gmtime_r(&t, &tm))
		t = 0, gmtime_r(&t, &tm);
	strftime(out, 16, "%Y-%m-%d", &tm);
}

/* Decode hex P (N chars) in place; its length, or -1 when not hex. */
static long unhex(char *p, size_t n)
{
	uint8_t *o = (uint8_t *)p;

	if (n % 2)
		return -1;
	for (size_t i = 0; i < n; i += 2) {
		int v = 0;

		for (int k = 0; k < 2; k++) {
			char c = p[i + (size_t)k];

			v <<= 4;
			if (c >= '0' && c <= '9')
				v |= c - '0';
			else if (c >= 'a' && c <= 'f')
				v |= c - 'a' + 10;
			else if (c >= 'A' && c <= 'F')
				v |= c - 'A' + 10;
			else
				return -1;
		}
		o[i / 2] = (uint8_t)v;
	}
	return (long)(n / 2);
}

/* Split the next TabSeparated row at *CUR into at most NCOL columns (in place); the number of
 * columns, 0 at the end. */
static int tsv_row(char **cur, char **col, int ncol)
{
	char *p = *cur, *end;
	int n = 0;

	if (!p || !*p)
		return 0;
	end = strchr(p, '\n');
	if (end)
		*end = '\0';
	*cur = end ? end + 1 : p + strlen(p);
	while (n < ncol) {
		char *t = strchr(p, '\t');

		col[n++] = p;
		if (!t)
			break;
		*t = '\0';
		p = t + 1;
	}
	return n;
}

/* ---- HTTP ---- */

static size_t on_data(char *p, size_t size, size_t nm, void *ud)
{
	struct chbuf *b = ud;
	size_t n = size * nm;

	if (b->err || vec_reserve((void **)&b->p, &b->cap, b->n + n + 1, 1)) {
		b->err = -ENOMEM;
		return 0;
	}
	memcpy(b->p + b->n, p, n);
	b->n += n;
	b->p[b->n] = '\0';
	return n;
}

int chstore_exec(struct chstore *c, const char *sql, const void *body, size_t len, char **resp,
		 size_t *resplen)
{
	struct chbuf url = {0}, out = {0};
	CURL *h = handle_get(c);
	long status = 0;
	CURLcode rc;
	int err = 0;

	if (resp)
		*resp = NULL;
	if (!h)
		return -ENOMEM;
	chbuf_printf(&url, "%s", c->base);
	if (body) {
		char *q = curl_easy_escape(h, sql, 0);

		chbuf_printf(&url, "&query=%s", q ? q : "");
		if (!q)
			url.err = -ENOMEM;
		curl_free(q);
	}
	if (url.err) {
		err = url.err;
		goto out;
	}
	curl_easy_setopt(h, CURLOPT_URL, url.p);
	curl_easy_setopt(h, CURLOPT_POST, 1L);
	curl_easy_setopt(h, CURLOPT_POSTFIELDS, body ? body : sql);
	curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(body ? len : strlen(sql)));
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)CHSTORE_CONNECT_MS);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)CHSTORE_TIMEOUT_MS);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &out);
	if (c->user) {
		curl_easy_setopt(h, CURLOPT_USERNAME, c->user);
		curl_easy_setopt(h, CURLOPT_PASSWORD, c->password ? c->password : "");
	}
	rc = curl_easy_perform(h);
	if (rc != CURLE_OK) {
		log_msg(FS_LOG_WARN, "event=clickhouse_unreachable error=\"%s\"",
			curl_easy_strerror(rc));
		err = out.err ? out.err : -EBUSY;
		goto out;
	}
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	if (status != 200) {
		log_msg(FS_LOG_WARN, "event=clickhouse_error status=%ld message=\"%.300s\"", status,
			out.p ? out.p : "");
		/* a server that is starting or overloaded answers 503 itself */
		err = status == 503 ? -EBUSY : -EIO;
		goto out;
	}
	if (resp) {
		if (!out.p && (out.p = calloc(1, 1)) == NULL)
			err = -ENOMEM;
		else {
			*resp = out.p;
			if (resplen)
				*resplen = out.n;
			out.p = NULL;
		}
	}
out:
	handle_put(c, h, status == 200 || (status >= 400 && status < 600));
	chbuf_free(&url);
	chbuf_free(&out);
	return err;
}

/* ---- open ---- */

static const char *const schema[] = {
    "CREATE TABLE IF NOT EXISTS %s.series (id UInt64, labels String) "
    "ENGINE = ReplacingMergeTree() ORDER BY id",
    "CREATE TABLE IF NOT EXISTS %s.labelsets (id UInt64, labels String) "
    "ENGINE = ReplacingMergeTree() ORDER BY id",
    "CREATE TABLE IF NOT EXISTS %s.stacks (id UInt64, locs String) "
    "ENGINE = ReplacingMergeTree() ORDER BY id",
    "CREATE TABLE IF NOT EXISTS %s.locations (id UInt64, build_id String, file_off UInt64, "
    "mapping_file String, kernel UInt8, has_frames UInt8, frames String) "
    "ENGINE = ReplacingMergeTree() ORDER BY id",
    "CREATE TABLE IF NOT EXISTS %s.types (id UInt64, name String, unit String, t Int64) "
    "ENGINE = ReplacingMergeTree() ORDER BY id",
    "CREATE TABLE IF NOT EXISTS %s.label_values (name String, value String, sample UInt8) "
    "ENGINE = ReplacingMergeTree() ORDER BY (name, value, sample)",
    "CREATE TABLE IF NOT EXISTS %s.profiles (day Date, ts Int64, type UInt64, series UInt64, "
    "duration Int64, period Int64) "
    "ENGINE = MergeTree() PARTITION BY day ORDER BY (type, series, ts)",
    "CREATE TABLE IF NOT EXISTS %s.samples (day Date, ts Int64, type UInt64, series UInt64, "
    "labelset UInt64, stack UInt64, value Int64) "
    "ENGINE = MergeTree() PARTITION BY day ORDER BY (type, series, ts)",
    /* idempotency keys of stored ingests (chstore_key_seen()); dropped with their day */
    "CREATE TABLE IF NOT EXISTS %s.ingest_keys (day Date, key String, t Int64) "
    "ENGINE = ReplacingMergeTree() PARTITION BY day ORDER BY key",
};

static const char *const table_name[CHT_COUNT_] = {
    "series",	    "labelsets", "stacks",  "locations",  "types",
    "label_values", "profiles",	 "samples", "ingest_keys"};

static int read_auth(struct chstore *c, const char *file)
{
	char line[512], *colon, *nl;
	FILE *f = fopen(file, "re");

	if (!f)
		return -errno;
	if (!fgets(line, sizeof(line), f)) {
		fclose(f);
		return -EINVAL;
	}
	fclose(f);
	nl = strpbrk(line, "\r\n");
	if (nl)
		*nl = '\0';
	colon = strchr(line, ':');
	if (colon)
		*colon = '\0';
	c->user = strdup(line);
	c->password = strdup(colon ? colon + 1 : "");
	explicit_bzero(line, sizeof(line));
	return c->user && c->password ? 0 : -ENOMEM;
}

int chstore_open(const char *url, const char *auth_file, struct chstore **out)
{
	struct chstore *c;
	const char *hp, *slash;
	char sql[512];
	size_t dl;
	int err = 0;

	*out = NULL;
	if (!chstore_is_url(url))
		return -EINVAL;
	hp = url + 13;
	slash = strchr(hp, '/');
	if (!slash || slash == hp)
		return -EINVAL;
	dl = strlen(slash + 1);
	if (!dl || dl >= 64 ||
	    strspn(slash + 1, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
			      "0123456789_") != dl)
		return -EINVAL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	memcpy(c->db, slash + 1, dl + 1);
	pthread_mutex_init(&c->lock, NULL);
	pthread_mutex_init(&c->stacks.lock, NULL);
	pthread_mutex_init(&c->locs.lock, NULL);
	/* IN lists of a query's ids (stacks, locations, series) pass the default 256 KiB query
	 * size and 50,000 AST elements */
	if (asprintf(&c->base,
		     "http://%.*s/"
		     "?max_query_size=1073741824&max_ast_elements=50000000&max_expanded_ast_"
		     "elements=50000000",
		     (int)(slash - hp), hp) < 0) {
		c->base = NULL;
		err = -ENOMEM;
	}
	if (!err && auth_file)
		err = read_auth(c, auth_file);
	if (!err) {
		snprintf(sql, sizeof(sql), "CREATE DATABASE IF NOT EXISTS %s", c->db);
		err = chstore_exec(c, sql, NULL, 0, NULL, NULL);
	}
	for (size_t i = 0; !err && i < sizeof(schema) / sizeof(schema[0]); i++) {
		snprintf(sql, sizeof(sql), schema[i], c->db);
		err = chstore_exec(c, sql, NULL, 0, NULL, NULL);
	}
	if (err) {
		chstore_close(c);
		return err;
	}
	*out = c;
	return 0;
}

void chstore_close(struct chstore *c)
{
	if (!c)
		return;
	while (c->nidle)
		curl_easy_cleanup(c->idle[--c->nidle]);
	pthread_mutex_destroy(&c->lock);
	pthread_mutex_destroy(&c->stacks.lock);
	pthread_mutex_destroy(&c->locs.lock);
	blobmap_free(&c->stacks.m);
	blobmap_free(&c->locs.m);
	free(c->base);
	free(c->user);
	if (c->password) {
		explicit_bzero(c->password, strlen(c->password));
		free(c->password);
	}
	free(c);
}

int chstore_send(struct chstore *c, struct chbatch *b)
{
	char sql[128];
	int err;

	for (int i = 0; i < CHT_COUNT_; i++)
		if (b->t[i].err)
			return b->t[i].err;
	for (int i = 0; i < CHT_COUNT_; i++) {
		if (!b->t[i].n)
			continue;
		snprintf(sql, sizeof(sql), "INSERT INTO %s.%s FORMAT TabSeparated", c->db,
			 table_name[i]);
		err = chstore_exec(c, sql, b->t[i].p, b->t[i].n, NULL, NULL);
		if (err)
			return err;
	}
	return 0;
}

/* ---- reading ---- */

/* Run SQL (printf-formatted) and hand back the TabSeparated answer in *RESP. */
static int ch_select(struct chstore *c, char **resp, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int ch_select(struct chstore *c, char **resp, const char *fmt, ...)
{
	struct chbuf q = {0};
	va_list ap;
	int n, err;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || (err = vec_reserve((void **)&q.p, &q.cap, (size_t)n + 1, 1)) != 0)
		return -ENOMEM;
	va_start(ap, fmt);
	vsnprintf(q.p, q.cap, fmt, ap);
	va_end(ap);
	err = chstore_exec(c, q.p, NULL, 0, resp, NULL);
	chbuf_free(&q);
	return err;
}

int chstore_key_seen(struct chstore *c, const char *key, int64_t since_ns)
{
	char *resp = NULL;
	int err;

	/* KEY is [A-Za-z0-9._:-] (pstore_ingest_info): safe inside quotes */
	err = ch_select(c, &resp,
			"SELECT count() FROM %s.ingest_keys WHERE key = '%s' AND t >= %" PRId64
			" FORMAT TabSeparated",
			c->db, key, since_ns);
	if (!err)
		err = atoll(resp) > 0;
	free(resp);
	return err;
}

void chstore_key_row(struct chbatch *b, const char *key, int64_t t_ns)
{
	char day[16];

	chstore_day(t_ns, day);
	chbuf_printf(&b->t[CHT_INGEST_KEYS], "%s\t%s\t%" PRId64 "\n", day, key, t_ns);
}

/* One row of a listing decoded from hex. */
static int hexcol(char *col, size_t *len)
{
	long n = unhex(col, strlen(col));

	if (n < 0)
		return -EIO;
	col[n] = '\0';
	*len = (size_t)n;
	return 0;
}

/* The type: its id, name and unit (pstore_query's rule: NULL = cpu if present, else the first
 * seen). */
static int ch_find_type(struct pstore *s, const char *type, uint64_t *id, char *name, char *unit)
{
	char want[64] = "", wunit[64] = "", *resp = NULL, *cur, *col[4];
	const char *colon = type ? strchr(type, ':') : NULL;
	int64_t best_t = 0;
	int best_rank = 2, err;

	*id = 0;
	if (type) {
		snprintf(want, sizeof(want), "%.*s", colon ? (int)(colon - type) : 63, type);
		if (colon)
			snprintf(wunit, sizeof(wunit), "%s", colon + 1);
		snprintf(name, 64, "%s", want);
		snprintf(unit, 64, "%s", wunit);
	}
	err = ch_select(s->ch, &resp,
			"SELECT id, any(name), any(unit), min(t) FROM %s.types GROUP BY id "
			"FORMAT TabSeparated",
			s->ch->db);
	cur = resp;
	while (!err && tsv_row(&cur, col, 4) == 4) {
		size_t nl, ul;
		uint64_t tid = strtoull(col[0], NULL, 10);
		int64_t t = strtoll(col[3], NULL, 10);
		int rank;

		if (hexcol(col[1], &nl) || hexcol(col[2], &ul))
			continue;
		if (type)
			rank =
			    !strcmp(col[1], want) && (!wunit[0] || !strcmp(col[2], wunit)) ? 0 : 2;
		else
			rank = strcmp(col[1], "cpu") != 0;
		if (rank < best_rank ||
		    (rank == best_rank && rank < 2 && (t < best_t || (t == best_t && tid < *id)))) {
			best_rank = rank;
			best_t = t;
			*id = tid;
			snprintf(name, 64, "%s", col[1]);
			snprintf(unit, 64, "%s", col[2]);
		}
	}
	free(resp);
	return err;
}

/* The series matching a selector: per series its group, and the WHERE clauses of the scans. */
struct chsel {
	struct selection sl;
	char *resp; /* the series listing the labels point into */
	struct chser {
		uint64_t id;
		int grp;
		const uint8_t *labels;
		size_t len;
	} * v;
	size_t n, cap;
	struct chbuf where;  /* every selected sample: "(series IN (..)) OR (...)" */
	struct chbuf where0; /* the series of group 0 alone, "" when none */
	struct chbuf all;    /* "series IN (..)" of every selected series */
};

static void chsel_free(struct chsel *cs)
{
	pq_selection_free(&cs->sl);
	free(cs->resp);
	free(cs->v);
	chbuf_free(&cs->where);
	chbuf_free(&cs->where0);
	chbuf_free(&cs->all);
}

static void id_list(struct chbuf *b, const struct chsel *cs, int grp)
{
	int first = 1;

	for (size_t i = 0; i < cs->n; i++)
		if (grp < 0 || cs->v[i].grp == grp) {
			chbuf_printf(b, "%s%" PRIu64, first ? "" : ",", cs->v[i].id);
			first = 0;
		}
}

static int ch_select_series(struct pstore *s, const struct selector *sel, struct chsel *cs)
{
	char *cur, *col[2], *lresp = NULL;
	struct chbuf *ls = NULL;
	size_t total = 0;
	int err;

	err = ch_select(s->ch, &cs->resp,
			"SELECT id, any(labels) FROM %s.series GROUP BY id FORMAT TabSeparated",
			s->ch->db);
	cur = cs->resp;
	while (!err && tsv_row(&cur, col, 2) == 2) {
		struct pairs p = {0};
		size_t len;
		uint64_t mask;
		int g;

		total++;
		if (hexcol(col[1], &len) ||
		    pstore_labels_each((const uint8_t *)col[1], len, pq_add_pair, &p))
			continue;
		if (!pq_series_matches(sel, &p, &mask))
			continue;
		g = pq_group_of(&cs->sl, mask);
		if (g < 0)
			err = g;
		else
			err = VEC_PUSH(cs->v, cs->n, cs->cap,
				       ((struct chser){strtoull(col[0], NULL, 10), g,
						       (const uint8_t *)col[1], len}));
	}
	if (err || !cs->n)
		return err;
	cs->sl.nseries = cs->n;
	/* the label sets each sample-side group allows */
	if (cs->sl.f.ngroups) {
		struct pairs empty = {0};

		ls = calloc(cs->sl.f.ngroups, sizeof(*ls));
		if (!ls)
			return -ENOMEM;
		for (size_t g = 0; g < cs->sl.f.ngroups; g++)
			if (pq_ls_matches(sel, cs->sl.masks[g], &empty))
				chbuf_printf(&ls[g], "0");
		err = ch_select(s->ch, &lresp,
				"SELECT id, any(labels) FROM %s.labelsets GROUP BY id "
				"FORMAT TabSeparated",
				s->ch->db);
		cur = lresp;
		while (!err && tsv_row(&cur, col, 2) == 2) {
			struct pairs p = {0};
			size_t len;

			if (hexcol(col[1], &len) ||
			    pstore_labels_each((const uint8_t *)col[1], len, pq_add_pair, &p))
				continue;
			for (size_t g = 0; g < cs->sl.f.ngroups; g++)
				if (pq_ls_matches(sel, cs->sl.masks[g], &p))
					chbuf_printf(&ls[g], "%s%s", ls[g].n ? "," : "", col[0]);
		}
	}
	if (cs->n == total && !cs->sl.f.ngroups) {
		/* every series, no sample-label matcher: no filter, the scan is the bare GROUP BY
		 * (an IN list of every series costs ClickHouse more than the merge itself) */
		chbuf_printf(&cs->all, "1");
		chbuf_printf(&cs->where, "1");
		chbuf_printf(&cs->where0, "1");
		return cs->all.err ?: cs->where.err ?: cs->where0.err;
	}
	chbuf_printf(&cs->all, "series IN (");
	id_list(&cs->all, cs, -1);
	chbuf_printf(&cs->all, ")");
	for (size_t g = 0; !err && g <= cs->sl.f.ngroups; g++) {
		int any = 0;

		for (size_t i = 0; i < cs->n && !any; i++)
			any = cs->v[i].grp == (int)g;
		if (!any || (g && !ls[g - 1].n))
			continue;
		chbuf_printf(&cs->where, "%s(series IN (", cs->where.n ? " OR " : "");
		id_list(&cs->where, cs, (int)g);
		if (g) {
			chbuf_printf(&cs->where, ") AND labelset IN (%s))", ls[g - 1].p);
		} else {
			chbuf_printf(&cs->where, "))");
			chbuf_printf(&cs->where0, "series IN (");
			id_list(&cs->where0, cs, 0);
			chbuf_printf(&cs->where0, ")");
		}
	}
	for (size_t g = 0; ls && g < cs->sl.f.ngroups; g++)
		chbuf_free(&ls[g]);
	free(ls);
	free(lresp);
	if (!err)
		err = cs->where.err ?: cs->where0.err ?: cs->all.err;
	return err;
}

/* ---- pstore_query ---- */

struct idrow {
	uint64_t id;
	int64_t v;
};


/* The rows of the N ids at IDS (STRIDE bytes apart) of dictionary D into OUT (id -> the row's
 * columns after the id, NUL-terminated; NCOL columns in all): the kept ones from D's cache, the
 * others from TABLE, which are kept then. HEX: the one column is hex, and OUT gets it decoded.
 * An id ClickHouse does not have is not in OUT. */
static int dict_rows(struct chstore *c, struct dictcache *d, const char *table, const char *cols,
		     int ncol, int hex, const void *ids, size_t n, size_t stride, struct blobmap *out)
{
	struct chbuf miss = {0};
	char *resp = NULL, *cur, *col[8];
	size_t first;
	int err = dict_lookup(d, ids, n, stride, out, &miss);

	if (err || !miss.n)
		goto out;
	err = ch_select(c, &resp, "SELECT id, %s FROM %s.%s WHERE id IN (%s) GROUP BY id "
			"FORMAT TabSeparated", cols, c->db, table, miss.p);
	first = out->n;
	cur = resp;
	while (!err && tsv_row(&cur, col, ncol + 1) == ncol + 1) {
		size_t len;

		if (hex && hexcol(col[1], &len))
			continue;
		if (!hex) { /* the columns after the id, tabs put back */
			len = (size_t)(col[ncol] + strlen(col[ncol]) - col[1]);
			for (int k = 2; k <= ncol; k++)
				col[k][-1] = '\t';
		}
		err = blob_add(out, strtoull(col[0], NULL, 10), col[1], len);
	}
	if (!err)
		dict_keep(d, out, first);
out:
	free(resp);
	chbuf_free(&miss);
	return err;
}

static int ch_merge(struct pstore *s, struct result_priv *rp, uint64_t tid, int64_t from,
		    int64_t to, const struct chsel *cs, size_t max_stacks)
{
	struct pstore_result *r = &rp->r;
	struct merge m = {.rp = rp};
	struct idrow *rows = NULL;
	size_t nrows = 0, rcap = 0;
	struct blobmap stacks = {0}, locs = {0};
	uint64_t *lids = NULL;
	char *resp = NULL, *cur, *col[7];
	int err;

	err = ch_select(s->ch, &resp,
			"SELECT stack, sum(value) AS v FROM %s.samples WHERE type = %" PRIu64
			" AND ts >= %" PRId64 " AND ts < %" PRId64
			" AND (%s) GROUP BY stack HAVING v != 0 FORMAT TabSeparated",
			s->ch->db, tid, from, to, cs->where.p);
	cur = resp;
	while (!err && tsv_row(&cur, col, 2) == 2) {
		if (nrows >= max_stacks)
			err = -E2BIG;
		else
			err = VEC_PUSH(rows, nrows, rcap,
				       ((struct idrow){strtoull(col[0], NULL, 10),
						       strtoll(col[1], NULL, 10)}));
	}
	if (err || !nrows)
		goto out;
	/* the stacks' location lists */
	err = dict_rows(s->ch, &s->ch->stacks, "stacks", "any(locs)", 1, 1, &rows[0].id, nrows,
			sizeof(rows[0]), &stacks);
	for (size_t i = 0; !err && i < nrows; i++) {
		size_t len;
		const uint8_t *p = (const uint8_t *)blob_get(&stacks, rows[i].id, &len);

		if (p) /* else a stack row not there yet: cannot be, it is sent first */
			err = pq_merge_stack(&m, p, p + len, rows[i].v);
	}
	for (size_t i = 0; !err && i < r->nstacks; i++)
		r->stacks[i].locs = rp->locidx + m.offs[i];
	if (err || !r->nlocs)
		goto out;
	/* the distinct locations */
	lids = malloc(r->nlocs * sizeof(*lids));
	if (!lids) {
		err = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < r->nlocs; i++)
		lids[i] = (uint64_t)r->locs[i].id;
	err = dict_rows(s->ch, &s->ch->locs, "locations",
			"any(build_id), any(file_off), any(mapping_file), any(kernel), "
			"any(has_frames), any(frames)",
			6, 0, lids, r->nlocs, sizeof(*lids), &locs);
	for (size_t i = 0; !err && i < r->nlocs; i++) {
		struct pstore_loc *l = &r->locs[i];
		size_t bl, ml, fl, len;
		char *row = blob_get(&locs, lids[i], &len);

		l->mapping_file = "[location missing from the store]";
		cur = row;
		if (!row || tsv_row(&cur, col + 1, 6) != 6 || hexcol(col[1], &bl) ||
		    hexcol(col[3], &ml) || hexcol(col[6], &fl))
			continue;
		snprintf(l->build_id, sizeof(l->build_id), "%s", col[1]);
		l->file_off = strtoull(col[2], NULL, 10);
		l->mapping_file = pq_arena_str(rp, col[3], ml);
		l->kernel = atoi(col[4]);
		if (!l->mapping_file)
			err = -ENOMEM;
		else if (atoi(col[5]))
			err = pq_decode_frames(rp, l, (const uint8_t *)col[6], fl);
	}
out:
	free(resp);
	free(rows);
	free(lids);
	blobmap_free(&stacks);
	blobmap_free(&locs);
	free(m.offs);
	u64map_free(&m.locs);
	return err;
}

static int ch_count(struct pstore *s, uint64_t tid, int64_t from, int64_t to,
		    const struct chsel *cs, struct pstore_result *r)
{
	char *resp = NULL, *cur, *col[4];
	int err;

	err = ch_select(s->ch, &resp,
			"SELECT count(), max(period), min(ts), sum(duration) FROM %s.profiles "
			"WHERE type = %" PRIu64 " AND ts >= %" PRId64 " AND ts < %" PRId64
			" AND %s FORMAT TabSeparated",
			s->ch->db, tid, from, to, cs->all.p);
	cur = resp;
	if (!err && tsv_row(&cur, col, 4) == 4) {
		r->nprofiles = strtoull(col[0], NULL, 10);
		if (r->nprofiles) {
			r->period = strtoll(col[1], NULL, 10);
			r->time_nanos = strtoll(col[2], NULL, 10);
			r->duration_nanos = strtoll(col[3], NULL, 10);
		}
	}
	free(resp);
	return err;
}

int chstore_query(struct pstore *s, const struct selector *sel, int64_t from_ns, int64_t to_ns,
		  const char *type, size_t max_stacks, struct pstore_result **out)
{
	struct result_priv *rp;
	struct chsel cs = {0};
	uint64_t tid;
	int err;

	*out = NULL;
	rp = calloc(1, sizeof(*rp));
	if (!rp)
		return -ENOMEM;
	err = ch_find_type(s, type, &tid, rp->r.sample_type, rp->r.sample_unit);
	if (!err && tid)
		err = ch_select_series(s, sel, &cs);
	if (!err && tid && cs.n)
		err = ch_count(s, tid, from_ns, to_ns, &cs, &rp->r);
	if (!err && rp->r.nprofiles && cs.where.n)
		err = ch_merge(s, rp, tid, from_ns, to_ns, &cs,
			       max_stacks ? max_stacks : PSTORE_DEFAULT_MAX_STACKS);
	chsel_free(&cs);
	if (err) {
		pstore_result_free(&rp->r);
		return err;
	}
	*out = &rp->r;
	return 0;
}

/* ---- listings ---- */

static int str_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The hex strings of the first column of RESP, decoded, sorted, distinct, into OUT. */
static int strings_of(char *resp, struct pstore_strings *out)
{
	char *cur = resp, *col[1];
	size_t cap = 0, len, n = 0;
	int err = 0;

	while (!err && tsv_row(&cur, col, 1) == 1)
		if (!hexcol(col[0], &len) && !memchr(col[0], '\0', len))
			err = pq_strings_add(out, &cap, col[0]);
	if (err)
		return err;
	if (out->n)
		qsort(out->v, out->n, sizeof(*out->v), str_cmp);
	for (size_t i = 0; i < out->n; i++) {
		if (n && !strcmp(out->v[n - 1], out->v[i]))
			free(out->v[i]);
		else
			out->v[n++] = out->v[i];
	}
	out->n = n < PSTORE_MAX_LISTED ? n : PSTORE_MAX_LISTED;
	for (size_t i = out->n; i < n; i++)
		free(out->v[i]);
	return 0;
}

int chstore_labels(struct pstore *s, struct pstore_strings *out)
{
	char *resp = NULL;
	int err =
	    ch_select(s->ch, &resp, "SELECT DISTINCT name FROM %s.label_values FORMAT TabSeparated",
		      s->ch->db);

	if (!err)
		err = strings_of(resp, out);
	free(resp);
	if (err)
		pstore_strings_free(out);
	return err;
}

int chstore_label_values(struct pstore *s, const char *name, struct pstore_strings *out)
{
	struct chbuf h = {0};
	char *resp = NULL;
	int err;

	chbuf_hex(&h, name, strlen(name));
	err = h.err
		  ?: ch_select(s->ch, &resp,
			       "SELECT DISTINCT value FROM %s.label_values WHERE name = '%s' "
			       "FORMAT TabSeparated",
			       s->ch->db, h.p ? h.p : "");
	if (!err)
		err = strings_of(resp, out);
	free(resp);
	chbuf_free(&h);
	if (err)
		pstore_strings_free(out);
	return err;
}

struct tpair {
	char *name, *unit;
};

static int tpair_cmp(const void *a, const void *b)
{
	const struct tpair *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	return c ? c : strcmp(x->unit, y->unit);
}

int chstore_types(struct pstore *s, struct pstore_strings *out)
{
	struct tpair *t = NULL;
	size_t n = 0, tcap = 0, cap = 0, len;
	char *resp = NULL, *cur, *col[2];
	int err;

	err = ch_select(s->ch, &resp,
			"SELECT DISTINCT name, unit FROM %s.types FORMAT TabSeparated", s->ch->db);
	cur = resp;
	while (!err && tsv_row(&cur, col, 2) == 2)
		if (!hexcol(col[0], &len) && !hexcol(col[1], &len))
			err = VEC_PUSH(t, n, tcap, ((struct tpair){col[0], col[1]}));
	if (!err && n)
		qsort(t, n, sizeof(*t), tpair_cmp);
	for (size_t i = 0; !err && i < n; i++)
		err = pq_strings_add(out, &cap, t[i].name) ?: pq_strings_add(out, &cap, t[i].unit);
	free(t);
	free(resp);
	if (err)
		pstore_strings_free(out);
	return err;
}

struct pair_sink {
	struct pstore_strings *l;
	size_t cap;
	int err;
};

static int copy_pair(void *ctx, const char *name, const char *value)
{
	struct pair_sink *p = ctx;

	p->err = pq_strings_add(p->l, &p->cap, name) ?: pq_strings_add(p->l, &p->cap, value);
	return p->err;
}

static int chser_cmp(const void *a, const void *b)
{
	const struct chser *x = a, *y = b;
	int c = memcmp(x->labels, y->labels, x->len < y->len ? x->len : y->len);

	return c ? c : (x->len > y->len) - (x->len < y->len);
}

/* Add the series ids of the first column of SQL's answer to SET. */
static int id_set(struct pstore *s, struct u64map *set, const char *sql)
{
	char *resp = NULL, *cur, *col[1];
	int err = chstore_exec(s->ch, sql, NULL, 0, &resp, NULL);

	cur = resp;
	while (!err && tsv_row(&cur, col, 1) == 1)
		err = u64map_put(set, strtoull(col[0], NULL, 10), 1);
	free(resp);
	return err;
}

int chstore_series(struct pstore *s, const struct selector *sel, int64_t from_ns, int64_t to_ns,
		   struct pstore_series_list *out)
{
	struct u64map has = {0}, fi = {0};
	struct chsel cs = {0};
	struct chbuf q = {0};
	int64_t *first = NULL, *last = NULL;
	char *resp = NULL, *cur, *col[3];
	size_t cap = 0, nseen = 0, fcap = 0, lcap = 0;
	int err;

	err = ch_select_series(s, sel, &cs);
	if (err || !cs.n)
		goto out;
	if (cs.where0.n) {
		chbuf_printf(&q,
			     "SELECT DISTINCT series FROM %s.profiles WHERE ts >= %" PRId64
			     " AND ts < %" PRId64 " AND %s FORMAT TabSeparated",
			     s->ch->db, from_ns, to_ns, cs.where0.p);
		err = q.err ?: id_set(s, &has, q.p);
	}
	if (!err && cs.where.n) {
		q.n = 0;
		chbuf_printf(&q,
			     "SELECT DISTINCT series FROM %s.samples WHERE ts >= %" PRId64
			     " AND ts < %" PRId64 " AND (%s) FORMAT TabSeparated",
			     s->ch->db, from_ns, to_ns, cs.where.p);
		err = q.err ?: id_set(s, &has, q.p);
	}
	if (!err)
		err = ch_select(s->ch, &resp,
				"SELECT series, min(ts), max(ts) FROM %s.profiles WHERE %s "
				"GROUP BY series FORMAT TabSeparated",
				s->ch->db, cs.all.p);
	cur = resp;
	while (!err && tsv_row(&cur, col, 3) == 3) {
		err = u64map_put(&fi, strtoull(col[0], NULL, 10), (uint32_t)nseen);
		if (!err)
			err = VEC_PUSH(first, nseen, fcap, strtoll(col[1], NULL, 10));
		if (!err) {
			nseen--;
			err = VEC_PUSH(last, nseen, lcap, strtoll(col[2], NULL, 10));
		}
	}
	if (err)
		goto out;
	qsort(cs.v, cs.n, sizeof(*cs.v), chser_cmp);
	for (size_t i = 0; !err && i < cs.n && out->n < PSTORE_MAX_LISTED; i++) {
		struct pstore_series_info si = {0};
		struct pair_sink ps = {&si.labels};
		uint32_t k;

		if (!u64map_has(&has, cs.v[i].id) || !u64map_get(&fi, cs.v[i].id, &k))
			continue;
		si.first_seen_ns = first[k];
		si.last_seen_ns = last[k];
		pstore_labels_each(cs.v[i].labels, cs.v[i].len, copy_pair, &ps);
		err = ps.err ?: VEC_PUSH(out->v, out->n, cap, si);
		if (err)
			pstore_strings_free(&si.labels);
	}
out:
	if (err)
		pstore_series_list_free(out);
	u64map_free(&has);
	u64map_free(&fi);
	free(first);
	free(last);
	free(resp);
	chbuf_free(&q);
	chsel_free(&cs);
	return err;
}

int chstore_timeline(struct pstore *s, const struct selector *sel, int64_t from_ns, int64_t to_ns,
		     int64_t step_ns, const char *type, int64_t **values, size_t *n)
{
	struct chsel cs = {0};
	char tname[64], tunit[64], *resp = NULL, *cur, *col[2];
	int64_t *buckets;
	uint64_t tid = 0;
	size_t nb;
	int err;

	*values = NULL;
	*n = 0;
	if (step_ns <= 0 || to_ns <= from_ns)
		return -EINVAL;
	if ((uint64_t)(to_ns - from_ns) / (uint64_t)step_ns >= PSTORE_MAX_TIMELINE_POINTS)
		return -E2BIG;
	nb = (size_t)((to_ns - from_ns + step_ns - 1) / step_ns);
	buckets = calloc(nb, sizeof(*buckets));
	if (!buckets)
		return -ENOMEM;
	err = ch_find_type(s, type, &tid, tname, tunit);
	if (!err && tid)
		err = ch_select_series(s, sel, &cs);
	if (!err && tid && cs.where.n)
		err = ch_select(s->ch, &resp,
				"SELECT intDiv(ts - %" PRId64 ", %" PRId64
				") AS b, sum(value) FROM %s.samples WHERE type = %" PRIu64
				" AND ts >= %" PRId64 " AND ts < %" PRId64
				" AND (%s) GROUP BY b FORMAT TabSeparated",
				from_ns, step_ns, s->ch->db, tid, from_ns, to_ns, cs.where.p);
	cur = resp;
	while (!err && tsv_row(&cur, col, 2) == 2) {
		int64_t b = strtoll(col[0], NULL, 10);

		if (b >= 0 && (size_t)b < nb)
			buckets[b] += strtoll(col[1], NULL, 10);
	}
	free(resp);
	chsel_free(&cs);
	if (err) {
		free(buckets);
		return err;
	}
	*values = buckets;
	*n = nb;
	return 0;
}

int chstore_retain(struct pstore *s, int64_t cutoff_ns)
{
	char cut[16], *resp = NULL, *cur, *col[2], sql[256];
	int err;

	chstore_day(cutoff_ns, cut);
	err = ch_select(s->ch, &resp,
			"SELECT DISTINCT table, partition FROM system.parts WHERE database = '%s' "
			"AND table IN ('profiles', 'samples', 'ingest_keys') AND active "
			"FORMAT TabSeparated",
			s->ch->db);
	cur = resp;
	while (!err && tsv_row(&cur, col, 2) == 2) {
		/* a day partition goes when all of its day is older than the cutoff */
		if (strlen(col[1]) != 10 || strcmp(col[1], cut) >= 0)
			continue;
		snprintf(sql, sizeof(sql), "ALTER TABLE %s.%s DROP PARTITION '%s'", s->ch->db,
			 col[0], col[1]);
		err = chstore_exec(s->ch, sql, NULL, 0, NULL, NULL);
		if (!err)
			log_msg(FS_LOG_INFO, "event=retention table=%s dropped_day=%s", col[0],
				col[1]);
	}
	free(resp);
	return err;
}
