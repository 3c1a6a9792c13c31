/*
 * httpd_ingest - the store routes: parameters in, pstore calls, JSON out.
 *
 * The ingest body is held whole in memory (pprof has no streaming decoder) but never past
 * --max-ingest-size; gzip is recognised by its magic bytes whatever Content-Encoding says
 * (agents and SDKs disagree on sending it), and a body declared gzip that is not is refused.
 * A 200 means the transaction committed with synchronous=FULL: the profile survives a crash
 * or power loss from then on.
 */
#include "symbolizer/http/httpd_ingest.h"
#include "symbolizer/http/httpd_pyro.h"
#include "symbolizer/http/httpd_push.h"
#include "symbolizer/http/httpresp.h"

#include "symbolizer/store/selector.h"

#include "lib/counter.h"
#include "lib/deadline.h"
#include "lib/clock.h"
#include "lib/err.h"
#include "lib/parse.h"
#include "lib/log.h"

#include <errno.h>
#include <inttypes.h>
#include <microhttpd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define DEFAULT_MAX_INGEST ((uint64_t)64 << 20)
#define LATE_DISCARD_MAX   ((uint64_t)64 << 20) /* read and dropped past the cap, then closed */
#define UNAUTH_DISCARD_MAX ((uint64_t)1 << 20)	/* read and dropped without the token */
#define MAX_PARAMS	   PSTORE_MAX_SERIES_LABELS
#define DEFAULT_WINDOW_NS  (3600LL * 1000000000)
#define DEFAULT_STEP_NS	   (10LL * 1000000000)
#define MAX_POINTS	   11000
#define DEFAULT_TIMEOUT_MS 30000
#define BODY_BUSY_MSG                                                                              \
	"the server holds as many ingest bodies as --ingest-memory allows; retry shortly"

enum refusal { RF_BAD_INPUT, RF_TOO_BIG, RF_UNAUTHORIZED, RF_STORE, RF_BUSY, RF_COUNT_ };

static const char *const refusal_names[RF_COUNT_] = {"bad_input", "too_big", "unauthorized",
						     "store", "busy"};

struct httpd_ingest {
	struct httpd_ingest_opts o;
	uint64_t bytes, ingests, rows, samples;
	uint64_t refused[RF_COUNT_];
	uint64_t body_used; /* bytes of o.body_budget held by bodies being received (atomics) */
};

/* Whether ROUTE is an ingest, whose body is held. */
static int takes_body(enum httpd_ingest_ep route)
{
	return route == HTTPD_INGEST_INGEST || route == HTTPD_INGEST_PYROSCOPE ||
	       route == HTTPD_INGEST_PUSH;
}

/* Hold N more bytes of X's body budget for RQ: 0 or -EBUSY. */
static int body_charge(struct httpd_ingest *x, struct httpd_ingest_req *rq, uint64_t n)
{
	if (!x->o.body_budget)
		return 0;
	if (__atomic_add_fetch(&x->body_used, n, __ATOMIC_RELAXED) > x->o.body_budget) {
		__atomic_sub_fetch(&x->body_used, n, __ATOMIC_RELAXED);
		return -EBUSY;
	}
	rq->pool = &x->body_used;
	rq->charged += n;
	return 0;
}

int httpd_ingest_new(const struct httpd_ingest_opts *opts, struct httpd_ingest **out)
{
	struct httpd_ingest *x = calloc(1, sizeof(*x));

	*out = NULL;
	if (!x)
		return -ENOMEM;
	x->o = *opts;
	if (!x->o.max_ingest)
		x->o.max_ingest = DEFAULT_MAX_INGEST;
	if (x->o.timeout_ms <= 0)
		x->o.timeout_ms = DEFAULT_TIMEOUT_MS;
	if (x->o.body_budget && x->o.body_budget < x->o.max_ingest)
		x->o.body_budget = x->o.max_ingest; /* one body of the largest size always fits */
	*out = x;
	return 0;
}

void httpd_ingest_free(struct httpd_ingest *x)
{
	free(x);
}

/* ---- answers ---- */

