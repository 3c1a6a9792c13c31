/*
 * jsonw - growth doubles up to the cap; escaping walks the string once and validates UTF-8
 * on the way (overlong forms, surrogates and code points past U+10FFFF count as invalid).
 */
#include "lib/jsonw.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define JSONW_DEFAULT_MAX ((size_t)64 << 20)

/* Not lib/vec.h: the cap is the writer's own (w->max, 64 MiB by default) and an error sticks. */
static int reserve(struct jsonw *w, size_t more)
{
	size_t max = w->max ? w->max : JSONW_DEFAULT_MAX;
	size_t need, ncap;
	char *nb;

	if (w->err)
		return w->err;
	if (more > max || w->len + 1 > max - more) {
		w->err = -E2BIG;
		return w->err;
	}
	need = w->len + more + 1;
	if (need <= w->cap)
		return 0;
	ncap = w->cap ? w->cap : 4096;
	while (ncap < need)
		ncap *= 2;
	if (ncap > max)
		ncap = max;
	nb = realloc(w->buf, ncap);
	if (!nb) {
		w->err = -ENOMEM;
		return w->err;
	}
	w->buf = nb;
	w->cap = ncap;
	return 0;
}

void jsonw_raw(struct jsonw *w, const char *s, size_t n)
{
	if (reserve(w, n))
		return;
	memcpy(w->buf + w->len, s, n);
	w->len += n;
	w->buf[w->len] = '\0';
}

void jsonw_lit(struct jsonw *w, const char *s)
{
	jsonw_raw(w, s, strlen(s));
}

void jsonw_printf(struct jsonw *w, const char *fmt, ...)
{
	char small[256];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0) {
		w->err = w->err ? w->err : -EINVAL;
		return;
	}
	if ((size_t)n < sizeof(small)) {
		jsonw_raw(w, small, (size_t)n);
		return;
	}
	if (reserve(w, (size_t)n))
		return;
	va_start(ap, fmt);
	vsnprintf(w->buf + w->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	w->len += (size_t)n;
}

/* Length of the valid UTF-8 sequence at S (1-4), or 0 when it is not one. */
static size_t utf8_len(const unsigned char *s)
{
	unsigned c = s[0];

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		return (s[1] & 0xc0) == 0x80 ? 2 : 0;
	if (c >= 0xe0 && c <= 0xef) {
		if ((s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80)
			return 0;
		if ((c == 0xe0 && s[1] < 0xa0) || (c == 0xed && s[1] >= 0xa0))
			return 0; /* overlong, surrogate */
		return 3;
	}
	if (c >= 0xf0 && c <= 0xf4) {
		if ((s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80 || (s[3] & 0xc0) != 0x80)
			return 0;
		if ((c == 0xf0 && s[1] < 0x90) || (c == 0xf4 && s[1] >= 0x90))
			return 0; /* overlong, past U+10FFFF */
		return 4;
	}
	return 0;
}

void jsonw_str(struct jsonw *w, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t run = 0;

	if (!s) {
		jsonw_raw(w, "null", 4);
		return;
	}
	jsonw_raw(w, "\"", 1);
	/* Copy runs of plain bytes at once; escape the rest one by one. */
	for (;;) {
		unsigned c = p[run];
		size_t n;

		if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
			run++;
			continue;
		}
		jsonw_raw(w, (const char *)p, run);
		p += run;
		run = 0;
		if (!c)
			break;
		if (c == '"' || c == '\\') {
			char esc[2] = {'\\', (char)c};

			jsonw_raw(w, esc, 2);
			p++;
		} else if (c < 0x20) {
			jsonw_printf(w, "\\u%04x", c);
			p++;
		} else if ((n = utf8_len(p))) {
			jsonw_raw(w, (const char *)p, n);
			p += n;
		} else {
			jsonw_raw(w, "\\ufffd", 6);
			p++;
		}
	}
	jsonw_raw(w, "\"", 1);
}

void jsonw_key(struct jsonw *w, const char *key)
{
	jsonw_str(w, key);
	jsonw_raw(w, ":", 1);
}

int jsonw_finish(struct jsonw *w, char **out, size_t *len)
{
	*out = NULL;
	*len = 0;
	if (!w->err && reserve(w, 0) == 0)
		w->buf[w->len] = '\0'; /* nothing was appended yet */
	if (w->err) {
		int err = w->err;

		jsonw_free(w);
		return err;
	}
	*out = w->buf;
	*len = w->len;
	w->buf = NULL;
	w->len = w->cap = 0;
	return 0;
}

void jsonw_free(struct jsonw *w)
{
	free(w->buf);
	w->buf = NULL;
	w->len = w->cap = 0;
}

void jsonw_time(struct jsonw *w, int64_t t)
{
	time_t tt = (time_t)t;
	struct tm tm;
	char buf[40];

	gmtime_r(&tt, &tm);
	strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
	jsonw_str(w, buf);
}
