/*
 * httpd_query - fleetsymd's read side over the profile store: GET /api/v1/query, /api/v1/diff
 * and /api/v1/missing (docs/api.md). Each request selects and merges profiles in the store
 * (pstore_query()), symbolizes the distinct locations (qsym), and renders (render.h).
 *
 * httpd.c routes to it (its route table) and lets it queue its own answer; a request
 * waiting for debug info that is still being fetched blocks its pool thread at most
 * --request-timeout per side, then is answered "partial" (header X-Fleetsym-Partial: 1, and
 * "partial": true in JSON).
 *
 * These are the heavy requests: at most opts.max_running run at once (the others are refused
 * at once with 503 and Retry-After, rather than queued behind them on pool threads), and the
 * store stops one that runs past opts.timeout_ms (503).
 */
#ifndef FLEETSYM_HTTPD_QUERY_H
#define FLEETSYM_HTTPD_QUERY_H

#include <microhttpd.h>
#include <stddef.h>
#include <stdint.h>

#include "cache/resolver.h"
#include "lib/jsonw.h"
#include "symbolizer/http/httpresp.h"
#include "symbolizer/store/profstore.h"
#include "symbolizer/engine/opensyms.h"

struct httpd_query;

struct httpd_query_opts {
	struct pstore *pstore;	   /* NULL: the routes answer 503 (no store configured) */
	struct resolver *resolver; /* required */
	struct opensyms *opensyms; /* required */
	int request_timeout_ms;	   /* longest wait for pending debug info, per side; 0 = 5000 */
	size_t max_stacks;	   /* distinct stacks of one selection; 0 = 2,000,000 */
	size_t max_cached;	   /* results cache (qsym_opts.max_cached); 0 = its default */
	int max_running;	   /* requests answered at once; more get 503 + Retry-After;
				    * 0 = one per CPU, at least 2 */
	int timeout_ms;		   /* a request's time in the store (then 503); 0 = 30000 */
};

/* Borrowed pointers stay borrowed until httpd_query_free(). */
int httpd_query_new(const struct httpd_query_opts *opts, struct httpd_query **out)
    __attribute__((warn_unused_result));
void httpd_query_free(struct httpd_query *q);

/* The endpoints this module answers (GET and HEAD); the route table in httpd.c maps URLs to
 * them. */
enum httpd_query_ep {
	HTTPD_QUERY_NONE,
	HTTPD_QUERY_QUERY,   /* /api/v1/query */
	HTTPD_QUERY_DIFF,    /* /api/v1/diff */
	HTTPD_QUERY_MISSING, /* /api/v1/missing */
	HTTPD_QUERY_COUNT_
};

/*
 * Answer endpoint EP's request on CONN: queue the response (any status) and fill OUT (status,
 * bytes, a result word and key=value notes for the log line).
 */
enum MHD_Result httpd_query_serve(struct httpd_query *q, struct MHD_Connection *conn,
				  enum httpd_query_ep ep, struct httpresp_outcome *out);

/* Append this module's Prometheus metrics (latency per endpoint and step, locations
 * symbolized, results-cache hits and size) to W. Q may be NULL. */
void httpd_query_metrics(struct httpd_query *q, struct jsonw *w);

#endif
