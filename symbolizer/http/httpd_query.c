/*
 * httpd_query - one "side" (selector, window, type) is the unit of work: parse its parameters,
 * merge it in the store, symbolize it. /query renders one side, /diff two (the base first),
 * /missing one with the ranking of build IDs. Parameters are checked before the store is
 * touched; every refusal is a 4xx with a JSON message a person can act on.
 *
 * Metrics are kept here (relaxed atomics): a latency histogram per endpoint and the time
 * spent in each step (store, symbolize, render), so a slow query shows where it was slow.
 */
#include "symbolizer/http/httpd_query.h"
#include "symbolizer/http/httpresp.h"
#include "symbolizer/http/metrics.h"

#include "symbolizer/query/qsym.h"
#include "symbolizer/query/render.h"
#include "symbolizer/store/selector.h"

#include "lib/counter.h"
#include "lib/deadline.h"
#include "lib/clock.h"
#include "lib/err.h"
#include "lib/log.h"

#include <errno.h>
#include <inttypes.h>
#include <microhttpd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_TIMEOUT_MS 5000
#define DEFAULT_MAX_STACKS 2000000
#define DEFAULT_WINDOW_NS  (3600 * (int64_t)1000000000) /* the last hour */
#define MAX_RESPONSE	   ((size_t)64 << 20)		/* an answer; more is 413, never built */
#define MAX_QUERY_ECHO	   1024
#define DEFAULT_QUERY_MS   30000
#define RETRY_AFTER_S	   "2"

enum qstep { STEP_STORE, STEP_SYMBOLIZE, STEP_RENDER, STEP_COUNT_ };

static const char *const qep_names[HTTPD_QUERY_COUNT_] = {"", "query", "diff", "missing"};
static const char *const step_names[STEP_COUNT_] = {"store", "symbolize", "render"};
static const double lat_bounds[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};
#define NLAT (sizeof(lat_bounds) / sizeof(lat_bounds[0]) + 1)

struct httpd_query {
	struct httpd_query_opts o;
	struct qsym *qsym;
	uint64_t lat[HTTPD_QUERY_COUNT_][NLAT];
	uint64_t lat_usec[HTTPD_QUERY_COUNT_];
	uint64_t step_usec[STEP_COUNT_];
	uint64_t partial, errors;
	int running;	   /* requests in progress (atomics) */
	uint64_t refused;  /* refused: max_running were running */
	uint64_t timeouts; /* stopped at timeout_ms */
};

int httpd_query_new(const struct httpd_query_opts *opts, struct httpd_query **out)
{
	struct qsym_opts qo = {.resolver = opts->resolver,
			       .opensyms = opts->opensyms,
			       .wait_ms = opts->request_timeout_ms,
			       .max_cached = opts->max_cached};
	struct httpd_query *q;
	int err;

	*out = NULL;
	q = calloc(1, sizeof(*q));
	if (!q)
		return -ENOMEM;
	q->o = *opts;
	if (q->o.request_timeout_ms <= 0)
		q->o.request_timeout_ms = DEFAULT_TIMEOUT_MS;
	if (!q->o.max_stacks)
		q->o.max_stacks = DEFAULT_MAX_STACKS;
	if (q->o.max_running <= 0) {
		long ncpu = sysconf(_SC_NPROCESSORS_ONLN);

		q->o.max_running = ncpu > 4 ? (int)(2 * ncpu) : 8; /* a web UI page asks ~4 */
	}
	if (q->o.timeout_ms <= 0)
		q->o.timeout_ms = DEFAULT_QUERY_MS;
	err = qsym_new(&qo, &q->qsym);
	if (err) {
		free(q);
		return err;
	}
	*out = q;
	return 0;
}

void httpd_query_free(struct httpd_query *q)
{
	if (!q)
		return;
	qsym_free(q->qsym);
	free(q);
}

/* ---- one request ---- */

struct qreq {
	struct httpd_query *q;
	struct MHD_Connection *conn;
	enum httpd_query_ep ep;
	struct httpresp_outcome *out; /* the request's (httpd.c's) */
	size_t noteoff;		      /* out->note in use */
	char msg[512];		      /* why the request was refused */
	double step[STEP_COUNT_];
};

