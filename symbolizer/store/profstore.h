/*
 * profstore - the thin profile store (sqlite3, WAL) under <data-dir>/profiles.db: series
 * (canonical label sets), profiles (time, duration, sample type/unit, period), deduplicated
 * stacks and locations, samples with their per-sample label sets. Locations stay raw — a build
 * ID and a normalised ELF address — so symbolization happens at query time and improves as
 * debug info arrives. A raw location is (build ID, file offset): the offset is all the agent
 * can know without the ELF, and profiles arrive before (or without) debug info; the query side
 * turns it into an ELF address through the PT_LOAD headers of the file it symbolizes with.
 * Pre-symbolized frames (Go's runtime/pprof, SDK pushes, kernel frames
 * named by the agent) are stored by name.
 *
 * Queries select profiles by a label selector and a time window, of one sample type, and
 * merge them by stack in SQL before anything is symbolized: the result holds each distinct
 * stack once with its summed value and each distinct location once. The store returns data;
 * what the HTTP API makes of it (JSON) is written in symbolizer/http/.
 *
 * With opts.store_url clickhouse://... the same functions answer from ClickHouse (chstore.h):
 * the same answers, except that an idempotency key is written after its profile (a crash
 * between the two stores a resent profile again) and retention drops whole days.
 *
 * Thread-safety: every function may be called from any number of threads at once. Writes
 * (ingest, retention) are serialised on one write connection under a mutex; queries and
 * listings each borrow a read connection from a pool (WAL: readers never wait for the
 * writer). A struct pstore_result belongs to its caller and is not shared.
 */
#ifndef FLEETSYM_PROFSTORE_H
#define FLEETSYM_PROFSTORE_H

#include <stddef.h>
#include <stdint.h>

#include "lib/buildid.h"

struct pstore;
struct selector; /* selector.h: {name="v", name!="v", name=~"re", name!~"re", ...} */

struct pstore_opts {
	const char *data_dir;	/* required */
	int64_t retention_s;	/* profiles older than this are deleted; 0 = 7 days */
	size_t max_ingest_size; /* bytes of (decompressed) pprof per request; 0 = 64 MiB */
	int retain_interval_s;	/* run pstore_retain() in a background thread this often
				 * (and once at open); 0 = never (callers run it) */
	/* Bytes that all ingests in progress may decode into together (gunzip'd body and the
	 * unpacked profile); an ingest that would pass it while others hold memory gets -EBUSY
	 * (retry later), one that would pass it alone -ERR_TOOBIG. 0 = no shared budget. */
	uint64_t decode_budget;
	/* Free bytes that ingest leaves on the data dir's file system: an ingest that finds less
	 * gets -ENOSPC (with a message) before anything is decoded or written, so that the
	 * WAL checkpoint and queries' temp space keep room. 0 = none. */
	uint64_t reserve;
	/* Where profiles live: NULL or "sqlite:" the sqlite file under DATA_DIR (the default),
	 * "clickhouse://HOST:PORT/DB" ClickHouse's HTTP interface (chstore.h), with user and
	 * password from STORE_AUTH_FILE (one line USER:PASSWORD; NULL: the default user). */
	const char *store_url;
	const char *store_auth_file;
};

/* Caps on one ingested profile (-ERR_TOOBIG or -ERR_BADINPUT beyond, with a message).
 * Strings longer than PSTORE_MAX_STRING (function and file names, label values) are cut at
 * a UTF-8 character boundary; stacks deeper than PSTORE_MAX_DEPTH keep their innermost
 * PSTORE_MAX_DEPTH - 1 frames and get the named root frame "[truncated]". */
#define PSTORE_MAX_SAMPLE_TYPES	 16
#define PSTORE_MAX_SAMPLES	 2000000
#define PSTORE_MAX_LOCATIONS	 2000000
#define PSTORE_MAX_FUNCTIONS	 2000000
#define PSTORE_MAX_MAPPINGS	 65536
#define PSTORE_MAX_DEPTH	 1024
#define PSTORE_MAX_INLINE	 64 /* Lines (inline frames) kept per location */
#define PSTORE_MAX_SAMPLE_LABELS 64 /* per sample; more are dropped */
#define PSTORE_MAX_SERIES_LABELS 64
#define PSTORE_MAX_LABEL_NAME	 128
#define PSTORE_MAX_LABEL_VALUE	 1024
#define PSTORE_MAX_STRING	 4096

