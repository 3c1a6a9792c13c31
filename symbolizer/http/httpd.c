/*
 * httpd - routing, the request context that lives across MHD's handler calls, and one
 * handler per endpoint.
 *
 * MHD calls the access handler once with the headers (we route and make every check that
 * needs no body there: path, method, build ID, token, Content-Length against the caps, so a
 * client with "Expect: 100-continue" is refused before it sends a byte), then once per body
 * chunk, then once more with no data, when the request is answered. A response queued early
 * makes the remaining body be discarded; MHD closes such a connection after answering.
 */
#include "symbolizer/http/httpd.h"

#include "symbolizer/http/connguard.h"
#include "symbolizer/http/httpd_ingest.h"
#include "symbolizer/http/httpd_query.h"
#include "symbolizer/http/httpd_ui.h"
#include "symbolizer/http/httpresp.h"
#include "lib/clock.h"
#include "lib/jsonw.h"

#include "lib/err.h"
#include "lib/log.h"
#include "lib/version.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netdb.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_MAX_UPLOAD    ((uint64_t)1 << 30)
#define DEFAULT_TIMEOUT_MS    5000
#define DEFAULT_MAX_ADDRESSES 100000
#define DEFAULT_MAX_BODY      ((size_t)16 << 20)
#define MAX_RESPONSE	      ((size_t)512 << 20) /* 100k addresses with deep inline chains fit */
#define MAX_MODULE_NAME	      256
#define LOG_PATH_MAX	      200
#define LATE_DISCARD_MAX      ((uint64_t)64 << 20) /* body read and dropped after a late refusal */

#define DEFAULT_HEADER_TIMEOUT_MS 10000
#define SYM_SLACK_VALUES	  64 /* JSON values of a symbolize body besides its addresses */

#define MAX_WAITERS 256 /* requests parked on a fetch at once; more wait on their pool thread */

struct httpd {
	struct httpd_opts o;
	struct MHD_Daemon *mhd;
	int port;
	pthread_mutex_t lock;
	pthread_cond_t idle;
	int waiters; /* parked requests, under lock */
	int stopping;
	struct httpd_query *query;   /* /api/v1/query, /diff, /missing (httpd_query.c) */
	struct httpd_ingest *ingest; /* ingest, labels, series, types, timeline */
	struct connguard *guard;     /* the header deadline */
};

/* Who answers a route. */
enum handler {
	H_DEBUGINFO,	/* GET or PUT /api/v1/debuginfo/ID */
	H_BUILDID_FILE, /* the debuginfod protocol */
	H_SYMBOLIZE,
	H_METRICS,
	H_UI,	 /* the web UI (httpd_ui.c) */
	H_QUERY, /* profile queries (httpd_query.c) */
	H_STORE, /* ingest and listings (httpd_ingest.c) */
};

struct req;

/* Counts the JSON values of a symbolize body as it arrives (commas and openings outside
 * strings bound the number of values from above), so that a body of millions of addresses is
 * refused after its first ~100k, before anything is parsed. */
struct jscan {
	uint64_t values;
	int in_str, esc;
};

/* One row of the route table: every URL fleetsymd serves is matched here and nowhere else. */
struct route {
	const char *path; /* the exact path; with MATCH, the pattern it reads (for the reader) */
	/* NULL: PATH exactly. Else 1 when the URL is this route's (*ERR set to refuse it: a bad
	 * build ID, a path past the route), 0 when it is not (*ERR may say why no route will). */
	int (*match)(struct req *r, const char *url, int *err);
	const char *allow; /* the methods taken, as a 405's Allow header lists them */
	enum metrics_endpoint ep;
	enum handler handler;
	int sub; /* the handler module's own endpoint (enum httpd_ingest_ep, httpd_query_ep) */
};

struct req {
	struct httpd *h;
	const struct route *rt; /* NULL until routed, and for no route */
	enum metrics_endpoint ep;
	double t0;
	char method[16];
	char path[LOG_PATH_MAX + 1];
	char build_id[BUILDID_HEX_MAX];
	char client[INET6_ADDRSTRLEN]; /* the peer's address: the resolver's share key */
	struct httpresp_outcome out;   /* status, bytes out, result, note: for the log line */
	uint64_t bytes_in;

	/* upload */
	int fd;
	char tmp[4096];
	int force;

	int parked;	      /* it waited once for a fetch; on the next call it answers */
	unsigned late_status; /* refused mid-body: answer this at the end (refuse_late()) */
	uint64_t late_limit;
	char late_msg[256];

	/* ingest and listings */
	struct httpd_ingest_req *ix;

	/* symbolize */
	struct httpresp_body body;
	struct jscan scan;
};

/* ---- answers ---- */

/* The Allow header of a 405 for R's route (NULL-terminated name, value pairs). */
static const char *const *allow_header(const struct req *r, unsigned status, const char *hdr[3])
{
	if (status != MHD_HTTP_METHOD_NOT_ALLOWED)
		return NULL;
	hdr[0] = MHD_HTTP_HEADER_ALLOW;
	hdr[1] = r->rt ? r->rt->allow : "GET, HEAD";
	hdr[2] = NULL;
	return hdr;
}

/* Queue BUF (owned, freed by MHD) as the answer. */
static enum MHD_Result respond_buf(struct req *r, struct MHD_Connection *conn, unsigned status,
				   char *buf, size_t len, const char *ctype)
{
	const char *hdr[3];

	return httpresp_queue(conn, status, buf, len, ctype, allow_header(r, status, hdr), &r->out);
}

static enum MHD_Result respond_json(struct req *r, struct MHD_Connection *conn, unsigned status,
				    struct jsonw *w)
{
	const char *hdr[3];

	return httpresp_json(conn, status, w,
			     "the answer is too large; send fewer addresses per request",
			     allow_header(r, status, hdr), &r->out);
}

