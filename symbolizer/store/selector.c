/*
 * selector - a hand-written scanner over the selector text (one pass, positions kept for the
 * error message), matchers in a fixed array, regexes compiled once at parse time.
 *
 * Anchoring: the user's regex R is compiled as "^(R)$". That is only the same language if R
 * is balanced on its own ("a)|(b" would become "^(a)|(b)$", which is not anchored), so the
 * parentheses of R are checked first, outside bracket expressions and escapes.
 */
#include "symbolizer/store/selector.h"

#include "lib/err.h"
#include "lib/parse.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <regex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_REPEAT	100  /* largest {n,m} bound taken in a regex */
#define MAX_REGEX_DEPTH 32   /* nested groups */
#define MAX_EXPANDED	4096 /* atoms of a regex once its intervals are expanded */

struct matcher {
	char *name;
	char *value;
	enum selector_op op;
	int has_re;
	regex_t re;
};

struct selector {
	struct matcher m[SELECTOR_MAX_MATCHERS];
	size_t n;
};

struct scan {
	const char *text;
	size_t pos;
	char *err;
	size_t errlen;
};

static int fail_at(struct scan *sc, size_t pos, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail_at(struct scan *sc, size_t pos, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	if (!sc->err || !sc->errlen)
		return -ERR_BADINPUT;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(sc->err, sc->errlen, "bad selector at position %zu: %s", pos + 1, msg);
	return -ERR_BADINPUT;
}

static void skip_ws(struct scan *sc)
{
	while (isspace((unsigned char)sc->text[sc->pos]))
		sc->pos++;
}

static int name_start(int c)
{
	return isalpha(c) || c == '_';
}

static int scan_name(struct scan *sc, char **out)
{
	size_t b = sc->pos, n;

	if (!name_start((unsigned char)sc->text[b]))
		return fail_at(sc, b, "expected a label name ([a-zA-Z_][a-zA-Z0-9_]*)");
	while (isalnum((unsigned char)sc->text[sc->pos]) || sc->text[sc->pos] == '_')
		sc->pos++;
	n = sc->pos - b;
	if (n > SELECTOR_MAX_NAME)
		return fail_at(sc, b, "label name longer than %d bytes", SELECTOR_MAX_NAME);
	*out = strndup(sc->text + b, n);
	return *out ? 0 : -ENOMEM;
}

static int scan_op(struct scan *sc, enum selector_op *op)
{
	const char *p = sc->text + sc->pos;

	if (p[0] == '=' && p[1] == '~')
		*op = SEL_RE, sc->pos += 2;
	else if (p[0] == '!' && p[1] == '~')
		*op = SEL_NRE, sc->pos += 2;
	else if (p[0] == '!' && p[1] == '=')
		*op = SEL_NE, sc->pos += 2;
	else if (p[0] == '=')
		*op = SEL_EQ, sc->pos += 1;
	else
		return fail_at(sc, sc->pos, "expected one of =, !=, =~, !~");
	return 0;
}

/* A quoted value into a new string. */
static int scan_value(struct scan *sc, char **out)
{
	size_t b = sc->pos, n = 0;
	char q = sc->text[b], *v;

	if (q != '"' && q != '\'' && q != '`')
		return fail_at(sc, b, "expected a quoted value (\"...\")");
	v = malloc(SELECTOR_MAX_VALUE + 1);
	if (!v)
		return -ENOMEM;
	sc->pos++;
	for (;;) {
		char c = sc->text[sc->pos];

		if (!c) {
			free(v);
			return fail_at(sc, b, "unterminated string");
		}
		sc->pos++;
		if (c == q)
			break;
		if (c == '\\' && q != '`') {
			c = sc->text[sc->pos++];
			switch (c) {
			case 'n': c = '\n'; break;
			case 't': c = '\t'; break;
			case '\\':
			case '"':
			case '\'': break;
			default:
				/* "\." in a regex means the regex's escape: keep it as written */
				if (!c) {
					free(v);
					return fail_at(sc, b, "unterminated string");
				}
				if (n + 2 > SELECTOR_MAX_VALUE)
					goto too_long;
				v[n++] = '\\';
			}
		}
		if (n + 1 > SELECTOR_MAX_VALUE)
			goto too_long;
		v[n++] = c;
	}
	v[n] = '\0';
	*out = v;
	return 0;
too_long:
	free(v);
	return fail_at(sc, b, "value longer than %d bytes", SELECTOR_MAX_VALUE);
}

/* The {a,b} interval at P (just after the '{'): how many copies of its atom the regex
 * compiler makes (b, or a + 1 for "{a,}", at least 1), with *END after the '}'; 0 when P does
 * not start an interval (then '{' is a literal). */
static long interval_copies(const char *p, const char **end)
{
	long a = 0, b = -1;
	char *e;

	if (isdigit((unsigned char)*p)) {
		a = strtol(p, &e, 10);
		p = e;
	} else if (*p != ',') {
		return 0;
	}
	if (*p == ',') {
		p++;
		b = -2; /* "{a,}": a + 1 copies */
		if (isdigit((unsigned char)*p)) {
			b = strtol(p, &e, 10);
			p = e;
		}
	}
	if (*p != '}')
		return 0;
	*end = p + 1;
	/* strtol saturates at LONG_MAX: cap before adding */
	a = a > MAX_REPEAT ? MAX_REPEAT + 1 : a;
	b = b == -2 ? a + 1 : b > MAX_REPEAT ? MAX_REPEAT + 1 : b;
	b = b < a ? a : b;
	return b < 1 ? 1 : b;
}

/* NULL if R is balanced, has no back-reference and stays small once its intervals are
 * expanded; else a message. POSIX regex engines copy an atom once per count of its {a,b}, so
 * "a{,5000}" or "((a{0,20}){0,20}){0,20}" (8,000 copies) cost seconds and gigabytes to compile
 * and match. The size of R with every interval expanded, nested groups multiplied, must stay
 * under MAX_EXPANDED. */
static const char *regex_shape(const char *r)
{
	long sum[MAX_REGEX_DEPTH + 1] = {0}, last = 0;
	int depth = 0, rep = 0; /* REP: the last token was a repetition operator */

	for (const char *p = r; *p; p++) {
		int was_rep = rep;
		long k;

		rep = 0;

		if (*p == '\\') {
			if (!p[1])
				return "ends in a backslash";
			if (isdigit((unsigned char)p[1]))
				return "back-references are not supported";
			p++;
			last = 1;
		} else if (*p == '[') {
			/* bracket expression: ']' right after '[' or '[^' is literal */
			p++;
			if (*p == '^')
				p++;
			if (*p == ']')
				p++;
			while (*p && *p != ']') {
				if (*p == '[' && (p[1] == ':' || p[1] == '.' || p[1] == '=')) {
					char end = p[1];

					p += 2;
					while (*p && !(*p == end && p[1] == ']'))
						p++;
					if (!*p)
						return "unterminated [: :] class";
					p++;
				}
				p++;
			}
			if (!*p)
				return "unterminated bracket expression";
			last = 1;
		} else if (*p == '(') {
			if (depth == MAX_REGEX_DEPTH)
				return "groups nested too deeply";
			sum[++depth] = 0;
			continue;
		} else if (*p == ')') {
			if (depth == 0)
				return "unbalanced ')'";
			last = sum[depth--];
		} else if (*p == '{' && (k = interval_copies(p + 1, &p)) > 0) {
			if (was_rep)
				return "repetition operators in a row";
			rep = 1;
			if (k > MAX_REPEAT)
				return "repeat count over 100";
			/* the last atom or group now stands K times */
			sum[depth] += last * (k - 1);
			last *= k;
			p--;
			if (sum[depth] > MAX_EXPANDED)
				return "too complex once its repeats are expanded";
			continue;
		} else if (*p == '*' || *p == '+' || *p == '?') {
			/* POSIX leaves "a**" undefined; glibc's regcomp takes gigabytes for
			 * "a+++..." */
			if (was_rep)
				return "repetition operators in a row";
			rep = 1;
			last = 0;
			continue;
		} else if (*p == '|' || *p == '^' || *p == '$') {
			last = 0;
			continue;
		} else {
			last = 1;
		}
		sum[depth] += last;
		if (sum[depth] > MAX_EXPANDED)
			return "too complex once its repeats are expanded";
	}
	return depth ? "unbalanced '('" : NULL;
}

static int compile(struct scan *sc, size_t vpos, struct matcher *m)
{
	const char *shape = regex_shape(m->value);
	size_t len = strlen(m->value);
	char *wrapped;
	int rc;

	if (shape)
		return fail_at(sc, vpos, "regex \"%s\": %s", m->value, shape);
	wrapped = malloc(len + 5);
	if (!wrapped)
		return -ENOMEM;
	snprintf(wrapped, len + 5, "^(%s)$", m->value);
	rc = regcomp(&m->re, wrapped, REG_EXTENDED | REG_NOSUB);
	free(wrapped);
	if (rc) {
		char msg[128];

		regerror(rc, &m->re, msg, sizeof(msg));
		return fail_at(sc, vpos, "regex \"%s\": %s", m->value, msg);
	}
	m->has_re = 1;
	return 0;
}

static int scan_matcher(struct scan *sc, struct selector *s)
{
	struct matcher *m;
	size_t vpos;
	int err;

	if (s->n >= SELECTOR_MAX_MATCHERS)
		return fail_at(sc, sc->pos, "more than %d matchers", SELECTOR_MAX_MATCHERS);
	m = &s->m[s->n++];
	err = scan_name(sc, &m->name);
	if (err)
		return err;
	skip_ws(sc);
	err = scan_op(sc, &m->op);
	if (err)
		return err;
	skip_ws(sc);
	vpos = sc->pos;
	err = scan_value(sc, &m->value);
	if (err)
		return err;
	if (m->op == SEL_RE || m->op == SEL_NRE)
		return compile(sc, vpos, m);
	return 0;
}

static int parse(struct scan *sc, struct selector *s)
{
	int err;

	skip_ws(sc);
	if (!sc->text[sc->pos])
		return 0;
	if (sc->text[sc->pos] != '{')
		return fail_at(sc, sc->pos, "expected '{'");
	sc->pos++;
	for (;;) {
		skip_ws(sc);
		if (sc->text[sc->pos] == '}')
			break;
		err = scan_matcher(sc, s);
		if (err)
			return err;
		skip_ws(sc);
		if (sc->text[sc->pos] == ',') {
			sc->pos++;
			continue;
		}
		if (sc->text[sc->pos] != '}')
			return fail_at(sc, sc->pos, "expected ',' or '}'");
	}
	sc->pos++;
	skip_ws(sc);
	if (sc->text[sc->pos])
		return fail_at(sc, sc->pos, "unexpected text after '}'");
	return 0;
}

int selector_parse(const char *text, struct selector **out, char *errbuf, size_t errlen)
{
	struct scan sc = {.text = text, .err = errbuf, .errlen = errlen};
	struct selector *s;
	int err;

	*out = NULL;
	if (errbuf && errlen)
		errbuf[0] = '\0';
	if (strnlen(text, SELECTOR_MAX_TEXT + 1) > SELECTOR_MAX_TEXT) {
		if (errbuf && errlen)
			snprintf(errbuf, errlen, "selector longer than %d bytes",
				 SELECTOR_MAX_TEXT);
		return -E2BIG;
	}
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	err = parse(&sc, s);
	if (err) {
		if (err == -ENOMEM && errbuf && errlen)
			snprintf(errbuf, errlen, "out of memory");
		selector_free(s);
		return err;
	}
	*out = s;
	return 0;
}

void selector_free(struct selector *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n; i++) {
		free(s->m[i].name);
		free(s->m[i].value);
		if (s->m[i].has_re)
			regfree(&s->m[i].re);
	}
	free(s);
}

