/*
 * httpd_pyro - Pyroscope's POST /ingest: name and parameters to series labels, the body to a
 * pprof, then pstore_ingest_ex() as our own ingest does.
 */
#include "symbolizer/http/httpd_pyro.h"
#include "symbolizer/http/httpresp.h"

#include "lib/buildid.h"
#include "lib/err.h"
#include "lib/pprof_builder.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_LABELS   PSTORE_MAX_SERIES_LABELS
#define MAX_NAME     4096
#define MAX_DEPTH    1024
#define MAX_FRAME    PSTORE_MAX_STRING
#define MAX_BOUNDARY 70	  /* RFC 2046 */
#define MAX_MAPPINGS 1024 /* build IDs of raw frames in one body */

static int bad(char *errbuf, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int bad(char *errbuf, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(errbuf, errlen, fmt, ap);
	va_end(ap);
	return -ERR_BADINPUT;
}

/* ---- tokens ---- */

int httpd_pyro_token_ok(struct MHD_Connection *conn, const char *token)
{
	char *pw = NULL, *user;
	int ok;

	if (httpresp_token_ok(conn, token))
		return 1;
	user = MHD_basic_auth_get_username_password(conn, &pw);
	ok = pw && httpresp_token_eq(pw, strlen(pw), token);
	MHD_free(user);
	MHD_free(pw);
	return ok;
}

/* ---- name=APP{k=v,...} ---- */

/* Pyroscope's type suffixes of an application name ("app.cpu"): dropped from service_name. */
static const char *const type_suffixes[] = {
    "cpu",	     "itimer",	       "wall",	     "alloc_objects", "alloc_space",
    "inuse_objects", "inuse_space",    "goroutines", "mutex_count",   "mutex_duration",
    "block_count",   "block_duration", "lock_count", "lock_duration", "exceptions"};

struct name {
	char buf[MAX_NAME + 1];
	struct pstore_label l[MAX_LABELS];
	size_t n;
};

static int add_label(struct name *nm, const char *k, const char *v, char *errbuf, size_t errlen)
{
	if (nm->n >= MAX_LABELS)
		return bad(errbuf, errlen, "name has more than %d labels", MAX_LABELS - 2);
	nm->l[nm->n].name = k;
	nm->l[nm->n++].value = v;
	return 0;
}

static void trim(char **s)
{
	char *e;

	while (**s == ' ')
		(*s)++;
	e = *s + strlen(*s);
	while (e > *s && e[-1] == ' ')
		*--e = '\0';
}

/* Parse NAME into NM's labels (pointing into NM->buf). */
static int parse_name(const char *name, struct name *nm, char *errbuf, size_t errlen)
{
	char *app, *brace, *p = NULL, *dot;
	size_t len = strlen(name);
	int err;

	if (len == 0)
		return bad(errbuf, errlen, "ingest needs name=APP{k=v,...}");
	if (len > MAX_NAME)
		return bad(errbuf, errlen, "name is longer than %d bytes", MAX_NAME);
	memcpy(nm->buf, name, len + 1);
	app = nm->buf;
	brace = strchr(app, '{');
	if (brace) {
		if (app[len - 1] != '}')
			return bad(errbuf, errlen, "name '%.64s': labels must end with '}'", name);
		app[len - 1] = '\0';
		*brace = '\0';
		p = brace + 1;
	}
	trim(&app);
	if (!*app || strpbrk(app, "}=,\"\n"))
		return bad(errbuf, errlen,
			   "name '%.64s': the application name is empty or has one of }=,\"", name);
	dot = strrchr(app, '.');
	if (dot && dot != app)
		for (size_t i = 0; i < sizeof(type_suffixes) / sizeof(type_suffixes[0]); i++)
			if (!strcmp(dot + 1, type_suffixes[i])) {
				*dot = '\0';
				break;
			}
	err = add_label(nm, "service_name", app, errbuf, errlen);
	while (!err && brace && *p) {
		char *comma = strchr(p, ','), *eq, *k, *v;

		if (comma)
			*comma = '\0';
		eq = strchr(p, '=');
		if (!eq)
			return bad(errbuf, errlen, "name '%.64s': label '%.64s' is not k=v", name,
				   p);
		*eq = '\0';
		k = p;
		v = eq + 1;
		trim(&k);
		trim(&v);
		if (!*k || strpbrk(v, "{}=\""))
			return bad(errbuf, errlen, "name '%.64s': bad label '%.64s'", name, k);
		for (char *c = k; *c; c++) /* otel.scope.name -> otel_scope_name */
			if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
			      (*c >= '0' && *c <= '9')))
				*c = '_';
		if (!strcmp(k, "service_name") || !strcmp(k, "pyroscope_spy"))
			return bad(errbuf, errlen, "name '%.64s': label %s is set by the server",
				   name, k);
		err = add_label(nm, k, v, errbuf, errlen);
		if (!comma)
			break;
		p = comma + 1;
	}
	return err;
}