static enum MHD_Result respond_error(struct req *r, struct MHD_Connection *conn, unsigned status,
				     const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static enum MHD_Result respond_error(struct req *r, struct MHD_Connection *conn, unsigned status,
				     const char *fmt, ...)
{
	struct jsonw w = {0};
	va_list ap;

	va_start(ap, fmt);
	httpresp_error_vbody(&w, r->build_id, &r->out, fmt, ap);
	va_end(ap);
	return respond_json(r, conn, status, &w);
}

/* What X-DEBUGINFOD-FILE says: the build ID and the kind, as the file is known to clients
 * (debuginfod-find caches it under the same name), never the path inside the data dir. */
static const char *debuginfod_file_name(const struct dstore_entry *e, int ep)
{
	static __thread char name[BUILDID_HEX_MAX + 16];

	snprintf(name, sizeof(name), "%s%s", e->build_id,
		 ep == EP_BUILDID_EXECUTABLE ? "" : ".debug");
	return name;
}

static void write_quality(struct jsonw *w, unsigned q)
{
	jsonw_printf(w,
		     "{\"symtab\":%s,\"dwarf\":%s,\"lines\":%s,\"pclntab\":%s,\"executable\":%s}",
		     q & DSTORE_Q_SYMTAB ? "true" : "false", q & DSTORE_Q_DWARF ? "true" : "false",
		     q & DSTORE_Q_LINES ? "true" : "false", q & DSTORE_Q_PCLNTAB ? "true" : "false",
		     q & DSTORE_Q_EXEC ? "true" : "false");
}

/* The entry's fields shared by the status and upload answers (no braces). */
static void write_entry(struct jsonw *w, const struct dstore_entry *e)
{
	jsonw_lit(w, "\"build_id\":");
	jsonw_str(w, e->build_id);
	jsonw_lit(w, ",\"source\":");
	jsonw_str(w, dstore_source_name(e->source));
	jsonw_printf(w, ",\"size\":%" PRIu64 ",\"orig_size\":%" PRIu64 ",\"quality\":", e->size,
		     e->orig_size);
	write_quality(w, e->quality);
	jsonw_lit(w, ",\"added\":");
	jsonw_time(w, e->added);
	jsonw_lit(w, ",\"last_used\":");
	jsonw_time(w, e->last_used);
}

/* ---- routing ---- */

/* Copy the build ID segment at P (up to '/' or the end) into R, lowercased; set *REST to what
 * follows. 0, or -ERR_BADBUILDID. */
static int take_build_id(struct req *r, const char *p, const char **rest)
{
	size_t n = strcspn(p, "/");

	*rest = p + n;
	return buildid_normalize(p, n, r->build_id);
}

/* /api/v1/debuginfo/{build_id}: the route is ours even when the ID is bad or a path follows
 * (then 405 before 400 or 404). */
static int match_debuginfo(struct req *r, const char *url, int *err)
{
	static const char prefix[] = "/api/v1/debuginfo/";
	const char *rest;

	if (strncmp(url, prefix, sizeof(prefix) - 1))
		return 0;
	if (take_build_id(r, url + sizeof(prefix) - 1, &rest))
		*err = -ERR_BADBUILDID;
	else if (*rest)
		*err = -ENOENT;
	return 1;
}

/* /buildid/{build_id}/SUFFIX (debuginfod); a bad ID is a 400 whatever follows. /source and
 * /section are not served: debuginfod clients take 404. */
static int match_buildid(struct req *r, const char *url, const char *suffix, int *err)
{
	static const char prefix[] = "/buildid/";
	const char *rest;

	if (strncmp(url, prefix, sizeof(prefix) - 1))
		return 0;
	if (take_build_id(r, url + sizeof(prefix) - 1, &rest)) {
		*err = -ERR_BADBUILDID;
		return 0;
	}
	return !strcmp(rest, suffix);
}

static int match_buildid_debuginfo(struct req *r, const char *url, int *err)
{
	return match_buildid(r, url, "/debuginfo", err);
}

static int match_buildid_executable(struct req *r, const char *url, int *err)
{
	return match_buildid(r, url, "/executable", err);
}

static int match_ui(struct req *r, const char *url, int *err)
{
	return httpd_ui_route(url);
}

/* /api/v1/labels/{name}/values */
static int match_label_values(struct req *r, const char *url, int *err)
{
	static const char prefix[] = "/api/v1/labels/";
	size_t n;

	if (strncmp(url, prefix, sizeof(prefix) - 1))
		return 0;
	url += sizeof(prefix) - 1;
	n = strcspn(url, "/");
	return n > 0 && !strcmp(url + n, "/values");
}

#define GET "GET, HEAD"

static const struct route routes[] = {
    {"/api/v1/symbolize", NULL, "POST", EP_SYMBOLIZE, H_SYMBOLIZE},
    {"/, /index.html, /ui/*", match_ui, GET, EP_OTHER, H_UI},
    {"/api/v1/ingest", NULL, "POST", EP_INGEST, H_STORE, HTTPD_INGEST_INGEST},
    {"/ingest", NULL, "POST", EP_INGEST, H_STORE, HTTPD_INGEST_PYROSCOPE},
    {"/push.v1.PusherService/Push", NULL, "POST", EP_INGEST, H_STORE, HTTPD_INGEST_PUSH},
    {"/api/v1/labels", NULL, GET, EP_LABELS, H_STORE, HTTPD_INGEST_LABELS},
    {"/api/v1/series", NULL, GET, EP_SERIES, H_STORE, HTTPD_INGEST_SERIES},
    {"/api/v1/types", NULL, GET, EP_TYPES, H_STORE, HTTPD_INGEST_TYPES},
    {"/api/v1/timeline", NULL, GET, EP_TIMELINE, H_STORE, HTTPD_INGEST_TIMELINE},
    {"/api/v1/labels/{name}/values", match_label_values, GET, EP_LABELS, H_STORE,
     HTTPD_INGEST_LABEL_VALUES},
    {"/api/v1/query", NULL, GET, EP_QUERY, H_QUERY, HTTPD_QUERY_QUERY},
    {"/api/v1/diff", NULL, GET, EP_DIFF, H_QUERY, HTTPD_QUERY_DIFF},
    {"/api/v1/missing", NULL, GET, EP_MISSING, H_QUERY, HTTPD_QUERY_MISSING},
    {"/metrics", NULL, GET, EP_METRICS, H_METRICS},
    {"/api/v1/debuginfo/{build_id}", match_debuginfo, GET ", PUT", EP_DEBUGINFO_GET, H_DEBUGINFO},
    {"/buildid/{build_id}/debuginfo", match_buildid_debuginfo, GET, EP_BUILDID_DEBUGINFO,
     H_BUILDID_FILE},
    {"/buildid/{build_id}/executable", match_buildid_executable, GET, EP_BUILDID_EXECUTABLE,
     H_BUILDID_FILE},
};

#undef GET

/* Sets r->rt (NULL: no route) and r->ep; 0, -ENOENT (no such path) or -ERR_BADBUILDID. */
static int route(struct req *r, const char *url)
{
	int err = -ENOENT;

	r->rt = NULL;
	r->ep = EP_OTHER;
	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
		const struct route *rt = &routes[i];
		int e = 0;

		if (rt->match ? rt->match(r, url, &e) : !strcmp(url, rt->path)) {
			r->rt = rt;
			r->ep = rt->ep;
			return e;
		}
		if (e)
			err = e;
	}
	return err;
}

/* Whether METHOD is one of the comma-separated methods of ALLOW. */
static int method_in(const char *allow, const char *method)
{
	size_t n = strlen(method);

	while (*allow) {
		size_t k = strcspn(allow, ",");

		if (k == n && !strncmp(allow, method, n))
			return 1;
		allow += k;
		allow += strspn(allow, ", ");
	}
	return 0;
}

static int arg_true(struct MHD_Connection *conn, const char *name)
{
	const char *v = httpresp_arg(conn, name);

	return v && (!strcmp(v, "1") || !strcasecmp(v, "true") || !strcasecmp(v, "yes"));
}

/* ---- PUT /api/v1/debuginfo/ID ---- */

/* The status of a failed write of an upload: 507 on a full disk (or below --disk-reserve),
 * 503 when the data dir cannot be written now, else 500. */
static unsigned upload_status(int err)
{
	if (err == -ENOSPC || err == -EDQUOT)
		return 507;
	if (err == -EROFS || err == -EACCES || err == -EPERM)
		return 503;
	return 500;
}

