/*
 * jsonw - a capped, append-only JSON text writer for large responses.
 *
 * A symbolize answer can hold 100,000 addresses with several frames each; a jansson tree of
 * that is several times the size of its text, so responses are written straight into one
 * growing buffer instead. The first error (cap reached, allocation refused) sticks: later
 * calls do nothing and jsonw_finish() reports it, so callers check once at the end. Strings
 * are escaped, and bytes that are not valid UTF-8 become U+FFFD, so the output always parses.
 */
#ifndef FLEETSYM_JSONW_H
#define FLEETSYM_JSONW_H

#include <stddef.h>
#include <stdint.h>

struct jsonw {
	char *buf; /* owned; take it with jsonw_finish() */
	size_t len;
	size_t cap;
	size_t max; /* cap in bytes; 0 = 64 MiB */
	int err;    /* first error, negative errno (-E2BIG past MAX) */
};

/* Raw text, already JSON (punctuation, numbers, literals). */
void jsonw_raw(struct jsonw *w, const char *s, size_t n);
void jsonw_lit(struct jsonw *w, const char *s);
void jsonw_printf(struct jsonw *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* S as a quoted, escaped JSON string; NULL writes null. */
void jsonw_str(struct jsonw *w, const char *s);

/* T (unix seconds) as a quoted RFC 3339 UTC time: "2026-12-04T23:50:00Z". */
void jsonw_time(struct jsonw *w, int64_t t);

/* "KEY": followed by the value: jsonw_key(w, "line"); jsonw_printf(w, "%u", n); */
void jsonw_key(struct jsonw *w, const char *key);

/* 0 and the NUL-terminated text in *OUT (owned by the caller; free()), *LEN its length;
 * or the sticky error, with the buffer freed. */
int jsonw_finish(struct jsonw *w, char **out, size_t *len) __attribute__((warn_unused_result));

/* Free the buffer without taking it. */
void jsonw_free(struct jsonw *w);

#endif