/* ---- folded and lines ---- */

struct kind {
	const char *units, *agg; /* agg NULL: any */
	const char *type, *unit;
};

/* Pyroscope's units/aggregationType to sample types (samples also get cpu nanoseconds). */
static const struct kind kinds[] = {
    {"samples", NULL, "samples", "count"},
    {"objects", "average", "inuse_objects", "count"},
    {"objects", NULL, "alloc_objects", "count"},
    {"bytes", "average", "inuse_space", "bytes"},
    {"bytes", NULL, "alloc_space", "bytes"},
    {"goroutines", NULL, "goroutine", "count"},
    {"lock_samples", NULL, "contentions", "count"},
    {"lock_nanoseconds", NULL, "delay", "nanoseconds"},
};

static const struct kind *kind_of(const char *units, const char *agg)
{
	if (!units || !*units)
		units = "samples";
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (!strcmp(kinds[i].units, units) &&
		    (!kinds[i].agg || (agg && !strcmp(kinds[i].agg, agg))))
			return &kinds[i];
	return NULL;
}

/* The builder and the mappings of raw frames, one per build ID. */
struct fold {
	struct pprofb *b;
	struct {
		char build_id[BUILDID_HEX_MAX];
		uint64_t id;
	} m[MAX_MAPPINGS];
	size_t nm;
};

/* A raw frame "FILE@BUILDID+0xOFFSET" (FILE may be empty; OFFSET in the ELF file, as
 * fleetsym-upload fold writes frames perf could not name): 1 and *LOC, 0 when F..END is not
 * one (a named frame), or a negative errno. */
static int raw_frame(struct fold *fo, char *f, char *end, uint64_t *loc)
{
	char *at = NULL, *plus, *e, hex[BUILDID_HEX_MAX];
	struct pprofb_mapping mp = {.memory_limit = UINT64_MAX};
	unsigned long long off;
	size_t i;
	int err;

	for (char *c = end; c > f; c--)
		if (c[-1] == '@') {
			at = c - 1;
			break;
		}
	if (!at || !(plus = memchr(at, '+', (size_t)(end - at))) || end - plus < 4 ||
	    plus[1] != '0' || plus[2] != 'x' ||
	    buildid_normalize(at + 1, (size_t)(plus - at - 1), hex))
		return 0;
	errno = 0;
	off = strtoull(plus + 3, &e, 16);
	if (e != end || errno)
		return 0;
	for (i = 0; i < fo->nm && strcmp(fo->m[i].build_id, hex); i++)
		;
	if (i == fo->nm) {
		if (fo->nm == MAX_MAPPINGS)
			return -ERR_BADINPUT;
		*at = '\0';
		mp.filename = f;
		mp.build_id = hex;
		err = pprofb_add_mapping(fo->b, &mp, &fo->m[i].id);
		if (err)
			return err;
		memcpy(fo->m[i].build_id, hex, sizeof(hex));
		fo->nm++;
	}
	err = pprofb_location(fo->b, fo->m[i].id, off, NULL, 0, loc);
	return err ? err : 1;
}

/* One folded line (LINE, LEN bytes, no newline) into FO. */
static int fold_line(struct fold *fo, char *line, size_t len, int counted, int64_t period,
		     size_t lineno, char *errbuf, size_t errlen)
{
	uint64_t locs[MAX_DEPTH];
	int64_t vals[2];
	size_t n = 0;
	char *stack = line, *end, *f;
	unsigned long long cnt = 1;
	int err;

	line[len] = '\0';
	if (len && line[len - 1] == '\r')
		line[--len] = '\0';
	if (!len)
		return 0;
	if (counted) {
		char *sp = strrchr(line, ' ');

		errno = 0;
		if (!sp || sp[1] < '0' || sp[1] > '9' ||
		    ((cnt = strtoull(sp + 1, &end, 10)), *end || errno) ||
		    cnt > INT64_MAX / 1000000000)
			return bad(errbuf, errlen,
				   "folded line %zu is not 'frame;frame;... COUNT': '%.64s'",
				   lineno, line);
		*sp = '\0';
	}
	if (!*stack)
		return bad(errbuf, errlen, "folded line %zu has no frames", lineno);
	/* frames are root first; pprof wants the leaf first */
	for (f = stack + strlen(stack);;) {
		char *semi = f;
		uint64_t fid;
		struct pprofb_line pl = {0};

		while (semi > stack && semi[-1] != ';')
			semi--;
		if (n >= MAX_DEPTH)
			return bad(errbuf, errlen, "folded line %zu has more than %d frames",
				   lineno, MAX_DEPTH);
		if (semi == f)
			return bad(errbuf, errlen, "folded line %zu has an empty frame", lineno);
		if (f - semi > MAX_FRAME)
			return bad(errbuf, errlen, "folded line %zu has a frame over %d bytes",
				   lineno, MAX_FRAME);
		err = raw_frame(fo, semi, f, &locs[n]);
		*f = '\0';
		if (!err) {
			err = pprofb_function(fo->b, semi, semi, NULL, 0, &fid);
			pl.function_id = fid;
			if (!err)
				err = pprofb_location(fo->b, 0, 0, &pl, 1, &locs[n]);
		}
		if (err == -ERR_BADINPUT)
			return bad(errbuf, errlen, "folded body has more than %d build IDs",
				   MAX_MAPPINGS);
		if (err < 0)
			return err;
		n++;
		if (semi == stack)
			break;
		f = semi - 1;
	}
	vals[0] = (int64_t)cnt;
	vals[1] = (int64_t)cnt * period;
	return pprofb_add_sample(fo->b, locs, n, vals, NULL, 0);
}