size_t selector_count(const struct selector *s)
{
	return s ? s->n : 0;
}

const char *selector_name(const struct selector *s, size_t i)
{
	return s->m[i].name;
}

enum selector_op selector_op(const struct selector *s, size_t i)
{
	return s->m[i].op;
}

int selector_match_one(const struct selector *s, size_t i, const char *value)
{
	const struct matcher *m = &s->m[i];

	if (!value)
		value = "";
	switch (m->op) {
	case SEL_EQ: return strcmp(value, m->value) == 0;
	case SEL_NE: return strcmp(value, m->value) != 0;
	case SEL_RE: return regexec(&m->re, value, 0, NULL, 0) == 0;
	case SEL_NRE: return regexec(&m->re, value, 0, NULL, 0) != 0;
	}
	return 0;
}

int selector_match(const struct selector *s, const char *const *names, const char *const *values,
		   size_t n)
{
	for (size_t i = 0; s && i < s->n; i++) {
		const char *v = "";

		for (size_t k = 0; k < n; k++)
			if (!strcmp(names[k], s->m[i].name)) {
				v = values[k];
				break;
			}
		if (!selector_match_one(s, i, v))
			return 0;
	}
	return 1;
}

int selector_format(const struct selector *s, char *buf, size_t len)
{
	static const char *const ops[] = {"=", "!=", "=~", "!~"};
	size_t off = 0;

#define PUT(...)                                                                                   \
	do {                                                                                       \
		int n_ = snprintf(buf + off, len > off ? len - off : 0, __VA_ARGS__);              \
		if (n_ < 0 || (size_t)n_ >= (len > off ? len - off : 0))                           \
			return -E2BIG;                                                             \
		off += (size_t)n_;                                                                 \
	} while (0)

	PUT("{");
	for (size_t i = 0; s && i < s->n; i++) {
		PUT("%s%s%s\"", i ? "," : "", s->m[i].name, ops[s->m[i].op]);
		for (const char *p = s->m[i].value; *p; p++) {
			if (*p == '"' || *p == '\\')
				PUT("\\%c", *p);
			else if (*p == '\n')
				PUT("\\n");
			else
				PUT("%c", *p);
		}
		PUT("\"");
	}
	PUT("}");
#undef PUT
	return 0;
}