static enum MHD_Result answer(struct httpd_ingest_req *rq, struct MHD_Connection *conn,
			      unsigned status, struct jsonw *w)
{
	/* 503 is "busy": the ingest decode budget, a locked store */
	static const char *const retry[] = {"Retry-After", "1", NULL};

	return httpresp_json(conn, status, w, "the answer is too large; narrow the selection",
			     status == 503 ? retry : NULL, rq->out);
}

static enum MHD_Result fail(struct httpd_ingest_req *rq, struct MHD_Connection *conn,
			    unsigned status, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* The Connect protocol's error code for an HTTP status of ours (its clients read the code). */
static const char *connect_code(unsigned status)
{
	switch (status) {
	case 400: return "invalid_argument";
	case 401: return "unauthenticated";
	case 404: return "unimplemented";
	case 413:
	case 507: return "resource_exhausted";
	case 415: return "invalid_argument";
	case 503: return "unavailable";
	default: return "internal";
	}
}

static enum MHD_Result fail(struct httpd_ingest_req *rq, struct MHD_Connection *conn,
			    unsigned status, const char *fmt, ...)
{
	struct jsonw w = {0};
	va_list ap;

	va_start(ap, fmt);
	if (rq->route == HTTPD_INGEST_PUSH) { /* a Connect error: {"code":...,"message":...} */
		char msg[1024];

		vsnprintf(msg, sizeof(msg), fmt, ap);
		jsonw_lit(&w, "{\"code\":");
		jsonw_str(&w, connect_code(status));
		jsonw_lit(&w, ",\"message\":");
		jsonw_str(&w, msg);
		jsonw_lit(&w, "}");
		if (!rq->out->result)
			rq->out->result = "error";
	} else {
		httpresp_error_vbody(&w, NULL, rq->out, fmt, ap);
	}
	va_end(ap);
	return answer(rq, conn, status, &w);
}

/* ---- the listings as JSON ---- */

static void write_strings(struct jsonw *w, const struct pstore_strings *l)
{
	jsonw_lit(w, "[");
	for (size_t i = 0; i < l->n; i++) {
		jsonw_lit(w, i ? "," : "");
		jsonw_str(w, l->v[i]);
	}
	jsonw_lit(w, "]");
}

/* {"KEY":[...]} for a plain listing */
static enum MHD_Result answer_strings(struct httpd_ingest_req *rq, struct MHD_Connection *conn,
				      const char *key, struct pstore_strings *l)
{
	struct jsonw w = {0};

	jsonw_lit(&w, "{");
	jsonw_key(&w, key);
	write_strings(&w, l);
	jsonw_lit(&w, "}");
	pstore_strings_free(l);
	return answer(rq, conn, 200, &w);
}

/* {"types":[{"name":N,"unit":U},...]} */
static enum MHD_Result answer_types(struct httpd_ingest_req *rq, struct MHD_Connection *conn,
				    struct pstore_strings *l)
{
	struct jsonw w = {0};

	jsonw_lit(&w, "{\"types\":[");
	for (size_t i = 0; i + 1 < l->n; i += 2) {
		jsonw_lit(&w, i ? ",{\"name\":" : "{\"name\":");
		jsonw_str(&w, l->v[i]);
		jsonw_lit(&w, ",\"unit\":");
		jsonw_str(&w, l->v[i + 1]);
		jsonw_lit(&w, "}");
	}
	jsonw_lit(&w, "]}");
	pstore_strings_free(l);
	return answer(rq, conn, 200, &w);
}

/* {"series":[{"labels":{...},"first_seen":T,"last_seen":T},...]} */
static enum MHD_Result answer_series(struct httpd_ingest_req *rq, struct MHD_Connection *conn,
				     struct pstore_series_list *l)
{
	struct jsonw w = {0};

	jsonw_lit(&w, "{\"series\":[");
	for (size_t i = 0; i < l->n; i++) {
		const struct pstore_strings *lb = &l->v[i].labels;

		jsonw_lit(&w, i ? ",{\"labels\":{" : "{\"labels\":{");
		for (size_t k = 0; k + 1 < lb->n; k += 2) {
			jsonw_lit(&w, k ? "," : "");
			jsonw_key(&w, lb->v[k]);
			jsonw_str(&w, lb->v[k + 1]);
		}
		jsonw_lit(&w, "},\"first_seen\":");
		jsonw_time(&w, l->v[i].first_seen_ns / 1000000000);
		jsonw_lit(&w, ",\"last_seen\":");
		jsonw_time(&w, l->v[i].last_seen_ns / 1000000000);
		jsonw_lit(&w, "}");
	}
	jsonw_lit(&w, "]}");
	pstore_series_list_free(l);
	return answer(rq, conn, 200, &w);
}

/* {"points":[[t,v],...],"from":F,"to":T,"step":S}; whole seconds print as integers */
static enum MHD_Result answer_timeline(struct httpd_ingest_req *rq, struct MHD_Connection *conn,
				       int64_t *values, size_t n, int64_t from, int64_t to,
				       int64_t step)
{
	struct jsonw w = {0};

	jsonw_lit(&w, "{\"points\":[");
	for (size_t i = 0; i < n; i++) {
		int64_t t = from + (int64_t)i * step;

		if (t % 1000000000 == 0)
			jsonw_printf(&w, "%s[%" PRId64 ",%" PRId64 "]", i ? "," : "",
				     t / 1000000000, values[i]);
		else
			jsonw_printf(&w, "%s[%.3f,%" PRId64 "]", i ? "," : "", t / 1e9, values[i]);
	}
	jsonw_printf(&w, "],\"from\":%.3f,\"to\":%.3f,\"step\":%.3f}", from / 1e9, to / 1e9,
		     step / 1e9);
	free(values);
	return answer(rq, conn, 200, &w);
}

static unsigned status_of(int err)
{
	switch (err) {
	case -ERR_BADINPUT:
	case -EINVAL: return 400;
	case -EPROTONOSUPPORT: return 415;
	case -ERR_TOOBIG:
	case -E2BIG: return 413;
	case -ENOSPC: return 507;
	case -EROFS: /* the store opened read-only (pstore_open) */
	case -EACCES:
	case -EPERM:
	case -EBUSY:
	case -ETIME: return 503;
	default: return 500;
	}
}

/* ---- begin and body ---- */

enum MHD_Result httpd_ingest_begin(struct httpd_ingest *x, struct MHD_Connection *conn,
				   enum httpd_ingest_ep route, struct httpresp_outcome *out,
				   struct httpd_ingest_req **rqp)
{
	struct httpd_ingest_req *rq = calloc(1, sizeof(*rq));
	uint64_t len;

	*rqp = rq;
	if (!rq)
		return MHD_NO;
	rq->route = route;
	rq->out = out;
	if (!x || !x->o.pstore)
		return fail(rq, conn, 503, "this server has no profile store");
	if (!takes_body(route))
		return MHD_YES;
	if (x->o.token && !(route != HTTPD_INGEST_INGEST ? httpd_pyro_token_ok(conn, x->o.token)
							 : httpresp_token_ok(conn, x->o.token))) {
		rq->unauthorized = 1; /* ingest() answers once the body is in */
		return MHD_YES;
	}
	if (httpresp_content_length(conn, &len) == 0 && len > x->o.max_ingest) {
		counter_add(&x->refused[RF_TOO_BIG], 1);
		rq->out->result = "too_big";
		return fail(rq, conn, 413,
			    "the profile is %" PRIu64 " bytes; this server takes at most "
			    "%" PRIu64 " (--max-ingest-size)",
			    len, x->o.max_ingest);
	}
	if (httpresp_content_length(conn, &len) == 0 && body_charge(x, rq, len)) {
		counter_add(&x->refused[RF_BUSY], 1);
		rq->out->result = "busy";
		return fail(rq, conn, 503, BODY_BUSY_MSG);
	}
	return MHD_YES;
}

enum MHD_Result httpd_ingest_body(struct httpd_ingest *x, struct httpd_ingest_req *rq,
				  const char *data, size_t len)
{
	uint64_t max = x ? x->o.max_ingest : 0;
	int err;

	rq->seen += len;
	if (!takes_body(rq->route) || rq->out->status)
		return MHD_YES; /* bodies of GETs are ignored */
	if (rq->unauthorized)
		return rq->seen > UNAUTH_DISCARD_MAX ? MHD_NO : MHD_YES;
	if (rq->too_big || rq->busy)
		return rq->seen > max + LATE_DISCARD_MAX ? MHD_NO : MHD_YES;
	if (rq->seen > rq->charged && body_charge(x, rq, rq->seen - rq->charged)) {
		/* chunked: held as it comes; answered at the end */
		rq->busy = 1;
		free(rq->body.data);
		rq->body = (struct httpresp_body){0};
		return MHD_YES;
	}
	err = httpresp_body_append(&rq->body, data, len, (size_t)max);
	if (err == -E2BIG) {
		/* chunked: no Content-Length to refuse up front; answered at the end */
		rq->too_big = 1;
		free(rq->body.data);
		rq->body = (struct httpresp_body){0};
		return MHD_YES;
	}
	return err ? MHD_NO : MHD_YES;
}

void httpd_ingest_req_free(struct httpd_ingest_req *rq)
{
	if (!rq)
		return;
	free(rq->body.data);
	if (rq->pool)
		__atomic_sub_fetch(rq->pool, rq->charged, __ATOMIC_RELAXED);
	free(rq);
}

/* ---- POST /api/v1/ingest ---- */

struct params {
	struct pstore_label l[MAX_PARAMS + 1];
	size_t n;
	int too_many;
};

static enum MHD_Result collect(void *cls, enum MHD_ValueKind kind, const char *key,
			       const char *value)
{
	struct params *p = cls;

	if (p->n >= MAX_PARAMS) {
		p->too_many = 1;
		return MHD_NO;
	}
	p->l[p->n].name = key;
	p->l[p->n++].value = value ? value : "";
	return MHD_YES;
}

/* Answer an ingest the store or the converter refused with ERR (MSG: why, or ""). */
static enum MHD_Result refuse(struct httpd_ingest *x, struct httpd_ingest_req *rq,
			      struct MHD_Connection *conn, int err, const char *msg)
{
	unsigned st = status_of(err);
	int badin = st == 400 || st == 415; /* 415: a format this server does not read */

	counter_add(&x->refused[badin	    ? RF_BAD_INPUT
				: st == 413 ? RF_TOO_BIG
				: st == 503 ? RF_BUSY
					    : RF_STORE],
		    1);
	rq->out->result = badin	      ? "bad_input"
			  : st == 413 ? "too_big"
			  : st == 503 ? "busy"
				      : "error";
	return fail(rq, conn, st, "%s", msg[0] ? msg : err_str(err));
}

/* POST /push.v1.PusherService/Push, its body held: a Connect answer, {} or the empty message */
static enum MHD_Result push(struct httpd_ingest *x, struct MHD_Connection *conn,
			    struct httpd_ingest_req *rq, const char *enc)
{
	const char *ct =
	    MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
	int json = httpd_push_codec(ct), err;
	struct httpd_push_result res;
	struct jsonw w = {0};
	char msg[600] = "";

	if (json < 0) {
		counter_add(&x->refused[RF_BAD_INPUT], 1);
		rq->out->result = "bad_input";
		return fail(rq, conn, 415,
			    "Content-Type '%.64s': the push API takes application/proto or "
			    "application/json (the Connect protocol; gRPC is not served)",
			    ct ? ct : "");
	}
	if (enc && strcasecmp(enc, "identity")) {
		counter_add(&x->refused[RF_BAD_INPUT], 1);
		rq->out->result = "bad_input";
		return fail(rq, conn, 415,
			    "Content-Encoding %.32s: push requests are taken uncompressed (their "
			    "raw profiles may be gzip'd)",
			    enc);
	}
	err = httpd_push_ingest(x->o.pstore, rq->body.data ? rq->body.data : "", rq->body.len, json,
				&res, msg, sizeof(msg));
	counter_add(&x->ingests, res.profiles - res.duplicates);
	counter_add(&x->rows, res.rows);
	counter_add(&x->samples, res.samples);
	if (err)
		return refuse(x, rq, conn, err, msg);
	rq->out->result = res.duplicates == res.profiles ? "duplicate" : "stored";
	snprintf(rq->out->note, sizeof(rq->out->note), "profiles=%zu duplicates=%zu samples=%zu",
		 res.profiles, res.duplicates, res.samples);
	if (!json) /* PushResponse has no fields: its binary form is empty */
		return httpresp_queue(conn, 200, NULL, 0, "application/proto", NULL, rq->out);
	jsonw_lit(&w, "{}");
	return answer(rq, conn, 200, &w);
}

static enum MHD_Result ingest(struct httpd_ingest *x, struct MHD_Connection *conn,
			      struct httpd_ingest_req *rq)
{
	const char *enc =
	    MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_ENCODING);
	/* a retry of a profile whose answer was lost carries the same key: stored once */
	struct pstore_ingest_info info = {
	    .key = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Idempotency-Key")};
	struct params p = {0};
	struct jsonw w = {0};
	char msg[512] = "";
	int err;

	if (rq->unauthorized) {
		counter_add(&x->refused[RF_UNAUTHORIZED], 1);
		rq->out->result = "unauthorized";
		return fail(
		    rq, conn, 401,
		    "ingest needs the header 'Authorization: Bearer TOKEN'%s with the token "
		    "of the server's --token-file",
		    rq->route != HTTPD_INGEST_INGEST ? " (or basic auth, TOKEN the password)" : "");
	}
	counter_add(&x->bytes, rq->seen);
	if (rq->busy) {
		counter_add(&x->refused[RF_BUSY], 1);
		rq->out->result = "busy";
		return fail(rq, conn, 503, BODY_BUSY_MSG);
	}
	if (rq->too_big) {
		counter_add(&x->refused[RF_TOO_BIG], 1);
		rq->out->result = "too_big";
		return fail(rq, conn, 413,
			    "the profile passed %" PRIu64
			    " bytes, the most this server takes (--max-ingest-size)",
			    x->o.max_ingest);
	}
	if (enc && !strcasecmp(enc, "gzip") &&
	    !(rq->body.len >= 2 && (uint8_t)rq->body.data[0] == 0x1f &&
	      (uint8_t)rq->body.data[1] == 0x8b)) {
		counter_add(&x->refused[RF_BAD_INPUT], 1);
		return fail(rq, conn, 400,
			    "Content-Encoding is gzip but the body is not gzip data");
	}
	if (rq->route == HTTPD_INGEST_PUSH)
		return push(x, conn, rq, enc);
	if (rq->route == HTTPD_INGEST_PYROSCOPE) {
		/* Pyroscope's name=APP{k=v} and parameters; the labels come from them */
		err = httpd_pyro_ingest(x->o.pstore, conn, rq->body.data ? rq->body.data : "",
					rq->body.len, &info, msg, sizeof(msg));
	} else {
		MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, collect, &p);
		if (p.too_many) {
			counter_add(&x->refused[RF_BAD_INPUT], 1);
			return fail(rq, conn, 400, "more than %d series labels in the query string",
				    MAX_PARAMS);
		}
		err = pstore_ingest_ex(x->o.pstore, p.l, p.n, rq->body.data ? rq->body.data : "",
				       rq->body.len, &info, msg, sizeof(msg));
	}
	if (err)
		return refuse(x, rq, conn, err, msg);
	counter_add(&x->ingests, 1);
	counter_add(&x->rows, info.profiles);
	counter_add(&x->samples, info.samples);
	rq->out->result = info.duplicate ? "duplicate" : "stored";
	snprintf(rq->out->note, sizeof(rq->out->note), "profiles=%zu samples=%zu labels=%zu",
		 info.profiles, info.samples, p.n);
	jsonw_printf(&w, "{\"profiles\":%zu,\"samples\":%zu,\"time_ns\":%" PRId64, info.profiles,
		     info.samples, info.time_ns);
	if (info.duplicate)
		jsonw_lit(&w, ",\"duplicate\":true");
	if (info.truncated)
		jsonw_printf(&w, ",\"truncated_stacks\":%zu", info.truncated);
	jsonw_lit(&w, "}");
	return answer(rq, conn, 200, &w);
}