/* Seconds, milliseconds or nanoseconds since the epoch (as Pyroscope guesses) to ns. */
static int epoch_ns(const char *s, int64_t *ns)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (*end || errno || v < 0 || end == s)
		return -1;
	if (v >= 1000000000000000LL)
		*ns = v;
	else if (__builtin_mul_overflow(v, v >= 1000000000000LL ? 1000000 : 1000000000, ns))
		return -1; /* past year 2262 */
	return 0;
}

static int fold_to_pprof(struct MHD_Connection *conn, char *body, size_t len, int counted,
			 uint8_t **out, size_t *outlen, char *errbuf, size_t errlen)
{
	const char *units = httpresp_arg(conn, "units"),
		   *agg = httpresp_arg(conn, "aggregationType"),
		   *rate = httpresp_arg(conn, "sampleRate"), *from = httpresp_arg(conn, "from"),
		   *until = httpresp_arg(conn, "until");
	const struct kind *k = kind_of(units, agg);
	int cpu = k == &kinds[0];
	long long hz = 100;
	int64_t t0 = 0, t1 = 0;
	struct fold *fo = NULL;
	struct pprofb *b = NULL;
	size_t lineno = 0;
	char *end;
	int err;

	if (!k)
		return bad(errbuf, errlen,
			   "units '%.32s' is not one of samples, objects, bytes, goroutines, "
			   "lock_samples, lock_nanoseconds",
			   units);
	if (rate) {
		errno = 0;
		hz = strtoll(rate, &end, 10);
		if (*end || errno || end == rate || hz <= 0 || hz > 1000000)
			return bad(errbuf, errlen, "sampleRate '%.32s' is not a rate in Hz", rate);
	}
	if ((from && epoch_ns(from, &t0)) || (until && epoch_ns(until, &t1)))
		return bad(errbuf, errlen, "from and until are Unix times (seconds)");
	if (t0 && t1 && t1 < t0)
		return bad(errbuf, errlen, "until is before from");
	if (memchr(body, '\0', len))
		return bad(errbuf, errlen, "the folded body has a NUL byte");
	fo = calloc(1, sizeof(*fo));
	if (!fo)
		return -ENOMEM;
	err = pprofb_new(NULL, &b);
	fo->b = b;
	if (!err)
		err = pprofb_add_sample_type(b, k->type, k->unit);
	if (!err && cpu)
		err = pprofb_add_sample_type(b, "cpu", "nanoseconds");
	if (!err && cpu)
		err = pprofb_set_period(b, "cpu", "nanoseconds", 1000000000 / hz);
	if (err)
		goto out;
	pprofb_set_time(b, t0, t0 && t1 ? t1 - t0 : 0);
	for (size_t i = 0; i < len && !err;) {
		char *nl = memchr(body + i, '\n', len - i);
		size_t ll = nl ? (size_t)(nl - (body + i)) : len - i;

		err =
		    fold_line(fo, body + i, ll, counted, 1000000000 / hz, ++lineno, errbuf, errlen);
		i += ll + 1;
	}
	if (!err && pprofb_sample_count(b) == 0)
		err = bad(errbuf, errlen, "the body has no stacks");
	if (!err)
		err = pprofb_encode(b, out, outlen);
out:
	pprofb_free(b);
	free(fo);
	return err;
}

/* ---- multipart ---- */

/* The part named NAME of the multipart body, or NULL. -ERR_BADINPUT when it is not multipart
 * with BOUNDARY. */
