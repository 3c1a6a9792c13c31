/*
 * resolver - build ID → debug file, in order: the store (uploads and what was fetched before),
 * local debug dirs (.build-id layout), the peer replicas (other fleetsymd, all at once, see
 * peerfetch.h), debuginfod servers (libdebuginfod). What is found outside the store is copied
 * into it (decompressed), so the next request is a store hit.
 *
 * - One fetch in flight per build ID, shared by every caller asking for it (single flight).
 * - At most opts.max_fetches debuginfod fetches at once; each with a deadline
 *   (opts.fetch_timeout_s); a slow or dead server only delays callers of that build ID.
 * - A caller waits at most its own WAIT_MS; the fetch goes on in the background and its result
 *   lands in the store for the next request.
 * - Misses are remembered for opts.negative_ttl_s (with peers, at most opts.peer_negative_ttl_s,
 *   so that an upload to another replica is seen here soon); resolver_forget_negative() (an
 *   upload) drops that at once.
 * - A peer that did not answer (down, stalled, broken) is left out of the rounds for
 *   RESOLVER_PEER_RETRY_S; a peer's miss is final for that round.
 * - libdebuginfod client handles are never shared between threads: a fetch holds one for the
 *   length of its query.
 * - A file fetched from debuginfod is moved out of libdebuginfod's cache into the store, so the
 *   disk holds it once.
 *
 * libdebuginfod reads its settings from the environment on every query, so resolver_new() sets
 * DEBUGINFOD_URLS (from opts), DEBUGINFOD_TIMEOUT (opts.fetch_timeout_s) and, unless the operator
 * set it, DEBUGINFOD_CACHE_PATH (<data-dir>/debuginfod-client): call resolver_new() before the
 * process starts any thread, and have one resolver with debuginfod URLs per process.
 *
 * With peers, the process must have called curl_global_init() before starting any thread.
 *
 * Thread-safe, except resolver_new() and resolver_free() (no resolve may run during free).
 */
#ifndef FLEETSYM_RESOLVER_H
#define FLEETSYM_RESOLVER_H

#include "cache/debugstore.h"
#include "cache/peerfetch.h"

struct resolver;

struct resolver_opts {
	struct dstore *store;	       /* required; borrowed for the resolver's life */
	const char *const *debug_dirs; /* NULL-terminated; NULL = { "/usr/lib/debug", NULL } */
	const char *debuginfod_urls;   /* space-separated; NULL or "" = no debuginfod */
	int max_fetches;	       /* concurrent debuginfod fetches; 0 = 4 */
	int fetch_timeout_s;	       /* per fetch; 0 = 30 */
	int negative_ttl_s;	       /* 0 = 600 */
	const char *const *peers;      /* NULL-terminated base URLs of the other replicas; NULL =
					* none; at most PEERFETCH_MAX_PEERS */
	const char *peer_token;	       /* bearer token sent to peers; NULL = none; borrowed */
	uint64_t peer_max_bytes;       /* largest file taken from a peer; 0 = 4 GiB */
	int peer_stall_ms;	       /* a silent peer is dropped after this; 0 = 5000 */
	int peer_negative_ttl_s;       /* cap on the miss TTL when there are peers; 0 = 60 */
};

#define RESOLVER_PEER_RETRY_S 30 /* a peer that did not answer is not asked for this long */

int resolver_new(const struct resolver_opts *opts, struct resolver **out)
    __attribute__((warn_unused_result));

/* Waits for fetches in flight to stop (they are cancelled), then frees. */
void resolver_free(struct resolver *r);

enum resolver_status {
	RESOLVER_FOUND,	  /* *E is filled */
	RESOLVER_MISSING, /* nowhere (or negatively cached); *REASON says so */
	RESOLVER_PENDING, /* a fetch is still running after WAIT_MS */
};

/* Resolve BUILD_ID (validated with buildid_valid(); -ERR_BADBUILDID otherwise), waiting at most
 * WAIT_MS for a fetch. Returns an enum resolver_status (>= 0) or a negative errno (-EAGAIN when
 * too many build IDs are being resolved at once: try later). *REASON, for MISSING and PENDING,
 * is a static string a person can act on. E may be NULL. */
int resolver_resolve(struct resolver *r, const char *build_id, int wait_ms, struct dstore_entry *e,
		     const char **reason);

/* The same on behalf of CLIENT (a client address; NULL = the service itself): a client may have
 * at most RESOLVER_JOBS_PER_CLIENT build IDs being resolved at once, so that one client with
 * random build IDs cannot take every job slot from the others; past that -EAGAIN, and *REASON
 * says why. */
int resolver_resolve_as(struct resolver *r, const char *client, const char *build_id, int wait_ms,
			struct dstore_entry *e, const char **reason);

#define RESOLVER_MAX_JOBS	 64 /* build IDs being resolved at once; more get -EAGAIN */
#define RESOLVER_JOBS_PER_CLIENT 16 /* of those, started for one client */

/* An upload for BUILD_ID arrived: forget that it was missing. */
void resolver_forget_negative(struct resolver *r, const char *build_id);

struct resolver_stats {
	uint64_t store_hits, local_hits, negative_hits;
	uint64_t fetches, fetch_failures, fetch_ms_total, fetches_in_flight;
	uint64_t busy; /* resolutions refused: no job slot (all taken, or the client's share) */
	/* peers: rounds (one per build ID), requests sent, and what the requests found;
	 * skipped = peers left out of a round because they had not answered before */
	uint64_t peer_fetches, peer_requests, peer_hits, peer_misses, peer_errors, peer_skipped;
};
void resolver_stats(struct resolver *r, struct resolver_stats *st);

#endif
