/*
 * metrics - status codes outside the table of common ones count as "other"; histograms are
 * cumulative at render time (per-bucket counts are stored, Prometheus wants running sums).
 */
#include "symbolizer/http/metrics.h"

#include "lib/counter.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

static const unsigned status_codes[] = {0,   200, 201, 206, 304, 400, 401, 404,
					405, 409, 411, 413, 500, 503, 507};
#define NSTATUS (sizeof(status_codes) / sizeof(status_codes[0]) + 1) /* + other */

static const double lat_bounds[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
				    0.1,    0.25,  0.5,	   1,	  2.5,	5,     10};
#define NLAT (sizeof(lat_bounds) / sizeof(lat_bounds[0]) + 1) /* + Inf */

static const char *const ep_names[EP_COUNT_] = {
    "debuginfo_put",
    "debuginfo_get",
    "buildid_debuginfo",
    "buildid_executable",
    "symbolize",
    "metrics",
    "ingest",
    "labels",
    "series",
    "types",
    "timeline",
    "query",
    "diff",
    "missing",
    "other",
};

struct metrics {
	uint64_t requests[EP_COUNT_][NSTATUS];
	uint64_t lat_buckets[EP_COUNT_][NLAT];
	uint64_t lat_usec_sum[EP_COUNT_];
	uint64_t upload_bytes;
	uint64_t addresses;
	uint64_t addresses_pending;
	uint64_t peer_served[2]; /* missing, found */
};

int metrics_new(struct metrics **out)
{
	*out = calloc(1, sizeof(**out));
	return *out ? 0 : -ENOMEM;
}

void metrics_free(struct metrics *m)
{
	free(m);
}

static size_t status_slot(unsigned status)
{
	for (size_t i = 0; i + 1 < NSTATUS; i++)
		if (status_codes[i] == status)
			return i;
	return NSTATUS - 1;
}

static size_t bucket(const double *bounds, size_t n, double v)
{
	size_t i = 0;

	while (i < n && v > bounds[i])
		i++;
	return i;
}

void metrics_request(struct metrics *m, enum metrics_endpoint ep, unsigned status, double seconds)
{
	if ((unsigned)ep >= EP_COUNT_)
		ep = EP_OTHER;
	counter_add(&m->requests[ep][status_slot(status)], 1);
	counter_add(&m->lat_buckets[ep][bucket(lat_bounds, NLAT - 1, seconds)], 1);
	counter_add(&m->lat_usec_sum[ep], (uint64_t)(seconds * 1e6));
}

void metrics_upload_bytes(struct metrics *m, uint64_t n)
{
	counter_add(&m->upload_bytes, n);
}

void metrics_addresses(struct metrics *m, uint64_t n, int pending)
{
	counter_add(pending ? &m->addresses_pending : &m->addresses, n);
}

void metrics_peer_served(struct metrics *m, int found)
{
	counter_add(&m->peer_served[!!found], 1);
}