static int multipart_part(const char *body, size_t len, const char *boundary, const char *name,
			  const char **part, size_t *plen)
{
	char delim[MAX_BOUNDARY + 5], want[160];
	size_t dl;
	const char *p, *end = body + len;
	int closed = 0;

	*part = NULL;
	*plen = 0;
	dl = (size_t)snprintf(delim, sizeof(delim), "--%s", boundary);
	snprintf(want, sizeof(want), "name=\"%s\"", name);
	p = memmem(body, len, delim, dl);
	if (!p)
		return -ERR_BADINPUT;
	while (p && !closed) {
		const char *hdr = p + dl, *hend, *next;

		if (end - hdr >= 2 && hdr[0] == '-' && hdr[1] == '-') {
			closed = 1;
			break;
		}
		hend = memmem(hdr, (size_t)(end - hdr), "\r\n\r\n", 4);
		if (!hend)
			return -ERR_BADINPUT;
		next = memmem(hend + 4, (size_t)(end - (hend + 4)), delim, dl);
		if (!next || next - (hend + 4) < 2)
			return -ERR_BADINPUT;
		if (!*part && memmem(hdr, (size_t)(hend - hdr), want, strlen(want))) {
			*part = hend + 4;
			*plen = (size_t)(next - 2 - (hend + 4)); /* the CRLF before the delimiter */
		}
		p = next;
	}
	return closed ? 0 : -ERR_BADINPUT;
}

/* The boundary parameter of a multipart/form-data Content-Type into OUT. */
static int boundary_of(const char *ct, char *out, size_t cap)
{
	const char *b = strcasestr(ct, "boundary=");
	size_t n;

	if (!b)
		return -1;
	b += 9;
	if (*b == '"')
		b++;
	n = strcspn(b, "\";, ");
	if (n == 0 || n > MAX_BOUNDARY || n >= cap)
		return -1;
	memcpy(out, b, n);
	out[n] = '\0';
	return 0;
}

/* ---- the ingest ---- */

int httpd_pyro_ingest(struct pstore *s, struct MHD_Connection *conn, const char *body, size_t len,
		      struct pstore_ingest_info *info, char *errbuf, size_t errlen)
{
	const char *name = httpresp_arg(conn, "name"), *format = httpresp_arg(conn, "format"),
		   *spy = httpresp_arg(conn, "spyName"),
		   *ct = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
						     MHD_HTTP_HEADER_CONTENT_TYPE);
	struct name *nm = calloc(1, sizeof(*nm));
	uint8_t *pb = NULL;
	size_t pblen = 0;
	char *copy = NULL;
	int multipart = ct && !strncasecmp(ct, "multipart/form-data", 19), err;

	if (!nm)
		return -ENOMEM;
	err = parse_name(name ? name : "", nm, errbuf, errlen);
	if (!err && spy && *spy)
		err = add_label(nm, "pyroscope_spy", spy, errbuf, errlen);
	if (err)
		goto out;
	if (!format || !*format)
		format = multipart ? "pprof" : "folded";
	if (!strcmp(format, "jfr")) {
		snprintf(errbuf, errlen,
			 "format=jfr (Java Flight Recorder) is not supported; send pprof, folded "
			 "or lines");
		err = -EPROTONOSUPPORT;
	} else if (!strcmp(format, "pprof")) {
		const char *data = body;
		size_t dlen = len;

		if (multipart) {
			char bnd[MAX_BOUNDARY + 1];

			if (boundary_of(ct, bnd, sizeof(bnd))) {
				err = bad(errbuf, errlen,
					  "multipart/form-data without a usable boundary");
				goto out;
			}
			if (multipart_part(body, len, bnd, "profile", &data, &dlen)) {
				err = bad(errbuf, errlen,
					  "the multipart body does not match its boundary (parts "
					  "must be delimited by --%s and end with --%s--)",
					  bnd, bnd);
				goto out;
			}
			if (!data) {
				err =
				    bad(errbuf, errlen, "the multipart body has no 'profile' part");
				goto out;
			}
		}
		err = pstore_ingest_ex(s, nm->l, nm->n, data, dlen, info, errbuf, errlen);
	} else if (!strcmp(format, "folded") || !strcmp(format, "lines")) {
		if (multipart) {
			err = bad(errbuf, errlen,
				  "format=%s takes a plain text body, not multipart", format);
			goto out;
		}
		copy = malloc(len + 1);
		if (!copy) {
			err = -ENOMEM;
			goto out;
		}
		memcpy(copy, body, len);
		err = fold_to_pprof(conn, copy, len, strcmp(format, "lines") != 0, &pb, &pblen,
				    errbuf, errlen);
		if (!err)
			err = pstore_ingest_ex(s, nm->l, nm->n, pb, pblen, info, errbuf, errlen);
	} else {
		err = bad(errbuf, errlen,
			  "unknown format '%.32s': this server takes pprof, folded and lines",
			  format);
	}
out:
	free(pb);
	free(copy);
	free(nm);
	return err;
}
