/*
 * httpresp - the request helpers shared by every route module (httpd.c, httpd_ingest.c,
 * httpd_query.c, httpd_ui.c): queueing an answer with libmicrohttpd (one place owns the buffer
 * hand-over to MHD and the fallback when a JSON answer cannot be built), the JSON error body,
 * query arguments and the Content-Length header.
 *
 * The return convention of the HTTP layer: a function that answers a request returns
 * enum MHD_Result — MHD_YES when the request goes on (an answer was queued, or will be),
 * MHD_NO when the connection must be closed. Everything else returns 0 or a negative errno.
 */
#ifndef FLEETSYM_HTTPRESP_H
#define FLEETSYM_HTTPRESP_H

#include <microhttpd.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

struct jsonw;

/* What a request came to, for its log line and metrics: one record per request, owned by
 * httpd.c's request context and filled by whichever endpoint answers it. */
struct httpresp_outcome {
	unsigned status;    /* 0 until an answer is queued */
	uint64_t bytes_out; /* bytes of the answer */
	const char *result; /* a static word for the log line, or NULL */
	char note[160];	    /* more key=value pairs for the log line */
};

/* Queue BUF (LEN bytes, malloc'd; transferred: MHD frees it, or this does on failure) with
 * Content-Type CTYPE and the extra headers HDRS (NULL-terminated name, value pairs; may be
 * NULL). When queued, sets OUT's status and bytes. */
enum MHD_Result httpresp_queue(struct MHD_Connection *conn, unsigned status, char *buf, size_t len,
			       const char *ctype, const char *const *hdrs,
			       struct httpresp_outcome *out);

/* Finish W with a newline and queue it as application/json. An answer that cannot be built
 * (over its cap, or out of memory) becomes {"error": TOO_LARGE} with 413 (500 for memory). */
enum MHD_Result httpresp_json(struct MHD_Connection *conn, unsigned status, struct jsonw *w,
			      const char *too_large, const char *const *hdrs,
			      struct httpresp_outcome *out);

/* Append {"error":MSG} to W, with "build_id":BUILD_ID when BUILD_ID is non-empty (no newline). */
void httpresp_error_body(struct jsonw *w, const char *msg, const char *build_id);

/* The same with the message formatted from FMT and AP; sets OUT's result to "error" unless a
 * more precise word is there already. */
void httpresp_error_vbody(struct jsonw *w, const char *build_id, struct httpresp_outcome *out,
			  const char *fmt, va_list ap) __attribute__((format(printf, 4, 0)));

/* The query argument NAME of CONN; NULL when absent or empty. Borrowed until the request ends. */
const char *httpresp_arg(struct MHD_Connection *conn, const char *name);

/* The request's Content-Length in *LEN: 0, -ENOENT (none sent) or -EINVAL (not a number). */
int httpresp_content_length(struct MHD_Connection *conn, uint64_t *len);

/* Does CONN's Authorization header carry "Bearer EXPECTED"? Constant-time in the contents of
 * EXPECTED (only its length can leak). */
int httpresp_token_ok(struct MHD_Connection *conn, const char *expected);

/* Is GIVEN (LEN bytes) EXPECTED? Constant-time in EXPECTED's contents, as above. */
int httpresp_token_eq(const char *given, size_t len, const char *expected);

/* A request body, buffered in memory up to a cap (one buffer for every route that reads one).
 * Zero-init is empty; free DATA with free(). DATA is NUL-terminated once anything is in it. */
struct httpresp_body {
	char *data;
	size_t len, cap;
};

/* Append LEN bytes of DATA to B unless that passes MAX bytes in all: 0, -E2BIG (passes MAX;
 * B unchanged) or -ENOMEM. */
int httpresp_body_append(struct httpresp_body *b, const char *data, size_t len, size_t max);

#endif
