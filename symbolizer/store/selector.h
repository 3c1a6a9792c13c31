/*
 * selector - the label selector language of queries, and the time expressions of from/to.
 *
 *   {service="checkout", version=~"v2.*", host!="x", env!~"dev|test"}
 *
 * Four operators as in Prometheus: = and != compare, =~ and !~ match a POSIX extended regular
 * expression (regcomp) against the WHOLE value ("v2.*" is "^(v2.*)$"). A label that is absent
 * has the value "", so {env!="prod"} matches series without env and {env=~".*"} matches all.
 * Values are quoted with "..." or '...' (escapes \" \' \\ \n \t) or `...` (raw). Names are
 * [a-zA-Z_][a-zA-Z0-9_]*. "{}" and "" select everything.
 *
 * A selector is a flat list of matchers, all of which must hold; where each matcher's label
 * comes from (series labels, sample labels) is the caller's business (profstore.c).
 * Parsing is bounded (text, matchers, value lengths, regex size) because the text comes from
 * a URL; a regex with back-references or large repeat counts is refused, so regexec stays
 * linear-ish. Immutable once parsed: matching is thread-safe.
 */
#ifndef FLEETSYM_SELECTOR_H
#define FLEETSYM_SELECTOR_H

#include <stddef.h>
#include <stdint.h>

#define SELECTOR_MAX_TEXT     16384 /* bytes of selector text */
#define SELECTOR_MAX_MATCHERS 64
#define SELECTOR_MAX_NAME     128  /* bytes of a label name */
#define SELECTOR_MAX_VALUE    4096 /* bytes of a value or regex */

enum selector_op { SEL_EQ, SEL_NE, SEL_RE, SEL_NRE };

struct selector;

/*
 * Parse TEXT. On success sets *OUT (owned by the caller; free with selector_free()) and returns
 * 0. On a syntax error returns -ERR_BADINPUT with "at position N (1-based): what was wrong" in
 * ERRBUF (ERRLEN bytes; may be NULL); -E2BIG over a cap, -ENOMEM.
 */
int selector_parse(const char *text, struct selector **out, char *errbuf, size_t errlen)
    __attribute__((warn_unused_result));
void selector_free(struct selector *s);

/* Number of matchers (0 for "{}"); the name and operator of matcher I (borrowed until
 * selector_free()). */
size_t selector_count(const struct selector *s);
const char *selector_name(const struct selector *s, size_t i);
enum selector_op selector_op(const struct selector *s, size_t i);

/* Does matcher I hold for VALUE (NULL or "" when the label is absent)? */
int selector_match_one(const struct selector *s, size_t i, const char *value);

/* Do all matchers hold for the label set NAMES/VALUES (N pairs; absent names are "")? */
int selector_match(const struct selector *s, const char *const *names, const char *const *values,
		   size_t n);

/* The selector back as canonical text ({a="b",c=~"d"}) into BUF; -E2BIG if it does not fit. */
int selector_format(const struct selector *s, char *buf, size_t len);

/*
 * A time for from/to: RFC 3339 ("2024-06-01T14:30:00Z", fractions and +hh:mm offsets),
 * unix seconds ("1717252200", "1717252200.5"), "now", or "now-DURATION" / "now+DURATION" with
 * DURATION as lib/parse.h reads it, with its unit ("now-1h", "now-15m", "now-30s", "now-2d").
 * NOW_NS is the current time. Sets *OUT_NS (unix nanoseconds). -ERR_BADINPUT with a message
 * in ERRBUF.
 */
int time_parse(const char *s, int64_t now_ns, int64_t *out_ns, char *errbuf, size_t errlen)
    __attribute__((warn_unused_result));

#endif