/* ---- the listings ---- */

/* query, from, to: defaults {}, now-1h, now. *DONE when a refusal was queued (the result is
 * the queueing's); else MHD_YES and the window. */
static enum MHD_Result window(struct httpd_ingest_req *rq, struct MHD_Connection *conn,
			      struct selector **sel, int64_t *from, int64_t *to, int *done)
{
	const char *q = httpresp_arg(conn, "query"), *f = httpresp_arg(conn, "from"),
		   *t = httpresp_arg(conn, "to");
	int64_t now = clock_wall_ns();
	char msg[300];
	int err;

	*done = 0;
	*sel = NULL;
	err = selector_parse(q ? q : "", sel, msg, sizeof(msg));
	if (!err) {
		*from = now - DEFAULT_WINDOW_NS;
		*to = now;
		if (f)
			err = time_parse(f, now, from, msg, sizeof(msg));
		if (!err && t)
			err = time_parse(t, now, to, msg, sizeof(msg));
		if (!err && *from >= *to) {
			snprintf(msg, sizeof(msg), "from (%s) must be before to (%s)",
				 f ? f : "now-1h", t ? t : "now");
			err = -ERR_BADINPUT;
		}
	}
	if (err) {
		selector_free(*sel);
		*sel = NULL;
		*done = 1;
		return fail(rq, conn, err == -ENOMEM ? 500 : 400, "%s", msg);
	}
	return MHD_YES;
}

