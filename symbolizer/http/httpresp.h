/*
 * httpresp - queueing an answer with libmicrohttpd, shared by every route module (httpd.c,
 * httpd_ingest.c, httpd_query.c): one place that owns the buffer hand-over to MHD and the
 * fallback when a JSON answer cannot be built.
 */
#ifndef FLEETSYM_HTTPRESP_H
#define FLEETSYM_HTTPRESP_H

#include <microhttpd.h>
#include <stddef.h>
#include <stdint.h>

struct jsonw;

/* Queue BUF (LEN bytes, malloc'd; transferred: MHD frees it, or this does on failure) with
 * Content-Type CTYPE and the extra headers HDRS (NULL-terminated name, value pairs; may be
 * NULL). When queued, sets *STATUS_OUT and *BYTES_OUT. */
enum MHD_Result httpresp_queue(struct MHD_Connection *conn, unsigned status, char *buf, size_t len,
			       const char *ctype, const char *const *hdrs, unsigned *status_out,
			       uint64_t *bytes_out);

/* Finish W with a newline and queue it as application/json. An answer that cannot be built
 * (over its cap, or out of memory) becomes {"error": TOO_LARGE} with 413 (500 for memory). */
enum MHD_Result httpresp_json(struct MHD_Connection *conn, unsigned status, struct jsonw *w,
			      const char *too_large, const char *const *hdrs, unsigned *status_out,
			      uint64_t *bytes_out);

#endif