static enum MHD_Result upload_begin(struct req *r, struct MHD_Connection *conn)
{
	const struct httpd_opts *o = &r->h->o;
	uint64_t len;
	int n;

	r->ep = EP_DEBUGINFO_PUT;
	if (o->token && !httpresp_token_ok(conn, o->token))
		return respond_error(r, conn, 401,
				     "uploads need the header 'Authorization: Bearer TOKEN' with "
				     "the token of the server's --token-file");
	if (httpresp_content_length(conn, &len) == 0 && len > o->max_upload)
		return respond_error(r, conn, 413,
				     "the upload is %" PRIu64 " bytes; this server takes at most "
				     "%" PRIu64 " (--max-upload-size)",
				     len, o->max_upload);
	r->force = arg_true(conn, "force");
	n = snprintf(r->tmp, sizeof(r->tmp), "%s/upload-XXXXXX", dstore_tmp_dir(o->store));
	if (n < 0 || (size_t)n >= sizeof(r->tmp)) {
		r->tmp[0] = '\0';
		return respond_error(r, conn, 500, "temp path too long");
	}
	r->fd = mkstemp(r->tmp);
	if (r->fd < 0) {
		int err = errno;

		r->tmp[0] = '\0';
		log_msg(FS_LOG_ERROR, "upload temp file in %s: %s", dstore_tmp_dir(o->store),
			strerror(err));
		return respond_error(r, conn, upload_status(-err), "cannot create a temp file: %s",
				     strerror(err));
	}
	return MHD_YES;
}

static void forget_tmp(struct req *r);

/* Refuse an upload or a symbolize body mid-body. libmicrohttpd 0.9.75 cannot queue an answer before
 * the body is read, so the temp file goes now, the rest of the body is read and dropped (at most
 * LATE_DISCARD_MAX more bytes, else the connection is closed), and the answer is sent at the
 * end. */
static enum MHD_Result refuse_late(struct req *r, unsigned status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static enum MHD_Result refuse_late(struct req *r, unsigned status, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(r->late_msg, sizeof(r->late_msg), fmt, ap);
	va_end(ap);
	r->late_status = status;
	r->late_limit = r->bytes_in + LATE_DISCARD_MAX;
	forget_tmp(r);
	return MHD_YES;
}

static enum MHD_Result upload_chunk(struct req *r, struct MHD_Connection *conn, const char *data,
				    size_t len)
{
	const struct httpd_opts *o = &r->h->o;

	r->bytes_in += len;
	if (r->late_status)
		return r->bytes_in > r->late_limit ? MHD_NO : MHD_YES;
	if (r->bytes_in > o->max_upload) {
		/* chunked: there was no Content-Length to refuse up front */
		r->out.result = "too_big";
		return refuse_late(r, 413,
				   "the upload passed %" PRIu64
				   " bytes, the most this server takes "
				   "(--max-upload-size)",
				   o->max_upload);
	}
	while (len > 0) {
		ssize_t w = write(r->fd, data, len);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0) {
			int err = errno;

			return refuse_late(r, upload_status(-err), "writing the upload failed: %s",
					   strerror(err));
		}
		data += w;
		len -= (size_t)w;
	}
	return MHD_YES;
}

static void forget_tmp(struct req *r)
{
	if (r->fd >= 0)
		close(r->fd);
	r->fd = -1;
	if (r->tmp[0])
		unlink(r->tmp);
	r->tmp[0] = '\0';
}

static enum MHD_Result upload_conflict(struct req *r, struct MHD_Connection *conn, unsigned q)
{
	struct dstore_entry old;

	if (dstore_get(r->h->o.store, r->build_id, &old) != 0)
		return respond_error(r, conn, 409,
				     "a different file is already stored for this build ID; add "
				     "?force=1 to replace it");
	return respond_error(r, conn, 409,
			     "a different file is already stored for this build ID (%s, from %s) "
			     "and the upload (%s) is not better; add ?force=1 to replace it",
			     dstore_quality_name(old.quality), dstore_source_name(old.source),
			     dstore_quality_name(q));
}

static enum MHD_Result upload_finish(struct req *r, struct MHD_Connection *conn)
{
	const struct httpd_opts *o = &r->h->o;
	static const char *const words[] = {"created", "identical", "replaced"};
	static const unsigned codes[] = {201, 200, 201};
	struct dstore_elf_facts found;
	enum dstore_put_result res;
	struct dstore_entry e;
	struct jsonw w = {0};
	int err;

	metrics_upload_bytes(o->metrics, r->bytes_in);
	if (r->late_status)
		return respond_error(r, conn, r->late_status, "%s", r->late_msg);
	if (close(r->fd) < 0) {
		r->fd = -1;
		return respond_error(r, conn, 500, "writing the upload failed: %s",
				     strerror(errno));
	}
	r->fd = -1;
	err = dstore_check(o->store, r->tmp, &found); /* in a worker: outside bytes */
	if (err) {
		forget_tmp(r);
		return respond_error(r, conn, 400, "the upload is not usable: %s", err_str(err));
	}
	if (strcmp(found.build_id, r->build_id) != 0) {
		forget_tmp(r);
		return respond_error(r, conn, 400,
				     "the uploaded file has build ID %s, not the %s of the URL",
				     found.build_id, r->build_id);
	}
	err = dstore_put(o->store, r->build_id, r->tmp, DSTORE_SRC_UPLOAD, r->force, &res, &e);
	if (err != -EINVAL)
		r->tmp[0] = '\0'; /* consumed (renamed or removed) */
	if (err == -EEXIST)
		return upload_conflict(r, conn, found.quality);
	if (err == -ERR_NOTELF || err == -ERR_BADELF || err == -ERR_NOBUILDID ||
	    err == -ERR_BUILDID_MISMATCH)
		return respond_error(r, conn, 400, "the upload is not usable: %s", err_str(err));
	if (err == -ERR_TOOBIG)
		return respond_error(r, conn, 413, "the upload inflates too much: %s",
				     err_str(err));
	if (err)
		return respond_error(
		    r, conn, upload_status(err), "storing the upload failed: %s%s", err_str(err),
		    err == -ENOSPC ? " (the data dir's disk is full, or would have less "
				     "free than --disk-reserve)"
				   : "");
	resolver_forget_negative(o->resolver, r->build_id);
	if (res != DSTORE_PUT_IDENTICAL)
		opensyms_drop(o->opensyms, r->build_id);
	r->out.result = words[res];
	jsonw_lit(&w, "{\"result\":");
	jsonw_str(&w, words[res]);
	jsonw_lit(&w, ",");
	write_entry(&w, &e);
	jsonw_lit(&w, "}");
	return respond_json(r, conn, codes[res], &w);
}

/* ---- GET /api/v1/debuginfo/ID ---- */

static enum MHD_Result debuginfo_status(struct req *r, struct MHD_Connection *conn)
{
	struct dstore_entry e;
	struct jsonw w = {0};
	const char *bad;
	char idx[4096 + 80];
	int err;