static enum MHD_Result store_error(struct httpd_ingest_req *rq, struct MHD_Connection *conn,
				   int err)
{
	if (err == -ETIME) {
		rq->out->result = "timeout";
		return fail(rq, conn, 503,
			    "stopped in the profile store at the deadline (--query-timeout): "
			    "narrow the selector or the time window");
	}
	return fail(rq, conn, status_of(err), "the profile store failed: %s", err_str(err));
}

static enum MHD_Result series(struct httpd_ingest *x, struct MHD_Connection *conn,
			      struct httpd_ingest_req *rq)
{
	struct pstore_series_list l = {0};
	struct selector *sel;
	int64_t from, to;
	enum MHD_Result ok;
	int done, err;

	ok = window(rq, conn, &sel, &from, &to, &done);
	if (done)
		return ok;
	err = pstore_series(x->o.pstore, sel, from, to, &l);
	selector_free(sel);
	if (err)
		return store_error(rq, conn, err);
	return answer_series(rq, conn, &l);
}

static enum MHD_Result timeline(struct httpd_ingest *x, struct MHD_Connection *conn,
				struct httpd_ingest_req *rq)
{
	const char *st = httpresp_arg(conn, "step"), *type = httpresp_arg(conn, "type");
	struct selector *sel;
	int64_t from, to, step, *values;
	size_t n;
	enum MHD_Result ok;
	int done, err;