/* Counters for /metrics (monotonic since open). */
struct pstore_stats {
	uint64_t ingests;	  /* profiles ingested (requests that stored something) */
	uint64_t ingest_rejected; /* ingests refused as bad input or over a cap */
	uint64_t ingest_failed;	  /* ingests that failed inside the store (I/O, memory) */
	uint64_t profile_rows;	  /* profile rows written: one per sample type */
	uint64_t samples;	  /* pprof samples read from ingested profiles */
	uint64_t decoded_bytes;	  /* bytes of (decompressed) pprof decoded */
	uint64_t truncated_stacks;
	uint64_t ingest_commits; /* transactions (ClickHouse: batches of INSERTs) that wrote
				  * ingests: fewer than ingests when concurrent ones shared one */
	uint64_t retain_runs;
	uint64_t retained_profiles; /* profile rows deleted by retention */
};

/* Open or create the store in opts->data_dir. When an existing store cannot be written (a full
 * disk: opening may need to write; a read-only file system or file), it opens read-only and
 * says so in the log: queries answer, ingests fail with that error (-ENOSPC, -EROFS, -EACCES,
 * -EPERM) and retry the writer at most every 2 s, so the store takes ingests again once space
 * is freed or the file system is writable, without a restart. */
int pstore_open(const struct pstore_opts *opts, struct pstore **out)
    __attribute__((warn_unused_result));

/* 0 when the store can write, else why it is read-only (a negative errno, see pstore_open). */
int pstore_read_only(const struct pstore *s);

/* 1 while the ClickHouse backend is taken as down (a call found it unreachable or past its
 * deadline less than 2 s ago, or a send has been running for longer): ingests answer -EBUSY at
 * once meanwhile. 0 with sqlite. */
int pstore_backend_down(struct pstore *s);
void pstore_close(struct pstore *s);

/* One label. */
struct pstore_label {
	const char *name;
	const char *value;
};

/*
 * Ingest one pprof profile (BODY, LEN bytes; gzip'd or not) for the series SERIES (NSERIES
 * labels; names [a-zA-Z_][a-zA-Z0-9_]*, at most 64). Each of the profile's sample types is
 * stored as its own profile row. Locations in mappings with a build ID are stored raw as
 * (build ID, file_off = address - memory_start + file_offset); locations with Lines and no
 * usable build ID are stored by function name; anything else keeps the mapping's file name and
 * the address, so that it renders as "file+0xaddr", never dropped.
 * Durable on return (the transaction committed). -ERR_BADINPUT with a message in ERRBUF for
 * garbage, -ERR_TOOBIG over the cap.
 */
int pstore_ingest(struct pstore *s, const struct pstore_label *series, size_t nseries,
		  const void *body, size_t len, char *errbuf, size_t errlen)
    __attribute__((warn_unused_result));

/* What one ingest stored (additions). */
struct pstore_ingest_info {
	/* In: the producer's idempotency key (1-128 of [A-Za-z0-9._:-]), or NULL. A profile whose
	 * key was stored within the last hour is not stored again: the ingest succeeds with
	 * DUPLICATE set, so a retry after a lost reply stores it once. */
	const char *key;
	/* Out: */
	int duplicate;
	size_t profiles;  /* profile rows stored: one per sample type */
	size_t samples;	  /* samples of the pprof */
	int64_t time_ns;  /* the profile's time (the ingest time when it had none) */
	size_t truncated; /* stacks cut at PSTORE_MAX_DEPTH */
};

/* pstore_ingest() with an idempotency key and what was stored (INFO may be NULL; its key is
 * read, the rest written). */
int pstore_ingest_ex(struct pstore *s, const struct pstore_label *series, size_t nseries,
		     const void *body, size_t len, struct pstore_ingest_info *info, char *errbuf,
		     size_t errlen) __attribute__((warn_unused_result));

