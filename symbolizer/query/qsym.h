/*
 * qsym - query-time symbolization of a merged profile (a struct pstore_result).
 *
 * Each distinct raw location — (build ID, file offset) — is symbolized once per query, grouped
 * per build ID so that each build ID is resolved once and looked up in one batch: resolver
 * (store → debug dirs → debuginfod) → file offset → ELF address (the stored file's PT_LOAD
 * headers, rebuilt when a debug-only file zeroed them: loadrebuild.h) → opensyms batch lookup.
 *
 * Answers are kept in a results cache, one table per build ID, tagged with the identity of the
 * stored file they came from (path, size, time added, quality). Only answers computed from a
 * file are cached, and only under that file's identity: a build ID that is missing or still
 * being fetched is asked again at every query, and an upload that replaces a file changes its
 * identity, so frames that were unknown resolve at the next query. A table whose file changed
 * is dropped whole. The cap is on cached locations across build IDs; whole tables of the
 * least recently used build IDs go first.
 *
 * Pending build IDs (a debuginfod fetch in flight) get one shared, bounded wait per query
 * (opts.wait_ms); what is still pending then stays unknown and the result is marked partial.
 *
 * Thread-safe: one lock for the table of build IDs, one per build ID for its answers; no lock
 * is held while resolving or symbolizing.
 */
#ifndef FLEETSYM_QSYM_H
#define FLEETSYM_QSYM_H

#include <stddef.h>
#include <stdint.h>

#include "cache/resolver.h"
#include "symbolizer/engine/loadrebuild.h"
#include "symbolizer/store/profstore.h"
#include "lib/strpool.h"
#include "symbolizer/engine/opensyms.h"

struct qsym;

struct qsym_opts {
	struct resolver *resolver; /* required; borrowed for the qsym's life */
	struct opensyms *opensyms; /* required; likewise */
	int wait_ms;		   /* longest a query waits for pending build IDs; 0 = 5000 */
	size_t max_cached;	   /* cached location answers, all build IDs; 0 = 1,000,000 */
	size_t max_frames;	   /* frames in one query's result; 0 = 16 M (-E2BIG beyond) */
};

int qsym_new(const struct qsym_opts *opts, struct qsym **out) __attribute__((warn_unused_result));

/* No qsym_run() may be in progress. */
void qsym_free(struct qsym *q);

/* One frame of a symbolized location. Strings are borrowed from the result. */
struct qsym_frame {
	const char *function; /* never NULL: demangled name, else linkage name, else "??" */
	const char *file;     /* NULL when unknown */
	int64_t line;	      /* 0 when unknown */
	uint32_t column;
	uint8_t inlined; /* inlined into the next (outer) frame */
};

/* How a build ID fared in a query. */
enum qsym_bid_status {
	QSYM_FOUND,   /* debug info found and used (its answers may still be unknown) */
	QSYM_MISSING, /* no debug info anywhere */
	QSYM_PENDING, /* still being fetched when the query's wait ran out */
	QSYM_FAILED,  /* found, but could not be opened or translated */
};

struct qsym_bid {
	char build_id[BUILDID_HEX_MAX];
	enum qsym_bid_status status;
	const char *reason;	  /* why not FOUND; static, or borrowed from the result */
	unsigned quality;	  /* DSTORE_Q_* when found */
	const char *source;	  /* "upload", "local", "debuginfod", "peer" if found; static */
	enum loadrebuild_how map; /* how offsets became addresses */
	size_t nlocs;		  /* distinct locations of this build ID in the result */
	size_t nunknown;	  /* of those, left unknown */
};

/* The symbolized form of one pstore_loc (same index). */
struct qsym_loc {
	const struct qsym_frame *frames; /* innermost first; NULL when unknown */
	uint32_t nframes;
	uint8_t unknown; /* render as "file+0xoffset" (the pstore_loc says which) */
	uint8_t named;	 /* pre-symbolized (stored by name), not through debug info */
	int32_t bid;	 /* index into result->bids; -1 for locations without a build ID */
};

struct qsym_result {
	struct qsym_loc *locs; /* parallel to the pstore_result's locs */
	size_t nlocs;
	struct qsym_bid *bids; /* every build ID of the result, in build ID order */
	size_t nbids;
	int partial;	   /* a build ID was still pending when the wait ran out */
	size_t symbolized; /* raw locations looked up in debug info by this query */
	size_t cache_hits; /* raw locations answered from the results cache */
	size_t unknown;	   /* locations left unknown */
	/* private */
	struct qsym_frame *frames;
	size_t nframes, frames_cap;
	struct strpool pool;
};

/* Symbolize R. Sets *OUT (free with qsym_result_free(); it borrows nothing from R). -ENOMEM,
 * -E2BIG past opts.max_frames. A build ID that cannot be resolved or read is not an error: its
 * locations stay unknown and its qsym_bid says why. */
int qsym_run(struct qsym *q, const struct pstore_result *r, struct qsym_result **out)
    __attribute__((warn_unused_result));
void qsym_result_free(struct qsym_result *res);

/* Results-cache counters (since qsym_new()). */
struct qsym_stats {
	uint64_t queries, partial;
	uint64_t locations;  /* raw locations asked for */
	uint64_t symbolized; /* looked up in debug info */
	uint64_t cache_hits;
	uint64_t cached;    /* answers held now */
	uint64_t build_ids; /* build IDs with a table now */
	uint64_t dropped;   /* tables dropped: file changed, or evicted */
};
void qsym_stats(struct qsym *q, struct qsym_stats *st);

#endif