	ok = window(rq, conn, &sel, &from, &to, &done);
	if (done)
		return ok;
	if (st) {
		if (parse_duration(st, &step) || step <= 0) {
			selector_free(sel);
			return fail(rq, conn, 400,
				    "bad step '%.64s': want a duration like 10s, 1m, 1h", st);
		}
		if ((uint64_t)(to - from) / (uint64_t)step >= MAX_POINTS) {
			selector_free(sel);
			return fail(rq, conn, 400,
				    "step %s gives more than %d points for this window; use a "
				    "larger step",
				    st, MAX_POINTS);
		}
	} else {
		step = DEFAULT_STEP_NS;
		if ((to - from) / step >= MAX_POINTS)
			step = (to - from) / 1000;
	}
	err = pstore_timeline(x->o.pstore, sel, from, to, step, type, &values, &n);
	selector_free(sel);
	if (err)
		return store_error(rq, conn, err);
	return answer_timeline(rq, conn, values, n, from, to, step);
}

static enum MHD_Result serve(struct httpd_ingest *x, struct MHD_Connection *conn, const char *url,
			     struct httpd_ingest_req *rq)
{
	static const char values_prefix[] = "/api/v1/labels/";
	char name[PSTORE_MAX_LABEL_NAME + 1];
	struct pstore_strings l = {0};
	size_t n;
	int err;

