/*
 * httpd_ingest - fleetsymd's write side and listings over the profile store (docs/api.md):
 *   POST /api/v1/ingest                 a pprof (gzip'd or not); series labels = query params
 *   GET  /api/v1/labels                 label names (series and sample labels)
 *   GET  /api/v1/labels/{name}/values   values of one label
 *   GET  /api/v1/series?query=&from=&to=
 *   GET  /api/v1/types
 *   GET  /api/v1/timeline?query=&from=&to=&step=&type=
 *   POST /ingest?name=...                Pyroscope's ingest (converted by httpd_pyro.c)
 *   POST /push.v1.PusherService/Push     Pyroscope's push API (httpd_push.c; Connect answers)
 *
 * httpd.c routes here (its route table) and hands over the request: this module checks
 * the token and Content-Length when the headers arrive, buffers the ingest body up to
 * --max-ingest-size (an over-long chunked body is read and dropped, then refused, as uploads
 * are), and queues its own answers. Its counters (bytes, profiles, samples, refusals by
 * reason) are rendered into /metrics by httpd_ingest_metrics().
 */
#ifndef FLEETSYM_HTTPD_INGEST_H
#define FLEETSYM_HTTPD_INGEST_H

#include <microhttpd.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/jsonw.h"
#include "symbolizer/http/httpresp.h"
#include "symbolizer/http/metrics.h"
#include "symbolizer/store/profstore.h"

struct httpd_ingest;

struct httpd_ingest_opts {
	struct pstore *pstore; /* borrowed; NULL: every route answers 503 */
	const char *token;     /* bearer token for ingest; NULL = open (borrowed) */
	uint64_t max_ingest;   /* bytes of one ingest body; 0 = 64 MiB */
	int timeout_ms;	       /* a listing's time in the store (then 503); 0 = 30000 */
	/* Bytes of ingest bodies held in memory at once (at least max_ingest); past it an ingest
	 * gets 503 + Retry-After (before its body when it sent Content-Length); 0 = no cap. */
	uint64_t body_budget;
};

int httpd_ingest_new(const struct httpd_ingest_opts *opts, struct httpd_ingest **out)
    __attribute__((warn_unused_result));
void httpd_ingest_free(struct httpd_ingest *x);

/* The endpoints this module answers; the route table in httpd.c maps URLs and methods to them. */
enum httpd_ingest_ep {
	HTTPD_INGEST_INGEST = 1,   /* POST /api/v1/ingest */
	HTTPD_INGEST_LABELS,	   /* /api/v1/labels */
	HTTPD_INGEST_LABEL_VALUES, /* /api/v1/labels/NAME/values */
	HTTPD_INGEST_SERIES,	   /* /api/v1/series */
	HTTPD_INGEST_TYPES,	   /* /api/v1/types */
	HTTPD_INGEST_TIMELINE,	   /* /api/v1/timeline */
	HTTPD_INGEST_PYROSCOPE,	   /* POST /ingest (Pyroscope's, httpd_pyro.h) */
	HTTPD_INGEST_PUSH,	   /* POST /push.v1.PusherService/Push (httpd_push.h) */
};

/* One request's state. */
struct httpd_ingest_req {
	enum httpd_ingest_ep route;
	struct httpresp_outcome *out; /* the request's (httpd.c's); borrowed */
	/* internal: the body being received */
	struct httpresp_body body;
	uint64_t seen;	  /* body bytes received */
	int too_big;	  /* passed the cap: the rest is read and dropped */
	int busy;	  /* passed the body budget: the rest is read and dropped */
	int unauthorized; /* no token: up to 1 MiB read and dropped, then 401 (else closed) */
	uint64_t charged; /* bytes of the body budget held */
	uint64_t *pool;	  /* the budget's count they are held in */
};

/*
 * The headers are in: allocate *RQ (free with httpd_ingest_req_free(), also when an answer is
 * queued here) and refuse what can be refused now (Content-Length over the cap, no store). A
 * request without the token is answered 401 once its body (up to 1 MiB) is read: a client that
 * is still sending when the answer comes would see a reset, not the 401. What the request
 * comes to goes into OUT (borrowed until the request ends).
 */
enum MHD_Result httpd_ingest_begin(struct httpd_ingest *x, struct MHD_Connection *conn,
				   enum httpd_ingest_ep route, struct httpresp_outcome *out,
				   struct httpd_ingest_req **rq);

/* A body chunk (MHD_YES, or MHD_NO to close a connection that sends far past the cap). */
enum MHD_Result httpd_ingest_body(struct httpd_ingest *x, struct httpd_ingest_req *rq,
				  const char *data, size_t len);

/* The request is complete: answer it. */
enum MHD_Result httpd_ingest_serve(struct httpd_ingest *x, struct MHD_Connection *conn,
				   const char *url, struct httpd_ingest_req *rq);

void httpd_ingest_req_free(struct httpd_ingest_req *rq);

/* Append this module's Prometheus metrics to W (X may be NULL). */
void httpd_ingest_metrics(struct httpd_ingest *x, struct jsonw *w);

#endif