static const char *arg(const struct qreq *r, const char *name)
{
	return httpresp_arg(r->conn, name);
}

static void note(struct qreq *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void note(struct qreq *r, const char *fmt, ...)
{
	va_list ap;
	int n;

	char *note = r->out->note;
	size_t len = sizeof(r->out->note);

	if (r->noteoff + 1 >= len)
		return;
	va_start(ap, fmt);
	n = vsnprintf(note + r->noteoff, len - r->noteoff, fmt, ap);
	va_end(ap);
	if (n > 0)
		r->noteoff = r->noteoff + (size_t)n < len ? r->noteoff + (size_t)n : len - 1;
}

/* Queue BUF (owned; freed by MHD) with extra headers (NULL-terminated name, value pairs); query
 * answers are never cached by clients. */
static enum MHD_Result respond(struct qreq *r, unsigned status, char *buf, size_t len,
			       const char *ctype, const char *const *headers)
{
	const char *hdr[16] = {MHD_HTTP_HEADER_CACHE_CONTROL, "no-store"};
	size_t n = 2;

	for (; headers && headers[0] && n + 3 <= 16; headers += 2, n += 2)
		hdr[n] = headers[0], hdr[n + 1] = headers[1];
	hdr[n] = NULL;
	return httpresp_queue(r->conn, status, buf, len, ctype, hdr, r->out);
}

/* MSG as a JSON error body into *BUF: 0, or -ENOMEM. */
static int error_body(const char *msg, char **buf, size_t *len)
{
	struct jsonw w = {0};

	httpresp_error_body(&w, msg, NULL);
	jsonw_lit(&w, "\n");
	return jsonw_finish(&w, buf, len);
}

/* A 503 with Retry-After: the client may try again shortly. Counts nothing. */
static enum MHD_Result respond_retry(struct qreq *r, const char *msg)
{
	static const char *const retry[] = {"Retry-After", RETRY_AFTER_S, NULL};
	char *buf;
	size_t len;

	if (error_body(msg, &buf, &len))
		return MHD_NO;
	return respond(r, 503, buf, len, "application/json", retry);
}

static enum MHD_Result respond_error(struct qreq *r, unsigned status, const char *msg)
{
	char *buf;
	size_t len;

	if (error_body(msg, &buf, &len))
		return MHD_NO;
	if (!r->out->result)
		r->out->result = "error";
	if (status >= 500)
		counter_add(&r->q->errors, 1);
	return respond(r, status, buf, len, "application/json", NULL);
}

/* A store or symbolizer error as an answer. */
static enum MHD_Result respond_err(struct qreq *r, int err, const char *what)
{
	char msg[512];

	if (err == -E2BIG || err == -ERR_TOOBIG) {
		snprintf(msg, sizeof(msg),
			 "%s: the selection is too large (more than %zu distinct stacks, or an "
			 "answer past its size cap): narrow the selector or the time window, or "
			 "use max_nodes",
			 what, r->q->o.max_stacks);
		return respond_error(r, 413, msg);
	}
	if (err == -ETIME) {
		counter_add(&r->q->timeouts, 1);
		snprintf(msg, sizeof(msg),
			 "%s: stopped after %d ms in the store (--query-timeout): narrow the "
			 "selector or the time window",
			 what, r->q->o.timeout_ms);
		r->out->result = "timeout";
		return respond_retry(r, msg);
	}
	if (err == -ERANGE) {
		snprintf(msg, sizeof(msg),
			 "%s: the selected sample values add up past 2^62: narrow the selector or "
			 "the time window",
			 what);
		return respond_error(r, 422, msg);
	}
	if (err == -EBUSY) { /* the store's backend (ClickHouse) down or past its deadline */
		snprintf(msg, sizeof(msg),
			 "%s: the profile store is unreachable or did not answer in time; retry "
			 "shortly",
			 what);
		log_msg(FS_LOG_WARN, "%s failed: the profile store is unavailable", what);
		counter_add(&r->q->errors, 1);
		return respond_retry(r, msg);
	}
	snprintf(msg, sizeof(msg), "%s failed: %s", what, err_str(err));
	log_msg(FS_LOG_WARN, "%s failed: %s", what, err_str(err));
	return respond_error(r, err == -ENOMEM ? 503 : 500, msg);
}

/* ---- one side: parameters, store, symbolizer ---- */

struct query_side {
	const char *query; /* as asked, NULL = all */
	struct selector *sel;
	int64_t from, to;
	struct pstore_result *r;
	struct qsym_result *s;
	struct render_input in;
};

static void side_free(struct query_side *sd)
{
	selector_free(sd->sel);
	pstore_result_free(sd->r);
	qsym_result_free(sd->s);
}

/* Parse the side's parameters QK (selector), FK, TK (window); DEF_FROM/DEF_TO when absent.
 * 0, or -EINVAL with r->msg set. */
static int side_parse(struct qreq *r, struct query_side *sd, const char *qk, const char *fk,
		      const char *tk, int64_t def_from, int64_t def_to)
{
	const char *from = arg(r, fk), *to = arg(r, tk);
	int64_t now = clock_wall_ns();
	char err[256] = "";

	sd->query = arg(r, qk);
	if (sd->query && strlen(sd->query) > MAX_QUERY_ECHO) {
		snprintf(r->msg, sizeof(r->msg), "'%s' is longer than %d bytes", qk,
			 MAX_QUERY_ECHO);
		return -EINVAL;
	}
	if (sd->query && selector_parse(sd->query, &sd->sel, err, sizeof(err))) {
		snprintf(r->msg, sizeof(r->msg), "bad selector in '%s': %s", qk, err);
		return -EINVAL;
	}
	sd->from = def_from;
	sd->to = def_to;
	if (from && time_parse(from, now, &sd->from, err, sizeof(err))) {
		snprintf(r->msg, sizeof(r->msg), "bad '%s': %s", fk, err);
		return -EINVAL;
	}
	if (to && time_parse(to, now, &sd->to, err, sizeof(err))) {
		snprintf(r->msg, sizeof(r->msg), "bad '%s': %s", tk, err);
		return -EINVAL;
	}
	if (sd->from >= sd->to) {
		snprintf(r->msg, sizeof(r->msg), "'%s' must be before '%s'", fk, tk);
		return -EINVAL;
	}
	return 0;
}

/* Merge and symbolize the side, of TYPE (NULL: the store's choice). */
static int side_run(struct qreq *r, struct query_side *sd, const char *type)
{
	double t0 = clock_mono_s(), t1;
	int err;

	err = pstore_query(r->q->o.pstore, sd->sel, sd->from, sd->to, type, r->q->o.max_stacks,
			   &sd->r);
	t1 = clock_mono_s();
	r->step[STEP_STORE] += t1 - t0;
	if (err)
		return err;
	err = qsym_run(r->q->qsym, sd->r, &sd->s);
	r->step[STEP_SYMBOLIZE] += clock_mono_s() - t1;
	if (err)
		return err;
	sd->in = (struct render_input){
	    .r = sd->r, .s = sd->s, .from_ns = sd->from, .to_ns = sd->to, .query = sd->query};
	note(r,
	     "%sprofiles=%zu stacks=%zu locations=%zu symbolized=%zu cache_hits=%zu unknown=%zu%s",
	     r->noteoff ? " " : "", sd->r->nprofiles, sd->r->nstacks, sd->r->nlocs,
	     sd->s->symbolized, sd->s->cache_hits, sd->s->unknown,
	     sd->s->partial ? " partial=1" : "");
	return 0;
}

static int parse_size_arg(struct qreq *r, const char *name, size_t *out)
{
	const char *v = arg(r, name);
	char *end;
	unsigned long long n;

	*out = 0;
	if (!v)
		return 0;
	errno = 0;
	n = strtoull(v, &end, 10);
	if (errno || *end || v[0] == '-' || n > 100000000) {
		snprintf(r->msg, sizeof(r->msg), "'%s' must be a number from 0 to 100000000", name);
		return -EINVAL;
	}
	*out = (size_t)n;
	return 0;
}

/* ---- answers ---- */

static enum MHD_Result send_text(struct qreq *r, struct jsonw *w, const char *ctype,
				 const char *const *hdr)
{
	char *buf;
	size_t len;
	int err = jsonw_finish(w, &buf, &len);

	if (err)
		return respond_err(r, err, "rendering");
	return respond(r, 200, buf, len, ctype, hdr);
}

static enum MHD_Result query(struct qreq *r)
{
	static const char *const formats[] = {"json", "folded", "top", "pprof"};
	const char *format = arg(r, "format") ? arg(r, "format") : "json", *type = arg(r, "type");
	struct render_opts o = {.max_bytes = MAX_RESPONSE};
	struct jsonw w = {.max = MAX_RESPONSE};
	struct query_side sd = {0};
	char total[32];
	int64_t now = clock_wall_ns();
	double t0;
	size_t f;
	enum MHD_Result ok;
	int err;

	for (f = 0; f < 4 && strcmp(format, formats[f]); f++)
		;
	if (f == 4)
		return respond_error(r, 400, "'format' must be json, folded, top or pprof");
	if (parse_size_arg(r, "max_nodes", &o.max_nodes) ||
	    side_parse(r, &sd, "query", "from", "to", now - DEFAULT_WINDOW_NS, now)) {
		side_free(&sd);
		return respond_error(r, 400, r->msg);
	}
	err = side_run(r, &sd, type);
	if (err) {
		ok = respond_err(r, err, "the query");
		side_free(&sd);
		return ok;
	}
	snprintf(total, sizeof(total), "%" PRId64, sd.r->total);
	{
		const char *hdr[] = {"X-Fleetsym-Total",
				     total,
				     "X-Fleetsym-Partial",
				     sd.s->partial ? "1" : "0",
				     NULL,
				     NULL,
				     NULL};
		uint8_t *pb = NULL;
		size_t len = 0;

		t0 = clock_mono_s();
		r->out->result = sd.s->partial ? "partial" : "ok";
		switch (f) {
		case 0: err = render_json(&sd.in, &o, &w); break;
		case 1: err = render_folded(&sd.in, &o, &w); break;
		case 2: err = render_top(&sd.in, &o, &w); break;
		default: err = render_pprof(&sd.in, &o, &pb, &len); break;
		}
		r->step[STEP_RENDER] += clock_mono_s() - t0;
		if (err) {
			jsonw_free(&w);
			ok = respond_err(r, err, "rendering");
		} else if (f == 3) {
			hdr[4] = "Content-Disposition";
			hdr[5] = "attachment; filename=\"profile.pb.gz\"";
			ok = respond(r, 200, (char *)pb, len, "application/octet-stream", hdr);
		} else {
			ok = send_text(
			    r, &w, f == 0 ? "application/json" : "text/plain; charset=utf-8", hdr);
		}
	}
	if (sd.s->partial)
		counter_add(&r->q->partial, 1);
	side_free(&sd);
	return ok;
}

static enum MHD_Result diff(struct qreq *r)
{
	const char *format = arg(r, "format") ? arg(r, "format") : "json", *type = arg(r, "type");
	const char *norm = arg(r, "normalize");
	struct render_opts o = {.max_bytes = MAX_RESPONSE, .normalize = 1};
	struct jsonw w = {.max = MAX_RESPONSE};
	struct query_side base = {0}, cur = {0};
	char bt[32], ct[32];
	int64_t now = clock_wall_ns();
	enum MHD_Result ok;
	int err, folded = !strcmp(format, "folded");
	double t0;

	if (!folded && strcmp(format, "json"))
		return respond_error(r, 400, "'format' must be json or folded");
	if (norm)
		o.normalize = strcmp(norm, "0") && strcmp(norm, "false");
	if (parse_size_arg(r, "max_nodes", &o.max_nodes) ||
	    side_parse(r, &cur, "query", "from", "to", now - DEFAULT_WINDOW_NS, now)) {
		side_free(&cur);
		return respond_error(r, 400, r->msg);
	}
	/* the base defaults to the same selector over the window just before */
	err = side_parse(r, &base, arg(r, "base") ? "base" : "query", "base_from", "base_to",
			 cur.from - (cur.to - cur.from), cur.from);
	if (err) {
		side_free(&cur);
		side_free(&base);
		return respond_error(r, 400, r->msg);
	}
	err = side_run(r, &cur, type);
	if (!err)
		err = side_run(r, &base, cur.r->sample_type[0] ? cur.r->sample_type : type);
	if (err) {
		ok = respond_err(r, err, "the diff");
		goto out;
	}
	t0 = clock_mono_s();
	err = folded ? render_diff_folded(&base.in, &cur.in, &o, &w)
		     : render_diff_json(&base.in, &cur.in, &o, &w);
	r->step[STEP_RENDER] += clock_mono_s() - t0;
	snprintf(bt, sizeof(bt), "%" PRId64, base.r->total);
	snprintf(ct, sizeof(ct), "%" PRId64, cur.r->total);
	r->out->result = base.s->partial || cur.s->partial ? "partial" : "ok";
	if (base.s->partial || cur.s->partial)
		counter_add(&r->q->partial, 1);
	if (err) {
		jsonw_free(&w);
		ok = respond_err(r, err, "rendering");
	} else {
		const char *hdr[] = {"X-Fleetsym-Base-Total",
				     bt,
				     "X-Fleetsym-Total",
				     ct,
				     "X-Fleetsym-Partial",
				     base.s->partial || cur.s->partial ? "1" : "0",
				     NULL};

		ok = send_text(r, &w, folded ? "text/plain; charset=utf-8" : "application/json",
			       hdr);
	}
out:
	side_free(&cur);
	side_free(&base);
	return ok;
}

static enum MHD_Result missing(struct qreq *r)
{
	const char *host = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Host");
	struct jsonw w = {.max = MAX_RESPONSE};
	struct query_side sd = {0};
	char server[300];
	int64_t now = clock_wall_ns();
	enum MHD_Result ok;
	int err;

	if (side_parse(r, &sd, "query", "from", "to", now - DEFAULT_WINDOW_NS, now)) {
		side_free(&sd);
		return respond_error(r, 400, r->msg);
	}
	/* the Host header is the client's; only its printable, URL-safe part is echoed */
	snprintf(server, sizeof(server), "http://%s",
		 host && strlen(host) < 256 && !host[strcspn(host, " \t\"'\\<>;&|`$")]
		     ? host
		     : "127.0.0.1:7070");
	err = side_run(r, &sd, arg(r, "type"));
	if (err) {
		ok = respond_err(r, err, "the query");
		side_free(&sd);
		return ok;
	}
	r->out->result = sd.s->partial ? "partial" : "ok";
	err = render_missing(&sd.in, server, &w);
	ok = err ? (jsonw_free(&w), respond_err(r, err, "rendering"))
		 : send_text(r, &w, "application/json", NULL);
	side_free(&sd);
	return ok;
}

static size_t bucket(double v)
{
	size_t i = 0;

	while (i < NLAT - 1 && v > lat_bounds[i])
		i++;
	return i;
}

/* max_running requests are running: 503 at once, with Retry-After. */
static enum MHD_Result refuse_busy(struct qreq *r)
{
	char msg[200];

	counter_add(&r->q->refused, 1);
	snprintf(msg, sizeof(msg),
		 "%d queries are running, the most this server runs at once "
		 "(--max-heavy-queries); retry shortly",
		 r->q->o.max_running);
	r->out->result = "busy";
	return respond_retry(r, msg);
}

enum MHD_Result httpd_query_serve(struct httpd_query *q, struct MHD_Connection *conn,
				  enum httpd_query_ep ep, struct httpresp_outcome *out)
{
	struct qreq r = {.q = q, .conn = conn, .ep = ep, .out = out};
	double t0 = clock_mono_s(), secs;
	enum MHD_Result ok;

	out->note[0] = '\0';
	if (r.ep == HTTPD_QUERY_NONE)
		return respond_error(&r, 404, "no such endpoint");
	if (!q->o.pstore)
		return respond_error(&r, 503, "this fleetsymd has no profile store");
	if (__atomic_add_fetch(&q->running, 1, __ATOMIC_RELAXED) > q->o.max_running) {
		__atomic_sub_fetch(&q->running, 1, __ATOMIC_RELAXED);
		return refuse_busy(&r);
	}
	deadline_set_in(q->o.timeout_ms);
	if (r.ep == HTTPD_QUERY_QUERY)
		ok = query(&r);
	else if (r.ep == HTTPD_QUERY_DIFF)
		ok = diff(&r);
	else
		ok = missing(&r);
	deadline_set_in(0);
	__atomic_sub_fetch(&q->running, 1, __ATOMIC_RELAXED);
	secs = clock_mono_s() - t0;
	counter_add(&q->lat[r.ep][bucket(secs)], 1);
	counter_add(&q->lat_usec[r.ep], (uint64_t)(secs * 1e6));
	for (int s = 0; s < STEP_COUNT_; s++)
		counter_add(&q->step_usec[s], (uint64_t)(r.step[s] * 1e6));
	note(&r, "%sms_store=%.1f ms_symbolize=%.1f ms_render=%.1f", r.noteoff ? " " : "",
	     r.step[STEP_STORE] * 1e3, r.step[STEP_SYMBOLIZE] * 1e3, r.step[STEP_RENDER] * 1e3);
	return ok;
}

/* ---- metrics ---- */

void httpd_query_metrics(struct httpd_query *q, struct jsonw *w)
{
	struct qsym_stats st;

	if (!q)
		return;
	metrics_header(
	    w, "fleetsymd_query_duration_seconds", "histogram",
	    "Time to answer /api/v1/query, /diff and /missing (store, symbolize, render).");
	for (int ep = HTTPD_QUERY_QUERY; ep < HTTPD_QUERY_COUNT_; ep++)
		metrics_histogram(w, "fleetsymd_query_duration_seconds", qep_names[ep], lat_bounds,
				  NLAT - 1, q->lat[ep], counter_get(&q->lat_usec[ep]));

	metrics_header(w, "fleetsymd_query_step_seconds_total", "counter",
		       "Time spent per query step, summed over queries.");
	for (int s = 0; s < STEP_COUNT_; s++)
		jsonw_printf(w, "fleetsymd_query_step_seconds_total{step=\"%s\"} %.6f\n",
			     step_names[s], counter_get(&q->step_usec[s]) / 1e6);
	qsym_stats(q->qsym, &st);
	metrics_value(w, "fleetsymd_query_locations_total", "counter",
		      "Raw (build ID, offset) locations asked for by queries.", st.locations);
	metrics_value(w, "fleetsymd_query_locations_symbolized_total", "counter",
		      "Query locations looked up in debug info (results-cache misses).",
		      st.symbolized);
	metrics_value(w, "fleetsymd_query_cache_hits_total", "counter",
		      "Query locations answered from the results cache.", st.cache_hits);
	metrics_value(w, "fleetsymd_query_cache_entries", "gauge",
		      "Location answers held in the results cache.", st.cached);
	metrics_value(w, "fleetsymd_query_cache_build_ids", "gauge",
		      "Build IDs with answers in the results cache.", st.build_ids);
	metrics_value(w, "fleetsymd_query_cache_dropped_total", "counter",
		      "Results-cache tables dropped (their file was replaced, or evicted).",
		      st.dropped);
	metrics_value(w, "fleetsymd_query_refused_busy_total", "counter",
		      "Queries refused with 503: --max-heavy-queries were running.",
		      counter_get(&q->refused));
	metrics_value(w, "fleetsymd_query_timeouts_total", "counter",
		      "Queries stopped at --query-timeout (503).", counter_get(&q->timeouts));
	metrics_value(w, "fleetsymd_query_partial_total", "counter",
		      "Query answers marked partial: debug info was still being fetched.",
		      counter_get(&q->partial));
}