	err = dstore_get(r->h->o.store, r->build_id, &e);
	if (err == -ENOENT) {
		r->out.result = "absent";
		jsonw_lit(&w, "{\"build_id\":");
		jsonw_str(&w, r->build_id);
		jsonw_lit(&w, ",\"present\":false,\"error\":\"no debug info is stored for this "
			      "build ID; upload it with PUT /api/v1/debuginfo/ID, or a symbolize "
			      "request fetches it from the debug dirs and debuginfod\"}");
		return respond_json(r, conn, 404, &w);
	}
	if (err)
		return respond_error(r, conn, 500, "store lookup failed: %s", err_str(err));
	r->out.result = "present";
	snprintf(idx, sizeof(idx), "%s/%s.symidx", dstore_index_dir(r->h->o.store), e.build_id);
	jsonw_lit(&w, "{\"present\":true,");
	write_entry(&w, &e);
	jsonw_printf(&w, ",\"indexed\":%s", access(idx, F_OK) == 0 ? "true" : "false");
	if (opensyms_bad(r->h->o.opensyms, e.build_id, &bad)) {
		/* the sandboxed worker failed on this file: until a new upload or a restart */
		jsonw_lit(&w, ",\"bad\":true,\"bad_reason\":");
		jsonw_str(&w, bad);
	}
	jsonw_lit(&w, "}");
	return respond_json(r, conn, 200, &w);
}

/* ---- waiting for a fetch without holding a pool thread ---- */

/*
 * A request whose build ID is still being fetched is parked: the connection is suspended and a
 * small detached thread waits on the resolver (at most --request-timeout) and resumes it, so the
 * MHD pool thread goes on serving other connections. On resume MHD calls the handler again and
 * the request is answered from what the resolver has then (found, or still pending).
 */
struct waiter {
	struct httpd *h;
	struct MHD_Connection *conn;
	char build_id[BUILDID_HEX_MAX];
};

static void *waiter_main(void *arg)
{
	struct waiter *w = arg;
	struct httpd *h = w->h;
	struct dstore_entry e;
	const char *reason;

	(void)resolver_resolve(h->o.resolver, w->build_id, h->o.request_timeout_ms, &e, &reason);
	MHD_resume_connection(w->conn);
	free(w);
	pthread_mutex_lock(&h->lock);
	if (--h->waiters == 0)
		pthread_cond_broadcast(&h->idle);
	pthread_mutex_unlock(&h->lock);
	return NULL;
}

/* Park R until its fetch ends. 1: parked (return MHD_YES, the handler runs again later);
 * 0: not parked (already waited once, too many parked, or stopping): wait inline. */
static int park(struct req *r, struct MHD_Connection *conn)
{
	struct httpd *h = r->h;
	pthread_attr_t attr;
	struct waiter *w;
	pthread_t t;
	int err;

	if (r->parked)
		return 0;
	w = calloc(1, sizeof(*w));
	if (!w)
		return 0;
	pthread_mutex_lock(&h->lock);
	if (h->stopping || h->waiters >= MAX_WAITERS) {
		pthread_mutex_unlock(&h->lock);
		free(w);
		return 0;
	}
	h->waiters++;
	pthread_mutex_unlock(&h->lock);
	w->h = h;
	w->conn = conn;
	snprintf(w->build_id, sizeof(w->build_id), "%s", r->build_id);
	r->parked = 1;
	MHD_suspend_connection(conn);
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, 256 << 10);
	err = pthread_create(&t, &attr, waiter_main, w);
	pthread_attr_destroy(&attr);
	if (err) {
		/* answered on the next call, without waiting */
		MHD_resume_connection(conn);
		free(w);
		pthread_mutex_lock(&h->lock);
		if (--h->waiters == 0)
			pthread_cond_broadcast(&h->idle);
		pthread_mutex_unlock(&h->lock);
	}
	return 1;
}

/* resolver_resolve() for a request: a quick look first; a fetch in flight parks the request
 * (1 = parked); after the park, or when it cannot park, the answer as it stands (waiting
 * inline only when parking was refused). */
static int resolve(struct req *r, struct MHD_Connection *conn, struct dstore_entry *e,
		   const char **reason, int *st)
{
	struct resolver *rv = r->h->o.resolver;

	*st = resolver_resolve_as(rv, r->client, r->build_id, 0, e, reason);
	if (*st == -EAGAIN) {
		/* no job slot: nothing is being fetched for it, so nothing to wait for */
		*st = RESOLVER_PENDING;
		return 0;
	}
	if (*st != RESOLVER_PENDING || r->parked)
		return 0;
	if (park(r, conn))
		return 1;
	*st =
	    resolver_resolve_as(rv, r->client, r->build_id, r->h->o.request_timeout_ms, e, reason);
	if (*st == -EAGAIN)
		*st = RESOLVER_PENDING;
	return 0;
}

/* ---- GET /buildid/ID/debuginfo, /executable ---- */

static enum MHD_Result serve_file(struct req *r, struct MHD_Connection *conn,
				  const struct dstore_entry *e)
{
	struct MHD_Response *resp;
	enum MHD_Result ok;
	struct stat st;
	char size[32], lm[64];
	struct tm tm;
	int fd;

	fd = open(e->served_path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0) {
		/* evicted or replaced between the lookup and the open */
		if (fd >= 0)
			close(fd);
		return respond_error(r, conn, 503,
				     "the file changed while it was being served; "
				     "retry");
	}
	resp = MHD_create_response_from_fd64((uint64_t)st.st_size, fd);
	if (!resp) {
		close(fd);
		return MHD_NO;
	}
	snprintf(size, sizeof(size), "%lld", (long long)st.st_size);
	gmtime_r(&st.st_mtime, &tm);
	strftime(lm, sizeof(lm), "%a, %d %b %Y %H:%M:%S GMT", &tm);
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/octet-stream");
	MHD_add_response_header(resp, "X-DEBUGINFOD-SIZE", size);
	/* debuginfod names the file; the server's own directories are nobody's business */
	MHD_add_response_header(resp, "X-DEBUGINFOD-FILE", debuginfod_file_name(e, r->ep));
	MHD_add_response_header(resp, MHD_HTTP_HEADER_LAST_MODIFIED, lm);
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "public");
	ok = MHD_queue_response(conn, 200, resp);
	MHD_destroy_response(resp);
	if (ok == MHD_YES) {
		r->out.status = 200;
		r->out.bytes_out = (uint64_t)st.st_size;
		r->out.result = "served";
	}
	return ok;
}

/* A request from a peer replica (PEERFETCH_HEADER) is answered from the store alone: it never
 * starts a fetch, so replicas that list each other (or themselves) cannot ask in circles, and
 * a replica that has not got it says so at once. */
static int from_peer(struct req *r, struct MHD_Connection *conn, struct dstore_entry *e)
{
	int found;

	if (!MHD_lookup_connection_value(conn, MHD_HEADER_KIND, PEERFETCH_HEADER))
		return 0;
	found = dstore_get(r->h->o.store, r->build_id, e) == 0;
	metrics_peer_served(r->h->o.metrics, found);
	snprintf(r->out.note, sizeof(r->out.note), "peer=1");
	return found ? 1 : -1;
}