/* A snapshot of the counters. */
void pstore_stats(struct pstore *s, struct pstore_stats *out);

/* A frame stored by name (pre-symbolized producers, kernel frames). */
struct pstore_named_frame {
	const char *function;
	const char *file; /* may be NULL */
	int64_t line;
};

/* A distinct location of a query result. */
struct pstore_loc {
	int64_t id;
	char build_id[BUILDID_HEX_MAX]; /* "" for named locations */
	uint64_t file_off;		/* raw locations: offset in the ELF file */
	const char *mapping_file;	/* the file name the agent saw, for unknown frames */
	const struct pstore_named_frame *frames; /* innermost first; NULL for raw locations
						  * (a raw location whose producer also sent
						  * function names has them here: a fallback) */
	size_t nframes;
	int kernel;
};

/* A distinct stack of a query result: location indexes into result->locs, leaf first. */
struct pstore_stack {
	const uint32_t *locs;
	size_t nlocs;
	int64_t value;
};

struct pstore_result {
	struct pstore_loc *locs;
	size_t nlocs;
	struct pstore_stack *stacks;
	size_t nstacks;
	int64_t total;	  /* sum of all stack values */
	size_t nprofiles; /* profiles merged */
	char sample_type[64], sample_unit[64];
	int64_t period;
	/* The merged profiles' own time as pprof merges headers: the earliest time_nanos and
	 * the sum of their durations (saturating). 0 and 0 when nothing was merged. */
	int64_t time_nanos, duration_nanos;
};

/*
 * Merge every profile of sample type TYPE (NULL: the first type present, cpu if any) whose
 * series or samples match SEL (NULL: all) within [FROM_NS, TO_NS). Sets *OUT (free with
 * pstore_result_free()). MAX_STACKS caps the result (-E2BIG beyond).
 */
int pstore_query(struct pstore *s, const struct selector *sel, int64_t from_ns, int64_t to_ns,
		 const char *type, size_t max_stacks, struct pstore_result **out)
    __attribute__((warn_unused_result));
void pstore_result_free(struct pstore_result *r);

/* Strings a listing returns, each malloc'd; free all with pstore_strings_free(). */
struct pstore_strings {
	char **v;
	size_t n;
};

void pstore_strings_free(struct pstore_strings *l);

/* Label names, and the values of label NAME, sorted. Fill *OUT (zero-initialised by the
 * caller). */
int pstore_labels(struct pstore *s, struct pstore_strings *out) __attribute__((warn_unused_result));
int pstore_label_values(struct pstore *s, const char *name, struct pstore_strings *out)
    __attribute__((warn_unused_result));

/* The sample types present, as pairs: v[2i] is a type's name, v[2i + 1] its unit. */
int pstore_types(struct pstore *s, struct pstore_strings *out) __attribute__((warn_unused_result));

/* A series and the span it was seen over. */
struct pstore_series_info {
	struct pstore_strings labels; /* pairs: v[2i] a name, v[2i + 1] its value; by name */
	int64_t first_seen_ns, last_seen_ns;
};

struct pstore_series_list {
	struct pstore_series_info *v;
	size_t n;
};

void pstore_series_list_free(struct pstore_series_list *l);

/* The series matching SEL with a profile in [FROM_NS, TO_NS), by labels. Fill *OUT
 * (zero-initialised by the caller). */
int pstore_series(struct pstore *s, const struct selector *sel, int64_t from_ns, int64_t to_ns,
		  struct pstore_series_list *out) __attribute__((warn_unused_result));

/* Total value per STEP_NS of the matching profiles of TYPE: *VALUES (malloc'd, caller frees)
 * holds *N totals, the i-th for [FROM_NS + i * STEP_NS, + STEP_NS). -EINVAL for an empty
 * window or step, -E2BIG past the points a timeline has. */
int pstore_timeline(struct pstore *s, const struct selector *sel, int64_t from_ns, int64_t to_ns,
		    int64_t step_ns, const char *type, int64_t **values, size_t *n)
    __attribute__((warn_unused_result));

/* Delete profiles older than the retention and what only they referenced. */
int pstore_retain(struct pstore *s);

#endif