void metrics_header(struct jsonw *w, const char *name, const char *type, const char *help)
{
	jsonw_printf(w, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

void metrics_value(struct jsonw *w, const char *name, const char *type, const char *help,
		   uint64_t v)
{
	metrics_header(w, name, type, help);
	jsonw_printf(w, "%s %llu\n", name, (unsigned long long)v);
}

void metrics_histogram(struct jsonw *w, const char *name, const char *endpoint,
		       const double *bounds, size_t nbounds, const uint64_t *buckets,
		       uint64_t sum_usec)
{
	char lbl[128] = "", sel[160] = "";
	uint64_t cum = 0;

	if (endpoint) {
		snprintf(lbl, sizeof(lbl), "endpoint=\"%s\",", endpoint);
		snprintf(sel, sizeof(sel), "{endpoint=\"%s\"}", endpoint);
	}
	for (size_t b = 0; b <= nbounds; b++) {
		cum += counter_get(&buckets[b]);
		if (b < nbounds)
			jsonw_printf(w, "%s_bucket{%sle=\"%g\"} %llu\n", name, lbl, bounds[b],
				     (unsigned long long)cum);
		else
			jsonw_printf(w, "%s_bucket{%sle=\"+Inf\"} %llu\n", name, lbl,
				     (unsigned long long)cum);
	}
	jsonw_printf(w, "%s_sum%s %.6f\n", name, sel, sum_usec / 1e6);
	jsonw_printf(w, "%s_count%s %llu\n", name, sel, (unsigned long long)cum);
}

static void render_requests(struct metrics *m, struct jsonw *w)
{
	metrics_header(
	    w, "fleetsymd_http_requests_total", "counter",
	    "HTTP requests by endpoint and status (status 0: client left before the answer).");
	for (int ep = 0; ep < EP_COUNT_; ep++)
		for (size_t s = 0; s < NSTATUS; s++) {
			uint64_t v = counter_get(&m->requests[ep][s]);

			if (!v)
				continue;
			if (s + 1 < NSTATUS)
				jsonw_printf(w,
					     "fleetsymd_http_requests_total{endpoint=\"%s\",status="
					     "\"%u\"} %llu\n",
					     ep_names[ep], status_codes[s], (unsigned long long)v);
			else
				jsonw_printf(w,
					     "fleetsymd_http_requests_total{endpoint=\"%s\",status="
					     "\"other\"} %llu\n",
					     ep_names[ep], (unsigned long long)v);
		}
	metrics_header(w, "fleetsymd_http_request_duration_seconds", "histogram",
		       "Time from the request's first byte to the end of the answer.");
	for (int ep = 0; ep < EP_COUNT_; ep++)
		metrics_histogram(w, "fleetsymd_http_request_duration_seconds", ep_names[ep],
				  lat_bounds, NLAT - 1, m->lat_buckets[ep],
				  counter_get(&m->lat_usec_sum[ep]));
}

static void render_opensyms(const struct opensyms_stats *ss, struct jsonw *w)
{
	metrics_value(w, "fleetsymd_symcache_hits_total", "counter",
		      "Symbolize requests that found the build ID's symbols already open.",
		      ss->hits);
	metrics_value(w, "fleetsymd_symcache_misses_total", "counter",
		      "Symbolize requests that had to open the build ID's symbols.", ss->misses);
	metrics_value(w, "fleetsymd_symcache_evictions_total", "counter",
		      "Open symbol files closed to stay under the entry cap.", ss->evictions);
	metrics_value(w, "fleetsymd_symcache_open", "gauge", "Symbol files open now.", ss->open);
	metrics_value(w, "fleetsymd_symcache_indexed", "gauge",
		      "Open symbol files with their index ready.", ss->indexed);
	metrics_value(w, "fleetsymd_index_builds_total", "counter", "Symbol indexes built.",
		      ss->index_builds);
	metrics_value(w, "fleetsymd_index_build_failures_total", "counter",
		      "Sandboxed index builds that failed (crash, deadline, memory, bad file).",
		      ss->index_failures);
	metrics_value(w, "fleetsymd_index_bad", "gauge",
		      "Build IDs marked bad by a failed worker (until an upload or a restart).",
		      ss->bad);
	metrics_header(w, "fleetsymd_index_build_duration_seconds", "histogram",
		       "Time to build one symbol index.");
	metrics_histogram(w, "fleetsymd_index_build_duration_seconds", NULL, opensyms_build_bounds,
			  OPENSYMS_BUILD_BUCKETS - 1, ss->build_buckets, ss->build_usec_sum);
}

static void render_store(const struct dstore_stats *ds, struct jsonw *w)
{
	metrics_value(w, "fleetsymd_store_entries", "gauge", "Debug files in the store.",
		      ds->entries);
	metrics_value(w, "fleetsymd_store_bytes", "gauge", "Bytes of all debug files in the store.",
		      ds->bytes);
	metrics_value(w, "fleetsymd_store_cached_bytes", "gauge",
		      "Bytes of evictable (not uploaded) debug files; capped by --cache-size.",
		      ds->cached_bytes);
	metrics_value(w, "fleetsymd_store_evictions_total", "counter",
		      "Cached debug files evicted (least recently used first).", ds->evictions);
	metrics_value(w, "fleetsymd_store_evicted_bytes_total", "counter",
		      "Bytes of evicted debug files.", ds->evicted_bytes);
}

static void render_resolver(const struct resolver_stats *rs, struct jsonw *w)
{
	metrics_value(w, "fleetsymd_resolve_store_hits_total", "counter",
		      "Build IDs found in the store.", rs->store_hits);
	metrics_value(w, "fleetsymd_resolve_local_hits_total", "counter",
		      "Build IDs found in a local debug dir.", rs->local_hits);
	metrics_value(w, "fleetsymd_resolve_negative_hits_total", "counter",
		      "Build IDs answered from the negative cache.", rs->negative_hits);
	metrics_value(w, "fleetsymd_debuginfod_fetches_total", "counter",
		      "Fetches from debuginfod servers (one per build ID, shared by its callers).",
		      rs->fetches);
	metrics_value(w, "fleetsymd_debuginfod_fetch_failures_total", "counter",
		      "Fetches from debuginfod that found nothing or failed.", rs->fetch_failures);
	metrics_header(
	    w, "fleetsymd_debuginfod_fetch_seconds_total", "counter",
	    "Time spent in debuginfod fetches, summed (divide by fetches for the mean).");
	jsonw_printf(w, "fleetsymd_debuginfod_fetch_seconds_total %.3f\n",
		     rs->fetch_ms_total / 1e3);
	metrics_value(w, "fleetsymd_debuginfod_fetches_in_flight", "gauge",
		      "Debuginfod fetches running now.", rs->fetches_in_flight);
	metrics_value(w, "fleetsymd_peer_fetches_total", "counter",
		      "Build IDs asked of the peer replicas (one round per build ID, every peer "
		      "at once, shared by its callers).",
		      rs->peer_fetches);
	metrics_value(w, "fleetsymd_peer_requests_total", "counter",
		      "Requests sent to peer replicas.", rs->peer_requests);
	metrics_value(w, "fleetsymd_peer_hits_total", "counter",
		      "Peer requests answered with the debug file.", rs->peer_hits);
	metrics_value(w, "fleetsymd_peer_misses_total", "counter",
		      "Peer requests answered 404 (the peer does not have it).", rs->peer_misses);
	metrics_value(
	    w, "fleetsymd_peer_errors_total", "counter",
	    "Peer requests that failed: unreachable, stalled, timed out or another status "
	    "(the peer is then left out for a while), or a file over the size limit.",
	    rs->peer_errors);
	metrics_value(w, "fleetsymd_peer_skipped_total", "counter",
		      "Peers left out of a round because they had failed shortly before.",
		      rs->peer_skipped);
	metrics_value(w, "fleetsymd_resolve_busy_total", "counter",
		      "Build IDs not looked up: every resolver slot, or the client's share of "
		      "them, was taken (answered pending).",
		      rs->busy);
}

void metrics_render(struct metrics *m, const struct dstore_stats *ds,
		    const struct resolver_stats *rs, const struct opensyms_stats *ss,
		    struct jsonw *w)
{
	render_requests(m, w);
	metrics_value(w, "fleetsymd_upload_bytes_total", "counter", "Bytes received in uploads.",
		      counter_get(&m->upload_bytes));
	metrics_value(w, "fleetsymd_symbolized_addresses_total", "counter",
		      "Addresses answered by /api/v1/symbolize with the build ID's symbols.",
		      counter_get(&m->addresses));
	metrics_value(w, "fleetsymd_unresolved_addresses_total", "counter",
		      "Addresses answered unknown because the debug info was missing or pending.",
		      counter_get(&m->addresses_pending));
	metrics_header(w, "fleetsymd_peer_served_total", "counter",
		       "Debuginfod requests from peer replicas, answered from the store alone.");
	jsonw_printf(w, "fleetsymd_peer_served_total{result=\"found\"} %llu\n",
		     (unsigned long long)counter_get(&m->peer_served[1]));
	jsonw_printf(w, "fleetsymd_peer_served_total{result=\"missing\"} %llu\n",
		     (unsigned long long)counter_get(&m->peer_served[0]));
	if (ss)
		render_opensyms(ss, w);
	if (ds)
		render_store(ds, w);
	if (rs)
		render_resolver(rs, w);
}