static enum MHD_Result buildid_file(struct req *r, struct MHD_Connection *conn)
{
	const char *reason = NULL;
	struct dstore_entry e;
	int st, peer = from_peer(r, conn, &e);

	if (peer < 0) {
		r->out.result = "missing";
		return respond_error(r, conn, 404,
				     "this replica has no debug info for this build ID (asked as a "
				     "peer: the store alone)");
	}
	if (peer > 0)
		st = RESOLVER_FOUND;
	else if (resolve(r, conn, &e, &reason, &st))
		return MHD_YES;
	if (st < 0)
		return respond_error(r, conn, 500, "resolving the build ID failed: %s",
				     err_str(st));
	if (st == RESOLVER_PENDING) {
		/* Not 404: debuginfod clients cache a 404 as "missing" for 10 minutes. */
		r->out.result = "pending";
		return respond_error(r, conn, 503, "still being fetched (%s); retry shortly",
				     reason ? reason : "fetch in progress");
	}
	if (st != RESOLVER_FOUND) {
		r->out.result = "missing";
		return respond_error(r, conn, 404, "no debug info for this build ID: %s",
				     reason ? reason : "not found");
	}
	if (r->ep == EP_BUILDID_EXECUTABLE && !(e.quality & DSTORE_Q_EXEC)) {
		r->out.result = "no_code";
		return respond_error(r, conn, 404,
				     "only a debug file without code is stored for this build "
				     "ID; upload the unstripped executable to serve /executable");
	}
	return serve_file(r, conn, &e);
}

/* ---- POST /api/v1/symbolize ---- */

struct sym_req {
	char build_id[BUILDID_HEX_MAX];
	const char *module; /* borrowed from the parsed JSON */
	int offsets;	    /* kind "offset" */
	uint64_t *addrs;    /* as sent */
	size_t n;
};

static int parse_address(json_t *v, uint64_t *out)
{
	const char *s, *p;
	char *end;

	if (json_is_integer(v)) {
		if (json_integer_value(v) < 0)
			return -EINVAL;
		*out = (uint64_t)json_integer_value(v);
		return 0;
	}
	if (!json_is_string(v))
		return -EINVAL;
	s = json_string_value(v);
	p = s;
	if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X'))
		p += 2;
	if (!isxdigit((unsigned char)*p) || strlen(p) > 16)
		return -EINVAL;
	errno = 0;
	*out = strtoull(p, &end, 16);
	return errno || *end ? -EINVAL : 0;
}

/* Parse the body into SR; on error writes a message a person can act on into MSG. */
static int parse_symbolize(const struct req *r, json_t **root, struct sym_req *sr, char *msg,
			   size_t msglen)
{
	size_t max = r->h->o.max_addresses;
	json_error_t jerr;
	json_t *bid, *addrs, *kind, *module;

	*root = json_loadb(r->body.data ? r->body.data : "", r->body.len, JSON_REJECT_DUPLICATES,
			   &jerr);
	if (!*root || !json_is_object(*root)) {
		snprintf(msg, msglen, "the body is not a JSON object: %s",
			 *root ? "wrong type" : jerr.text);
		return -EINVAL;
	}
	bid = json_object_get(*root, "build_id");
	addrs = json_object_get(*root, "addresses");
	kind = json_object_get(*root, "kind");
	module = json_object_get(*root, "module");
	if (!json_is_string(bid) ||
	    buildid_normalize(json_string_value(bid), BUILDID_WHOLE, sr->build_id)) {
		snprintf(msg, msglen, "\"build_id\" must be a string of 2-64 hex digits");
		return -EINVAL;
	}
	if (kind && !(json_is_string(kind) && (!strcmp(json_string_value(kind), "vaddr") ||
					       !strcmp(json_string_value(kind), "offset")))) {
		snprintf(msg, msglen,
			 "\"kind\" must be \"vaddr\" (ELF virtual addresses, the "
			 "default) or \"offset\" (file offsets)");
		return -EINVAL;
	}
	sr->offsets = kind && !strcmp(json_string_value(kind), "offset");
	if (module && (!json_is_string(module) || json_string_length(module) > MAX_MODULE_NAME)) {
		snprintf(msg, msglen, "\"module\" must be a string of at most %d bytes",
			 MAX_MODULE_NAME);
		return -EINVAL;
	}
	sr->module = module ? json_string_value(module) : sr->build_id;
	if (!json_is_array(addrs)) {
		snprintf(msg, msglen,
			 "\"addresses\" must be an array of hex strings (\"0x4011a6\")");
		return -EINVAL;
	}
	sr->n = json_array_size(addrs);
	if (sr->n > max) {
		snprintf(msg, msglen, "%zu addresses; at most %zu per request", sr->n, max);
		return -E2BIG;
	}
	sr->addrs = calloc(sr->n ? sr->n : 1, sizeof(*sr->addrs));
	if (!sr->addrs) {
		snprintf(msg, msglen, "out of memory");
		return -ENOMEM;
	}
	for (size_t i = 0; i < sr->n; i++)
		if (parse_address(json_array_get(addrs, i), &sr->addrs[i])) {
			snprintf(msg, msglen,
				 "addresses[%zu] is not an address: want a hex string "
				 "like \"0x4011a6\"",
				 i);
			return -EINVAL;
		}
	return 0;
}

/* The state of one answer being written. */
struct sym_out {
	struct jsonw *w;
	const struct sym_req *sr;
	const uint64_t *vaddr; /* per request address (== addrs for kind vaddr) */
	const int *conv_err;   /* per request address, kind offset: why it has no vaddr */
	const size_t *idx;     /* lookup batch position → request position */
	size_t next;	       /* next request position to write */
	const char *reason;    /* why every address is unknown (missing/pending), or NULL */
};

static void write_unknown(struct sym_out *so, size_t i, const char *reason)
{
	struct jsonw *w = so->w;
	char name[MAX_MODULE_NAME + 32];

	snprintf(name, sizeof(name), "%s+0x%" PRIx64, so->sr->module, so->sr->addrs[i]);
	jsonw_lit(w, i ? ",{\"address\":" : "{\"address\":");
	jsonw_printf(w, "\"0x%" PRIx64 "\",\"frames\":[{\"unknown\":", so->sr->addrs[i]);
	jsonw_str(w, name);
	jsonw_lit(w, "}],\"reason\":");
	jsonw_str(w, reason);
	jsonw_lit(w, "}");
}

static const char *conv_reason(int err)
{
	if (err == -ENODATA)
		return "the stored debug file's program headers have zeroed file offsets "
		       "(objcopy --only-keep-debug): upload the executable, or send "
		       "kind \"vaddr\"";
	return "no PT_LOAD segment of the file holds this offset";
}

static void write_frames(struct jsonw *w, const struct sym_frame *f, int n)
{
	for (int k = 0; k < n; k++) {
		jsonw_lit(w, k ? ",{\"function\":" : "{\"function\":");
		jsonw_str(w, f[k].function);
		jsonw_lit(w, ",\"linkage_name\":");
		jsonw_str(w, f[k].linkage);
		if (f[k].file) {
			jsonw_lit(w, ",\"file\":");
			jsonw_str(w, f[k].file);
			jsonw_printf(w, ",\"line\":%u,\"column\":%u", f[k].line, f[k].column);
		}
		jsonw_printf(w, ",\"inlined\":%s,\"source\":\"%s\"}",
			     f[k].inlined ? "true" : "false",
			     f[k].source == SYM_SRC_DWARF ? "dwarf" : "symtab");
	}
}