/* ---- times ---- */

static int bad_time(char *err, size_t errlen, const char *s, const char *why)
{
	if (err && errlen)
		snprintf(err, errlen,
			 "bad time '%.64s': %s (want RFC 3339, unix seconds, now or now-1h)", s,
			 why);
	return -ERR_BADINPUT;
}

/* "NUMBER UNIT" into nanoseconds. */
static int digits(const char **p, int n, int *out)
{
	int v = 0;

	for (int i = 0; i < n; i++) {
		if (!isdigit((unsigned char)(*p)[i]))
			return -1;
		v = v * 10 + ((*p)[i] - '0');
	}
	*p += n;
	*out = v;
	return 0;
}

static int parse_rfc3339(const char *s, int64_t *out)
{
	const char *p = s;
	struct tm tm = {0};
	int y, mo, d, h, mi, sec, oh = 0, om = 0, sign = 0;
	int64_t frac = 0, scale = 100000000;
	time_t t;

	if (digits(&p, 4, &y) || *p++ != '-' || digits(&p, 2, &mo) || *p++ != '-' ||
	    digits(&p, 2, &d) || (*p != 'T' && *p != 't' && *p != ' '))
		return -1;
	p++;
	if (digits(&p, 2, &h) || *p++ != ':' || digits(&p, 2, &mi) || *p++ != ':' ||
	    digits(&p, 2, &sec))
		return -1;
	if (*p == '.') {
		p++;
		if (!isdigit((unsigned char)*p))
			return -1;
		for (; isdigit((unsigned char)*p); p++) {
			frac += (*p - '0') * scale;
			scale /= 10;
		}
	}
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		sign = *p++ == '-' ? -1 : 1;
		if (digits(&p, 2, &oh) || *p++ != ':' || digits(&p, 2, &om))
			return -1;
	} else {
		return -1;
	}
	if (*p || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60 ||
	    oh > 23 || om > 59)
		return -1;
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	t = timegm(&tm);
	t -= (time_t)sign * (oh * 3600 + om * 60);
	if (t < 0 || t > 9000000000LL)
		return -1;
	*out = (int64_t)t * 1000000000 + frac;
	return 0;
}