	switch (rq->route) {
	case HTTPD_INGEST_INGEST:
	case HTTPD_INGEST_PYROSCOPE:
	case HTTPD_INGEST_PUSH: return ingest(x, conn, rq);
	case HTTPD_INGEST_LABELS:
		err = pstore_labels(x->o.pstore, &l);
		return err ? store_error(rq, conn, err) : answer_strings(rq, conn, "labels", &l);
	case HTTPD_INGEST_LABEL_VALUES:
		url += sizeof(values_prefix) - 1;
		n = strcspn(url, "/");
		if (n > PSTORE_MAX_LABEL_NAME)
			return fail(rq, conn, 400, "label names have at most %d bytes",
				    PSTORE_MAX_LABEL_NAME);
		memcpy(name, url, n);
		name[n] = '\0';
		err = pstore_label_values(x->o.pstore, name, &l);
		return err ? store_error(rq, conn, err) : answer_strings(rq, conn, "values", &l);
	case HTTPD_INGEST_TYPES:
		err = pstore_types(x->o.pstore, &l);
		return err ? store_error(rq, conn, err) : answer_types(rq, conn, &l);
	case HTTPD_INGEST_SERIES: return series(x, conn, rq);
	case HTTPD_INGEST_TIMELINE: return timeline(x, conn, rq);
	}
	return fail(rq, conn, 404, "no such endpoint");
}