static int emit_frames(void *ctx, size_t k, uint64_t vaddr, const struct sym_frame *f, int n)
{
	struct sym_out *so = ctx;
	struct jsonw *w = so->w;
	size_t i = so->idx ? so->idx[k] : k;

	for (; so->next < i; so->next++)
		write_unknown(so, so->next, conv_reason(so->conv_err[so->next]));
	so->next = i + 1;
	if (n < 1 || f[0].source == SYM_SRC_NONE) {
		write_unknown(so, i, "no symbol covers this address");
		return w->err;
	}
	jsonw_lit(w, i ? ",{\"address\":" : "{\"address\":");
	jsonw_printf(w, "\"0x%" PRIx64 "\"", so->sr->addrs[i]);
	if (so->sr->offsets)
		jsonw_printf(w, ",\"vaddr\":\"0x%" PRIx64 "\"", vaddr);
	jsonw_lit(w, ",\"frames\":[");
	write_frames(w, f, n);
	jsonw_lit(w, "]}");
	return w->err;
}

/* Look up every address of SR in F, writing results in request order. */
static int symbolize_found(struct httpd *h, struct opensyms_file *f, struct sym_out *so)
{
	const struct sym_req *sr = so->sr;
	const struct loadmap *lm = opensyms_file_loadmap(f);
	uint64_t *vaddr = NULL;
	size_t *idx = NULL, nk = 0;
	int *cerr = NULL, rc;

	if (!sr->offsets) {
		so->vaddr = sr->addrs;
		return opensyms_lookup_batch(h->o.opensyms, f, sr->addrs, sr->n, emit_frames, so);
	}
	vaddr = calloc(sr->n + 1, sizeof(*vaddr));
	idx = calloc(sr->n + 1, sizeof(*idx));
	cerr = calloc(sr->n + 1, sizeof(*cerr));
	if (!vaddr || !idx || !cerr) {
		rc = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < sr->n; i++) {
		cerr[i] = loadmap_offset_to_vaddr(lm, sr->addrs[i], &vaddr[nk]);
		if (!cerr[i])
			idx[nk++] = i;
	}
	so->vaddr = vaddr;
	so->conv_err = cerr;
	so->idx = idx;
	rc = opensyms_lookup_batch(h->o.opensyms, f, vaddr, nk, emit_frames, so);
	for (; !rc && so->next < sr->n; so->next++)
		write_unknown(so, so->next, conv_reason(cerr[so->next]));
out:
	free(vaddr);
	free(idx);
	free(cerr);
	return rc;
}

static enum MHD_Result symbolize(struct req *r, struct MHD_Connection *conn)
{
	struct httpd *h = r->h;
	struct sym_req sr = {0};
	struct sym_out so = {0};
	struct jsonw w = {.max = MAX_RESPONSE};
	struct opensyms_file *f = NULL;
	struct dstore_entry e;
	const char *reason = NULL;
	json_t *root = NULL;
	enum MHD_Result ok;
	char msg[256];
	int st, err, bad = 0;

	err = parse_symbolize(r, &root, &sr, msg, sizeof(msg));
	if (err) {
		ok = respond_error(r, conn,
				   err == -E2BIG    ? 413
				   : err == -ENOMEM ? 500
						    : 400,
				   "%s", msg);
		goto out;
	}
	snprintf(r->build_id, sizeof(r->build_id), "%s", sr.build_id);
	if (resolve(r, conn, &e, &reason, &st)) {
		ok = MHD_YES; /* parked: the body is parsed again when it resumes */
		goto out;
	}
	if (st < 0) {
		ok = respond_error(r, conn, 500, "resolving the build ID failed: %s", err_str(st));
		goto out;
	}
	if (st == RESOLVER_FOUND) {
		/* the index, built by the sandboxed worker: pending while it runs, bad if it
		 * failed on this file */
		err = opensyms_get(h->o.opensyms, &e, &f, &reason);
		if (err == -EAGAIN)
			st = RESOLVER_PENDING;
		else if (err == -ERR_BADDEBUG)
			bad = 1;
		else if (err)
			st = RESOLVER_MISSING;
		if (err && !reason)
			reason = err_str(err);
	}
	r->out.result = bad			 ? "bad"
			: st == RESOLVER_FOUND	 ? "found"
			: st == RESOLVER_PENDING ? "pending"
						 : "missing";
	snprintf(r->out.note, sizeof(r->out.note), "addresses=%zu kind=%s", sr.n,
		 sr.offsets ? "offset" : "vaddr");
	if (!reason)
		reason = st == RESOLVER_PENDING ? "debug info is still being fetched; retry later"
						: "no debug info for this build ID";
	jsonw_lit(&w, "{\"build_id\":");
	jsonw_str(&w, sr.build_id);
	jsonw_printf(&w, ",\"status\":\"%s\",\"pending\":%s", r->out.result,
		     st == RESOLVER_PENDING && !bad ? "true" : "false");
	if (f) {
		jsonw_lit(&w, ",\"source\":");
		jsonw_str(&w, dstore_source_name(e.source));
		jsonw_lit(&w, ",\"quality\":");
		write_quality(&w, e.quality);
	} else {
		jsonw_lit(&w, ",\"reason\":");
		jsonw_str(&w, reason);
	}
	jsonw_lit(&w, ",\"results\":[");
	so.w = &w;
	so.sr = &sr;
	if (f) {
		err = symbolize_found(h, f, &so);
		if (err && !w.err)
			w.err = err;
	} else {
		for (size_t i = 0; i < sr.n; i++)
			write_unknown(&so, i, reason);
	}
	jsonw_lit(&w, "]}");
	metrics_addresses(h->o.metrics, sr.n, f == NULL);
	ok = respond_json(r, conn, 200, &w);
out:
	opensyms_put(h->o.opensyms, f);
	jsonw_free(&w);
	json_decref(root);
	free(sr.addrs);
	return ok;
}

/* ---- GET /metrics ---- */

static enum MHD_Result metrics_page(struct req *r, struct MHD_Connection *conn)
{
	const struct httpd_opts *o = &r->h->o;
	struct dstore_stats ds;
	struct resolver_stats rs;
	struct opensyms_stats ss;
	struct jsonw w = {0};
	char *buf, bi[512];
	uint64_t open, expired;
	size_t len;

	dstore_stats(o->store, &ds);
	resolver_stats(o->resolver, &rs);
	opensyms_stats(o->opensyms, &ss);
	metrics_render(o->metrics, &ds, &rs, &ss, &w);
	httpd_query_metrics(r->h->query, &w);
	httpd_ingest_metrics(r->h->ingest, &w);
	connguard_counts(r->h->guard, &open, &expired);
	metrics_value(&w, "fleetsymd_http_connections_open", "gauge", "HTTP connections open now.",
		      open);
	metrics_value(&w, "fleetsymd_http_header_timeouts_total", "counter",
		      "Connections closed because a request's headers were not complete within "
		      "--header-timeout (slow or idle clients).",
		      expired);
	if (version_prometheus(bi, sizeof(bi), VERSION_LIBS_FLEETSYMD) > 0)
		jsonw_lit(&w, bi);
	if (jsonw_finish(&w, &buf, &len))
		return respond_error(r, conn, 500, "rendering metrics failed");
	return respond_buf(r, conn, 200, buf, len, "text/plain; version=0.0.4");
}

