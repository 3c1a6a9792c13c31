/*
 * httpd - fleetsymd's HTTP API on libmicrohttpd (docs/api.md): uploads, debuginfo status,
 * the debuginfod protocol, symbolize and /metrics.
 *
 * MHD runs a pool of polling threads; a handler runs on one of them. Request bodies are
 * streamed: an upload goes chunk by chunk into a temp file in the store's tmp dir (never
 * whole in memory), a symbolize body into a buffer capped at max_body. Every answer that is
 * not a file is JSON (errors: {"error": "..."}), and every request ends in one key=value log
 * line and the metrics, written from MHD's request-completed callback, which is also where
 * an abandoned upload's temp file is removed.
 *
 * Connections are capped (all, per client address), and a request's headers are due within
 * header_timeout_ms however slowly they come (connguard.h).
 */
#ifndef FLEETSYM_HTTPD_H
#define FLEETSYM_HTTPD_H

#include <stddef.h>
#include <stdint.h>

#include "cache/debugstore.h"
#include "cache/resolver.h"
#include "symbolizer/http/metrics.h"
#include "symbolizer/store/profstore.h"
#include "symbolizer/engine/opensyms.h"

struct httpd;

struct httpd_opts {
	const char *listen;	/* "HOST:PORT", "[V6]:PORT"; port 0 picks a free one */
	int threads;		/* MHD thread pool size; 0 = 2 per CPU, at least 4 */
	uint64_t max_upload;	/* bytes; 0 = 1 GiB */
	int request_timeout_ms; /* longest wait for a debuginfod fetch; 0 = 5000 */
	const char *token;	/* bearer token for writes; NULL = writes are open */
	size_t max_addresses;	/* per symbolize request; 0 = 100,000 */
	size_t max_body;	/* symbolize request body; 0 = 16 MiB */
	/* Borrowed until httpd_stop(); all required. */
	struct dstore *store;
	struct resolver *resolver;
	struct opensyms *opensyms;
	struct metrics *metrics;
	struct pstore *pstore; /* profile store; NULL: the profile routes answer 503 */
	uint64_t max_ingest;   /* bytes of one POST /api/v1/ingest body; 0 = 64 MiB */
	/* Connections: open at once (0 = HTTPD_DEFAULT_CONNECTIONS), from one IP address
	 * (0 = HTTPD_DEFAULT_PER_IP), so that one slow or hostile client cannot hold them all. */
	unsigned max_connections, max_per_ip;
	/* The request line and headers are due within this of the connection's start (or of its
	 * previous request's end), however slowly they trickle in; 0 = 10000. */
	int header_timeout_ms;
	/* Queries and ingest. */
	int max_heavy_queries;	/* /query, /diff, /missing at once (more: 503); 0 = CPUs, >= 2 */
	int query_timeout_ms;	/* a query's time in the store; 0 = 30000 */
	uint64_t ingest_memory; /* ingest bodies held at once (httpd_ingest_opts.body_budget) */
};

#define HTTPD_DEFAULT_CONNECTIONS 4096
#define HTTPD_DEFAULT_PER_IP	  256
/* A connection that is still sending its request headers is closed after this many seconds
 * without a byte; once they are in, it may idle HTTPD_IDLE_TIMEOUT_S (long uploads, slow
 * queries). */
#define HTTPD_HEADER_TIMEOUT_S 10
#define HTTPD_IDLE_TIMEOUT_S   120

/* Bind and start serving. Sets *OUT (stop with httpd_stop()). -EADDRINUSE, -EINVAL (bad
 * listen address), -ENOMEM. */
int httpd_start(const struct httpd_opts *opts, struct httpd **out)
    __attribute__((warn_unused_result));

/* The port bound (useful with port 0). */
int httpd_port(const struct httpd *h);

/* Stop accepting, finish the requests in progress, free. */
void httpd_stop(struct httpd *h);

#endif
