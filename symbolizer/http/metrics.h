/*
 * metrics - the service's counters and their Prometheus text rendering.
 *
 * Request counters are a fixed table endpoint × status code plus a latency histogram per
 * endpoint; every update is one relaxed atomic add, so the hot path takes no lock. Counters
 * that other modules keep (debug store, resolver, symbol cache) are read through their own
 * stats calls when /metrics is rendered.
 */
#ifndef FLEETSYM_METRICS_H
#define FLEETSYM_METRICS_H

#include <stdint.h>

#include "cache/debugstore.h"
#include "cache/resolver.h"
#include "lib/jsonw.h"
#include "symbolizer/engine/opensyms.h"

enum metrics_endpoint {
	EP_DEBUGINFO_PUT,
	EP_DEBUGINFO_GET,
	EP_BUILDID_DEBUGINFO,
	EP_BUILDID_EXECUTABLE,
	EP_SYMBOLIZE,
	EP_METRICS,
	EP_INGEST,
	EP_LABELS,
	EP_SERIES,
	EP_TYPES,
	EP_TIMELINE,
	EP_QUERY,
	EP_DIFF,
	EP_MISSING,
	EP_OTHER,
	EP_COUNT_
};

struct metrics;

int metrics_new(struct metrics **out) __attribute__((warn_unused_result));
void metrics_free(struct metrics *m);

/* One finished request: its HTTP STATUS (0 = client went away before an answer) and how long
 * it took. */
void metrics_request(struct metrics *m, enum metrics_endpoint ep, unsigned status, double seconds);

/* Bytes received in uploads and addresses symbolized. */
void metrics_upload_bytes(struct metrics *m, uint64_t n);
void metrics_addresses(struct metrics *m, uint64_t n, int pending);

/* A debuginfod request from a peer replica, answered from the store alone: FOUND or not. */
void metrics_peer_served(struct metrics *m, int found);

/* Append the Prometheus text (format 0.0.4) to W; any of the stats may be NULL. */
void metrics_render(struct metrics *m, const struct dstore_stats *ds,
		    const struct resolver_stats *rs, const struct opensyms_stats *ss,
		    struct jsonw *w);

/* Prometheus text writers, for every module that appends metrics (metrics.c, httpd_query.c,
 * httpd_ingest.c). The HELP and TYPE lines of NAME: */
void metrics_header(struct jsonw *w, const char *name, const char *type, const char *help);

/* HELP, TYPE and the one sample of NAME. */
void metrics_value(struct jsonw *w, const char *name, const char *type, const char *help,
		   uint64_t v);

/* One series of histogram NAME (its header written already), labelled {endpoint="ENDPOINT"}
 * or unlabelled when ENDPOINT is NULL: NBOUNDS + 1 buckets (counters, read atomically; the
 * last is +Inf, not cumulative), then _sum (SUM_USEC, in seconds) and _count. */
void metrics_histogram(struct jsonw *w, const char *name, const char *endpoint,
		       const double *bounds, size_t nbounds, const uint64_t *buckets,
		       uint64_t sum_usec);

#endif