/* ---- MHD glue ---- */

static enum MHD_Result begin(struct req *r, struct MHD_Connection *conn, const char *url)
{
	const struct httpd_opts *o = &r->h->o;
	uint64_t len;
	int err = route(r, url);

	if (r->rt && !method_in(r->rt->allow, r->method))
		return respond_error(r, conn, 405, "%s is not allowed on %s", r->method, r->path);
	if (err == -ERR_BADBUILDID)
		return respond_error(r, conn, 400,
				     "the build ID in the path must be 2-64 hex digits");
	if (err)
		return respond_error(r, conn, 404, "no such endpoint: %s (see docs/api.md)",
				     r->path);
	if (r->rt->handler == H_DEBUGINFO && !strcmp(r->method, "PUT"))
		return upload_begin(r, conn);
	if (r->rt->handler == H_STORE)
		return httpd_ingest_begin(r->h->ingest, conn, r->rt->sub, &r->out, &r->ix);
	if (r->rt->handler == H_SYMBOLIZE && httpresp_content_length(conn, &len) == 0 &&
	    len > o->max_body)
		return respond_error(r, conn, 413,
				     "the request body is %" PRIu64
				     " bytes; at most %zu are taken: "
				     "send fewer addresses per request",
				     len, o->max_body);
	return MHD_YES;
}

static void jscan_feed(struct jscan *j, const char *p, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		char c = p[i];

		if (j->in_str) {
			if (j->esc)
				j->esc = 0;
			else if (c == '\\')
				j->esc = 1;
			else if (c == '"')
				j->in_str = 0;
		} else if (c == '"') {
			j->in_str = 1;
		} else if (c == ',' || c == '[' || c == '{') {
			j->values++;
		}
	}
}

static enum MHD_Result body_chunk(struct req *r, struct MHD_Connection *conn, const char *data,
				  size_t len)
{
	size_t max = r->h->o.max_body;
	int err;

	if (r->rt->handler == H_DEBUGINFO && r->ep == EP_DEBUGINFO_PUT)
		return upload_chunk(r, conn, data, len);
	if (r->rt->handler == H_STORE) {
		r->bytes_in += len;
		return httpd_ingest_body(r->h->ingest, r->ix, data, len);
	}
	if (r->rt->handler != H_SYMBOLIZE) {
		r->bytes_in += len; /* bodies of GETs are ignored */
		return MHD_YES;
	}
	r->bytes_in += len;
	if (r->late_status)
		return r->bytes_in > r->late_limit ? MHD_NO : MHD_YES;
	jscan_feed(&r->scan, data, len);
	if (r->scan.values > r->h->o.max_addresses + SYM_SLACK_VALUES)
		err = -ERANGE;
	else
		err = httpresp_body_append(&r->body, data, len, max);
	if (err) {
		/* the body read so far goes now; the answer when the rest is read */
		free(r->body.data);
		r->body = (struct httpresp_body){0};
		r->out.result = "too_big";
	}
	if (err == -ERANGE)
		return refuse_late(r, 413,
				   "more than %zu addresses (counted as JSON values while the body "
				   "arrived); at most %zu are taken per request",
				   r->h->o.max_addresses, r->h->o.max_addresses);
	if (err == -E2BIG)
		return refuse_late(r, 413,
				   "the request body passed %zu bytes, the most taken: send fewer "
				   "addresses per request",
				   max);
	if (err)
		return refuse_late(r, 500, "out of memory");
	return MHD_YES;
}

static enum MHD_Result finish(struct req *r, struct MHD_Connection *conn)
{
	if (!r->rt)
		return respond_error(r, conn, 404, "no such endpoint");
	switch (r->rt->handler) {
	case H_DEBUGINFO:
		if (!strcmp(r->method, "PUT"))
			return upload_finish(r, conn);
		return debuginfo_status(r, conn);
	case H_BUILDID_FILE: return buildid_file(r, conn);
	case H_SYMBOLIZE:
		if (r->late_status)
			return respond_error(r, conn, r->late_status, "%s", r->late_msg);
		return symbolize(r, conn);
	case H_METRICS: return metrics_page(r, conn);
	case H_UI: return httpd_ui_serve(conn, r->path, &r->out);
	case H_STORE: return httpd_ingest_serve(r->h->ingest, conn, r->path, r->ix);
	case H_QUERY: return httpd_query_serve(r->h->query, conn, r->rt->sub, &r->out);
	}
	return respond_error(r, conn, 404, "no such endpoint");
}

/* Who the peer is, as text, for per-client shares ("" when unknown): its IPv4 address, or the
 * /64 of its IPv6 address (one host usually holds a whole /64). */