enum MHD_Result httpd_ingest_serve(struct httpd_ingest *x, struct MHD_Connection *conn,
				   const char *url, struct httpd_ingest_req *rq)
{
	enum MHD_Result ok;

	if (!x || !x->o.pstore)
		return fail(rq, conn, 503, "this server has no profile store");
	/* the listings read the store under the query deadline (--query-timeout) */
	deadline_set_in(takes_body(rq->route) ? 0 : x->o.timeout_ms);
	ok = serve(x, conn, url, rq);
	deadline_set_in(0);
	return ok;
}

/* ---- metrics ---- */

void httpd_ingest_metrics(struct httpd_ingest *x, struct jsonw *w)
{
	struct pstore_stats st;

	if (!x)
		return;
	metrics_value(w, "fleetsymd_ingest_bytes_total", "counter",
		      "Bytes of ingest bodies received (as sent, gzip'd or not).",
		      counter_get(&x->bytes));
	metrics_value(w, "fleetsymd_ingest_profiles_total", "counter",
		      "Profiles ingested and stored.", counter_get(&x->ingests));
	metrics_value(w, "fleetsymd_ingest_profile_rows_total", "counter",
		      "Profile rows stored (one per sample type of an ingested profile).",
		      counter_get(&x->rows));
	metrics_value(w, "fleetsymd_ingest_samples_total", "counter",
		      "Samples of the ingested profiles.", counter_get(&x->samples));
	metrics_header(w, "fleetsymd_ingest_errors_total", "counter",
		       "Ingests refused, by reason.");
	for (int i = 0; i < RF_COUNT_; i++)
		jsonw_printf(w, "fleetsymd_ingest_errors_total{reason=\"%s\"} %" PRIu64 "\n",
			     refusal_names[i], counter_get(&x->refused[i]));
	if (!x->o.pstore)
		return;
	pstore_stats(x->o.pstore, &st);
	metrics_value(w, "fleetsymd_ingest_decoded_bytes_total", "counter",
		      "Bytes of pprof decoded (after gunzip).", st.decoded_bytes);
	metrics_value(w, "fleetsymd_ingest_truncated_stacks_total", "counter",
		      "Stacks deeper than the store's cap, cut at ingest.", st.truncated_stacks);
	metrics_value(
	    w, "fleetsymd_ingest_commits_total", "counter",
	    "Store transactions that wrote ingested profiles (concurrent ones share one).",
	    st.ingest_commits);
	metrics_value(w, "fleetsymd_retention_runs_total", "counter",
		      "Retention passes over the store.", st.retain_runs);
	metrics_value(w, "fleetsymd_retention_deleted_profiles_total", "counter",
		      "Profile rows deleted by retention.", st.retained_profiles);
	metrics_value(w, "fleetsymd_store_read_only", "gauge",
		      "1 while the profile store cannot write (opened on a full or read-only disk) "
		      "and refuses ingests; see the log's event=store_read_only.",
		      pstore_read_only(x->o.pstore) != 0);
	metrics_value(w, "fleetsymd_store_unreachable", "gauge",
		      "1 while the ClickHouse store is taken as down (unreachable, or a send past "
		      "2 s): ingests answer 503 at once.",
		      (uint64_t)pstore_backend_down(x->o.pstore));
}