int time_parse(const char *s, int64_t now_ns, int64_t *out_ns, char *errbuf, size_t errlen)
{
	int64_t d;

	if (!s || !*s)
		return bad_time(errbuf, errlen, "", "empty");
	if (!strncmp(s, "now", 3)) {
		if (!s[3]) {
			*out_ns = now_ns;
			return 0;
		}
		if ((s[3] != '-' && s[3] != '+') || parse_duration_unit(s + 4, &d))
			return bad_time(errbuf, errlen, s,
					"after now: -N or +N with a unit ms, s, m, h, d, w");
		if (s[3] == '-' ? __builtin_sub_overflow(now_ns, d, out_ns)
				: __builtin_add_overflow(now_ns, d, out_ns))
			return bad_time(errbuf, errlen, s, "out of range");
		return 0;
	}
	if (strchr(s, '-') && strchr(s, ':')) {
		if (parse_rfc3339(s, out_ns))
			return bad_time(errbuf, errlen, s, "not a valid RFC 3339 time");
		return 0;
	}
	{
		char *end;
		double v;

		if (!isdigit((unsigned char)*s))
			return bad_time(errbuf, errlen, s, "not a time");
		v = strtod(s, &end);
		if (*end || !isfinite(v) || v > 9.2e9)
			return bad_time(errbuf, errlen, s, "not a number of unix seconds");
		/* whole seconds exactly (a double would round 1717252200 s in ns) */
		*out_ns = (int64_t)v * 1000000000 + (int64_t)((v - (double)(int64_t)v) * 1e9 + 0.5);
		return 0;
	}
}