static void client_addr(struct MHD_Connection *conn, char *buf, size_t len)
{
	const union MHD_ConnectionInfo *ci =
	    MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	const struct sockaddr *sa = ci ? ci->client_addr : NULL;
	struct in6_addr a6;

	buf[0] = '\0';
	if (sa && sa->sa_family == AF_INET) {
		inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, buf,
			  (socklen_t)len);
	} else if (sa && sa->sa_family == AF_INET6) {
		a6 = ((const struct sockaddr_in6 *)sa)->sin6_addr;
		if (!IN6_IS_ADDR_V4MAPPED(&a6))
			memset(&a6.s6_addr[8], 0, 8);
		inet_ntop(AF_INET6, &a6, buf, (socklen_t)len);
	}
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
				  const char *method, const char *version, const char *upload_data,
				  size_t *upload_data_size, void **con_cls)
{
	struct req *r = *con_cls;

	if (!r) {
		r = calloc(1, sizeof(*r));
		if (!r)
			return MHD_NO;
		r->h = cls;
		r->fd = -1;
		r->t0 = clock_mono_s();
		snprintf(r->method, sizeof(r->method), "%s", method);
		snprintf(r->path, sizeof(r->path), "%s", url);
		*con_cls = r;
		connguard_headers_done(r->h->guard, conn);
		client_addr(conn, r->client, sizeof(r->client));
		/* the headers are in: from now on the connection may idle longer */
		MHD_set_connection_option(conn, MHD_CONNECTION_OPTION_TIMEOUT,
					  (unsigned)HTTPD_IDLE_TIMEOUT_S);
		return begin(r, conn, url);
	}
	if (r->out.status) {
		/* answered early: the rest of the body is read and dropped */
		r->bytes_in += *upload_data_size;
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (*upload_data_size) {
		enum MHD_Result ok = body_chunk(r, conn, upload_data, *upload_data_size);

		*upload_data_size = 0;
		return ok;
	}
	return finish(r, conn);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	static const char *const toes[] = {"ok",       "error",	     "timeout",
					   "shutdown", "read_error", "client_abort"};
	struct httpd *h = cls;
	struct req *r = *con_cls;
	double secs;

	connguard_request_done(h->guard, conn);
	if (!r)
		return;
	*con_cls = NULL;
	forget_tmp(r);
	secs = clock_mono_s() - r->t0;
	metrics_request(h->o.metrics, r->ep, r->out.status, secs);
	log_msg(FS_LOG_INFO,
		"method=%s path=%s status=%u ms=%.2f bytes_in=%" PRIu64 " bytes_out=%" PRIu64
		"%s%s%s%s%s%s%s%s",
		r->method, r->path, r->out.status, secs * 1e3, r->bytes_in, r->out.bytes_out,
		r->build_id[0] ? " build_id=" : "", r->build_id, r->out.result ? " result=" : "",
		r->out.result ? r->out.result : "", r->out.note[0] ? " " : "", r->out.note,
		toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "" : " end=",
		toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? ""
		: toe < sizeof(toes) / sizeof(toes[0])	   ? toes[toe]
							   : "aborted");
	httpd_ingest_req_free(r->ix);
	free(r->body.data);
	free(r);
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	char line[512];
	size_t n;

	vsnprintf(line, sizeof(line), fmt, ap);
	n = strlen(line);
	while (n > 0 && line[n - 1] == '\n')
		line[--n] = '\0';
	log_msg(FS_LOG_WARN, "microhttpd: %s", line);
}

/* "HOST:PORT" or "[V6]:PORT" into SS. */
static int parse_listen(const char *s, struct sockaddr_storage *ss, socklen_t *len)
{
	char host[256];
	const char *colon, *port;
	struct addrinfo hints = {.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE,
				 .ai_socktype = SOCK_STREAM},
			*ai = NULL;
	size_t hl;

	if (s[0] == '[') {
		const char *close = strchr(s, ']');

		if (!close || close[1] != ':')
			return -EINVAL;
		hl = (size_t)(close - s - 1);
		s++;
		port = close + 2;
	} else {
		colon = strrchr(s, ':');
		if (!colon)
			return -EINVAL;
		hl = (size_t)(colon - s);
		port = colon + 1;
	}
	if (hl >= sizeof(host) || !*port)
		return -EINVAL;
	memcpy(host, s, hl);
	host[hl] = '\0';
	if (getaddrinfo(hl ? host : "0.0.0.0", port, &hints, &ai) != 0 || !ai)
		return -EINVAL;
	memcpy(ss, ai->ai_addr, ai->ai_addrlen);
	*len = ai->ai_addrlen;
	freeaddrinfo(ai);
	return 0;
}

/* What httpd_start() made besides the daemon (stopped first, or never started). */
static void free_parts(struct httpd *h)
{
	connguard_free(h->guard);
	httpd_query_free(h->query);
	httpd_ingest_free(h->ingest);
	pthread_cond_destroy(&h->idle);
	pthread_mutex_destroy(&h->lock);
	free(h);
}

int httpd_start(const struct httpd_opts *opts, struct httpd **out)
{
	struct sockaddr_storage ss;
	socklen_t sslen;
	const union MHD_DaemonInfo *info;
	struct httpd *h;
	unsigned flags;
	long ncpu;
	int err;

	*out = NULL;
	if (!opts->store || !opts->resolver || !opts->opensyms || !opts->metrics)
		return -EINVAL;
	err = parse_listen(opts->listen ? opts->listen : "127.0.0.1:7070", &ss, &sslen);
	if (err)
		return err;
	h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	h->o = *opts;
	ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	if (h->o.threads <= 0)
		h->o.threads = ncpu > 2 ? (int)(2 * ncpu) : 4;
	if (!h->o.max_connections)
		h->o.max_connections = HTTPD_DEFAULT_CONNECTIONS;
	if (!h->o.max_per_ip)
		h->o.max_per_ip = HTTPD_DEFAULT_PER_IP;
	if (h->o.header_timeout_ms <= 0)
		h->o.header_timeout_ms = DEFAULT_HEADER_TIMEOUT_MS;
	if (!h->o.max_upload)
		h->o.max_upload = DEFAULT_MAX_UPLOAD;
	if (h->o.request_timeout_ms <= 0)
		h->o.request_timeout_ms = DEFAULT_TIMEOUT_MS;
	if (!h->o.max_addresses)
		h->o.max_addresses = DEFAULT_MAX_ADDRESSES;
	if (!h->o.max_body)
		h->o.max_body = DEFAULT_MAX_BODY;
	pthread_mutex_init(&h->lock, NULL);
	pthread_cond_init(&h->idle, NULL);
	{
		struct httpd_query_opts qo = {.pstore = opts->pstore,
					      .resolver = opts->resolver,
					      .opensyms = opts->opensyms,
					      .request_timeout_ms = h->o.request_timeout_ms,
					      .max_running = h->o.max_heavy_queries,
					      .timeout_ms = h->o.query_timeout_ms};

		struct httpd_ingest_opts io = {.pstore = opts->pstore,
					       .token = opts->token,
					       .max_ingest = opts->max_ingest,
					       .timeout_ms = opts->query_timeout_ms,
					       .body_budget = opts->ingest_memory};

		err = httpd_query_new(&qo, &h->query);
		if (!err)
			err = httpd_ingest_new(&io, &h->ingest);
		if (!err)
			err = connguard_new(h->o.header_timeout_ms, &h->guard);
		if (err) {
			free_parts(h);
			return err;
		}
	}
	flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_USE_ERROR_LOG |
		MHD_ALLOW_SUSPEND_RESUME;
	if (ss.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	/* The logger goes first, or MHD prints what it finds wrong in later options itself. */
	h->mhd = MHD_start_daemon(
	    flags, 0, NULL, NULL, on_request, h, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
	    MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss, MHD_OPTION_THREAD_POOL_SIZE,
	    (unsigned)h->o.threads, MHD_OPTION_NOTIFY_COMPLETED, on_completed, h,
	    MHD_OPTION_NOTIFY_CONNECTION, connguard_notify, h->guard, MHD_OPTION_CONNECTION_LIMIT,
	    h->o.max_connections, MHD_OPTION_PER_IP_CONNECTION_LIMIT, h->o.max_per_ip,
	    MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)HTTPD_HEADER_TIMEOUT_S, MHD_OPTION_END);
	if (!h->mhd) {
		free_parts(h);
		return -EADDRINUSE;
	}
	info = MHD_get_daemon_info(h->mhd, MHD_DAEMON_INFO_BIND_PORT);
	h->port = info ? info->port : 0;
	*out = h;
	return 0;
}

int httpd_port(const struct httpd *h)
{
	return h->port;
}

void httpd_stop(struct httpd *h)
{
	if (!h)
		return;
	/* MHD must not stop with suspended connections: let the parked ones finish (each within
	 * --request-timeout); no new ones are parked. */
	pthread_mutex_lock(&h->lock);
	h->stopping = 1;
	while (h->waiters > 0)
		pthread_cond_wait(&h->idle, &h->lock);
	pthread_mutex_unlock(&h->lock);
	MHD_stop_daemon(h->mhd);
	free_parts(h);
}
