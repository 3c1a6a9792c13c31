/*
 * chstore - the profile store's ClickHouse backend: the HTTP client (libcurl, a deadline on
 * every call), the schema, the rows one ingest sends, and the pstore_* queries answered from
 * ClickHouse. pstore_open() picks it for a clickhouse://HOST:PORT/DB URL; profstore.c's public
 * functions dispatch here when s->ch is set, so the HTTP layer sees one API.
 *
 * Schema (SQL that runs on 18.16 and current releases: no TTL, CODEC, Map, JSON, DateTime64,
 * LowCardinality). Ids are 64-bit content hashes (pstore_hash() of the same keys the sqlite
 * store uses, top bit clear), so replicas sharing one ClickHouse need no coordination. The
 * dictionaries (series, labelsets, stacks, locations, types, label_values) are
 * ReplacingMergeTree keyed by id, read with GROUP BY id; binary keys and every text column
 * travel hex-encoded (TabSeparated needs no escaping then). profiles (one row per profile and
 * sample type) and samples (one row per stack and label set) are MergeTree PARTITION BY day
 * ORDER BY (type, series, ts); retention drops whole day partitions.
 *
 * Errors: ClickHouse unreachable or past the deadline -EBUSY (the HTTP layer answers 503);
 * ClickHouse refusing a statement -EIO (logged with its message).
 * Thread-safety: every function may be called from any thread; a call takes an idle curl
 * handle (its connection kept alive) or makes one.
 */
#ifndef FLEETSYM_CHSTORE_H
#define FLEETSYM_CHSTORE_H

#include <stddef.h>
#include <stdint.h>

#include "symbolizer/store/profstore.h"

struct chstore;

#define CHSTORE_CONNECT_MS 2000	 /* connect timeout of one call */
#define CHSTORE_TIMEOUT_MS 15000 /* whole-call deadline */

/* 1 when URL names the ClickHouse backend (clickhouse://...). */
int chstore_is_url(const char *url);

/* Parse clickhouse://HOST:PORT/DB, read USER:PASSWORD from AUTH_FILE (may be NULL: the
 * default user), create the database and tables if missing. -EINVAL for a bad URL or auth
 * file, -EBUSY when ClickHouse does not answer. */
int chstore_open(const char *url, const char *auth_file, struct chstore **out)
    __attribute__((warn_unused_result));
void chstore_close(struct chstore *c);

/* Run SQL (with BODY of LEN bytes as its data when BODY is set: an INSERT's rows). *RESP, when
 * RESP is set, gets the malloc'd answer (NUL-terminated; caller frees). */
int chstore_exec(struct chstore *c, const char *sql, const void *body, size_t len, char **resp,
		 size_t *resplen) __attribute__((warn_unused_result));

/* ---- one ingest's rows ---- */

enum chtable {
	CHT_SERIES,
	CHT_LABELSETS,
	CHT_STACKS,
	CHT_LOCATIONS,
	CHT_TYPES,
	CHT_LABEL_VALUES,
	CHT_PROFILES,
	CHT_SAMPLES,
	CHT_INGEST_KEYS, /* last: a key is stored after its profile */
	CHT_COUNT_
};

/* A growable text buffer; an allocation failure sticks in ERR. */
struct chbuf {
	char *p;
	size_t n, cap;
	int err;
};

void chbuf_printf(struct chbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void chbuf_hex(struct chbuf *b, const void *p, size_t n);
/* Room for N more bytes (appends below then need no reallocation). */
void chbuf_reserve(struct chbuf *b, size_t n);
/* Append N bytes of P; V in decimal followed by the character END. */
void chbuf_raw(struct chbuf *b, const void *p, size_t n);
void chbuf_i64(struct chbuf *b, int64_t v, char end);
void chbuf_free(struct chbuf *b);

/* TabSeparated rows per table; send them (dictionaries first, samples last) in one INSERT per
 * table with chstore_send(). */
struct chbatch {
	struct chbuf t[CHT_COUNT_];
};

int chstore_send(struct chstore *c, struct chbatch *b) __attribute__((warn_unused_result));
void chbatch_free(struct chbatch *b);

/* Idempotency keys (pstore_ingest_info.key): whether KEY was stored at or after SINCE_NS (1, 0
 * or a negative errno), and its row (stored at T_NS) added to B. chstore_send() inserts the
 * keys after the profiles, so a crash between the two stores a resent profile again (at least
 * once, never lost). */
int chstore_key_seen(struct chstore *c, const char *key, int64_t since_ns)
    __attribute__((warn_unused_result));
void chstore_key_row(struct chbatch *b, const char *key, int64_t t_ns);

/* "YYYY-MM-DD" (UTC) of TS_NS into OUT. */
void chstore_day(int64_t ts_ns, char out[16]);

/* ---- the pstore_* functions on ClickHouse (profstore.h has their contracts) ---- */

int chstore_query(struct pstore *s, const struct selector *sel, int64_t from_ns, int64_t to_ns,
		  const char *type, size_t max_stacks, struct pstore_result **out);
int chstore_labels(struct pstore *s, struct pstore_strings *out);
int chstore_label_values(struct pstore *s, const char *name, struct pstore_strings *out);
int chstore_types(struct pstore *s, struct pstore_strings *out);
int chstore_series(struct pstore *s, const struct selector *sel, int64_t from_ns, int64_t to_ns,
		   struct pstore_series_list *out);
int chstore_timeline(struct pstore *s, const struct selector *sel, int64_t from_ns, int64_t to_ns,
		     int64_t step_ns, const char *type, int64_t **values, size_t *n);
/* Drop the day partitions wholly older than CUTOFF_NS. */
int chstore_retain(struct pstore *s, int64_t cutoff_ns);

#endif
