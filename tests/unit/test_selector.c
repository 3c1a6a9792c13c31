/*
 * test_selector - the label selector language (parse, errors with positions, anchored
 * regexes, absent labels) and the from/to time expressions.
 */
#include "tests/t.h"

#include "lib/err.h"
#include "lib/parse.h"
#include "symbolizer/store/selector.h"

#include <errno.h>
#include <time.h>

static struct selector *parse_ok(const char *text)
{
	char err[256];
	struct selector *s = NULL;
	int rc = selector_parse(text, &s, err, sizeof(err));

	if (rc)
		fprintf(stderr, "  parse of %s failed: %s\n", text, err);
	return rc ? NULL : s;
}

static int matches(struct selector *s, const char *a_name, const char *a_val)
{
	const char *names[] = {"service", "version", a_name};
	const char *values[] = {"checkout", "v2.4.1", a_val};

	return selector_match(s, names, values, a_name ? 3 : 2);
}

TEST(parse_and_match)
{
	struct selector *s =
	    parse_ok("{service=\"checkout\", version=~\"v2.*\",host!=\"x\",env!~\"dev|test\"}");
	char buf[256];

	CHECK(s != NULL);
	CHECK_INT(selector_count(s), 4);
	CHECK_STR(selector_name(s, 1), "version");
	CHECK_INT(selector_op(s, 1), SEL_RE);
	CHECK_INT(selector_op(s, 3), SEL_NRE);
	CHECK(matches(s, NULL, NULL)); /* host and env absent: "" */
	CHECK(matches(s, "env", "prod"));
	CHECK(!matches(s, "env", "dev"));
	CHECK(!matches(s, "env", "test"));
	CHECK(matches(s, "env", "devel")); /* anchored: "dev|test" is not a prefix test */
	CHECK(!matches(s, "host", "x"));
	CHECK(matches(s, "host", "xy"));
	CHECK_INT(selector_format(s, buf, sizeof(buf)), 0);
	CHECK_STR(buf, "{service=\"checkout\",version=~\"v2.*\",host!=\"x\",env!~\"dev|test\"}");
	CHECK_INT(selector_format(s, buf, 10), -E2BIG);
	selector_free(s);
}

TEST(anchored_regex)
{
	struct selector *s = parse_ok("{version=~\"v2\"}");

	CHECK(s);
	CHECK(selector_match_one(s, 0, "v2"));
	CHECK(!selector_match_one(s, 0, "v2.4"));
	CHECK(!selector_match_one(s, 0, "xv2"));
	selector_free(s);
	s = parse_ok("{a=~\"x|y\"}");
	CHECK(s);
	CHECK(selector_match_one(s, 0, "y"));
	CHECK(!selector_match_one(s, 0, "xy"));
	selector_free(s);
	/* absent label: "" */
	s = parse_ok("{a=~\".*\", b=\"\", c!~\".+\"}");
	CHECK(s);
	CHECK(selector_match(s, NULL, NULL, 0));
	selector_free(s);
	s = parse_ok("{a=~\".+\"}");
	CHECK(!selector_match(s, NULL, NULL, 0));
	selector_free(s);
}

TEST(empty_and_quotes)
{
	struct selector *s = parse_ok("");

	CHECK(s);
	CHECK_INT(selector_count(s), 0);
	CHECK(selector_match(s, NULL, NULL, 0));
	selector_free(s);
	s = parse_ok("  { }  ");
	CHECK(s);
	CHECK_INT(selector_count(s), 0);
	selector_free(s);
	s = parse_ok("{a='x\\'y', b=`c\\d`, c=\"q\\\"\\n\", d=\"1\",}");
	CHECK(s);
	CHECK(selector_match_one(s, 0, "x'y"));
	CHECK(selector_match_one(s, 1, "c\\d"));
	CHECK(selector_match_one(s, 2, "q\"\n"));
	selector_free(s);
	/* regex escapes survive the string escapes */
	s = parse_ok("{v=~\"v2\\.4\"}");
	CHECK(s);
	CHECK(selector_match_one(s, 0, "v2.4"));
	CHECK(!selector_match_one(s, 0, "v2x4"));
	selector_free(s);
}

static void bad(const char *text, const char *want)
{
	char err[256] = "";
	struct selector *s = NULL;
	int rc = selector_parse(text, &s, err, sizeof(err));

	if (rc != -ERR_BADINPUT || s || !strstr(err, want)) {
		fprintf(stderr, "  %s -> rc %d err '%s', want '%s'\n", text, rc, err, want);
		T_FAIL_("bad selector accepted or wrong message");
	}
}

TEST(errors_with_position)
{
	bad("service=\"x\"", "position 1: expected '{'");
	bad("{service=\"x\"", "position 13: expected ',' or '}'");
	bad("{service=x}", "position 10: expected a quoted value");
	bad("{1a=\"x\"}", "position 2: expected a label name");
	bad("{a==\"x\"}", "position 4: expected a quoted value");
	bad("{a~\"x\"}", "position 3: expected one of");
	bad("{a=\"x}", "position 4: unterminated string");
	bad("{a=\"x\"} junk", "position 9: unexpected text");
	bad("{a=~\"(\"}", "unbalanced '('");
	bad("{a=~\"a)|(b\"}", "unbalanced ')'");
	bad("{a=~\"[a-\"}", "unterminated bracket");
	bad("{a=~\"(a)\\1\"}", "back-references");
	bad("{a=~\"a{1000}\"}", "repeat count");
	bad("{a=~\"*\"}", "regex");
	bad("{a=\"x\",,b=\"y\"}", "position 8: expected a label name");
}

TEST(caps)
{
	char *big = malloc(SELECTOR_MAX_TEXT + 10);
	struct selector *s = NULL;
	char err[128];
	size_t n = 0;

	memset(big, ' ', SELECTOR_MAX_TEXT + 9);
	big[SELECTOR_MAX_TEXT + 9] = '\0';
	CHECK_INT(selector_parse(big, &s, err, sizeof(err)), -E2BIG);
	/* 65 matchers */
	n += (size_t)sprintf(big + n, "{");
	for (int i = 0; i < 65; i++)
		n += (size_t)sprintf(big + n, "a%d=\"x\",", i);
	sprintf(big + n, "}");
	CHECK_INT(selector_parse(big, &s, err, sizeof(err)), -ERR_BADINPUT);
	CHECK(strstr(err, "more than 64 matchers"));
	/* a value over the cap */
	n = (size_t)sprintf(big, "{a=\"");
	memset(big + n, 'x', SELECTOR_MAX_VALUE + 1);
	sprintf(big + n + SELECTOR_MAX_VALUE + 1, "\"}");
	CHECK_INT(selector_parse(big, &s, err, sizeof(err)), -ERR_BADINPUT);
	CHECK(strstr(err, "longer than"));
	free(big);
}

/* Regexes that POSIX engines blow up when compiling (each {a,b} copies its atom) are refused
 * before regcomp(): "a{,5000}" took 2.7 s and 406 MB, "((a{0,20}){0,20}){0,20}" 5 s and
 * 1.18 GB. Ordinary ones still compile and match. */
TEST(regex_complexity_bounded)
{
	static const char *const refused[] = {
	    "{a=~\"a{,5000}\"}",
	    "{a=~\"((a{0,20}){0,20}){0,20}\"}",
	    "{a=~\"(((((x{9}){9}){9}){9}){9})\"}",
	    "{a=~\"((((((((((((((((((((((((((((((((((a))))))))))))))))))))))))))))))))))\"}",
	    "{a=~\"[a-z]{100}[0-9]{100}(x{100}){100}\"}",
	    /* stacked repetition operators (fuzz_selector's out-of-memory input) */
	    "{comm=~\".*java+++++++++++++++++++++++++++++++++++++++++++++++++++++++++++++++.*\"}",
	    "{a=~\"x*{3}\"}",
	    "{a=~\"(ab){2}{3}\"}",
	    /* a count past LONG_MAX (fuzz_selector: signed overflow) */
	    "{a=~\"x{88888888888888888888888888888888}\"}",
	};
	static const char *const taken[] = {
	    "{a=~\"svc-[0-9]{1,3}\"}",
	    "{a=~\"(a|b){1,10}c\"}",
	    "{a=~\"x{3}y{2,}\"}",
	    "{a=~\"[a-z]+\\\\.(com|org)\"}",
	};
	struct selector *s = NULL;
	char err[256];
	struct timespec t0, t1;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		CHECK_INT(selector_parse(refused[i], &s, err, sizeof(err)), -ERR_BADINPUT);
		CHECK(strstr(err, "too complex") || strstr(err, "over 100") ||
		      strstr(err, "nested too deeply") || strstr(err, "in a row"));
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	CHECK((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000 < 100);
	for (size_t i = 0; i < sizeof(taken) / sizeof(taken[0]); i++) {
		if (selector_parse(taken[i], &s, err, sizeof(err)) != 0)
			T_FAIL_("%s: %s", taken[i], err);
		selector_free(s);
		s = NULL;
	}
	CHECK_INT(selector_parse("{a=~\"x{3}y{2,}\"}", &s, err, sizeof(err)), 0);
	selector_free(s);
}

TEST(times)
{
	const int64_t now = 1717252200LL * 1000000000;
	char err[256];
	int64_t t;

	CHECK_INT(time_parse("now", now, &t, err, sizeof(err)), 0);
	CHECK_INT(t, now);
	CHECK_INT(time_parse("now-1h", now, &t, err, sizeof(err)), 0);
	CHECK_INT(t, now - 3600LL * 1000000000);
	CHECK_INT(time_parse("now-15m", now, &t, err, sizeof(err)), 0);
	CHECK_INT(t, now - 900LL * 1000000000);
	CHECK_INT(time_parse("now-30s", now, &t, err, sizeof(err)), 0);
	CHECK_INT(t, now - 30LL * 1000000000);
	CHECK_INT(time_parse("now-2d", now, &t, err, sizeof(err)), 0);
	CHECK_INT(t, now - 2 * 86400LL * 1000000000);
	CHECK_INT(time_parse("now+500ms", now, &t, err, sizeof(err)), 0);
	CHECK_INT(t, now + 500000000);
	CHECK_INT(time_parse("1717252200", now, &t, err, sizeof(err)), 0);
	CHECK_INT(t, 1717252200LL * 1000000000);
	CHECK_INT(time_parse("1717252200.25", now, &t, err, sizeof(err)), 0);
	CHECK_INT(t, 1717252200LL * 1000000000 + 250000000);
	CHECK_INT(time_parse("2024-06-01T14:30:00Z", now, &t, err, sizeof(err)), 0);
	CHECK_INT(t, 1717252200LL * 1000000000);
	CHECK_INT(time_parse("2024-06-01T16:30:00.5+02:00", now, &t, err, sizeof(err)), 0);
	CHECK_INT(t, 1717252200LL * 1000000000 + 500000000);
	CHECK_INT(time_parse("2024-06-01T14:30:00", now, &t, err, sizeof(err)), -ERR_BADINPUT);
	CHECK(strstr(err, "RFC 3339"));
	CHECK_INT(time_parse("2024-13-01T14:30:00Z", now, &t, err, sizeof(err)), -ERR_BADINPUT);
	CHECK_INT(time_parse("now-1y", now, &t, err, sizeof(err)), -ERR_BADINPUT);
	/* 15200 weeks fit in an int64 of ns; now plus them does not (UBSan caught the sum) */
	CHECK_INT(time_parse("now+15200w", now, &t, err, sizeof(err)), -ERR_BADINPUT);
	CHECK(strstr(err, "out of range"));
	CHECK_INT(time_parse("now-15200w", -now, &t, err, sizeof(err)), -ERR_BADINPUT);
	CHECK_INT(time_parse("now-", now, &t, err, sizeof(err)), -ERR_BADINPUT);
	CHECK_INT(time_parse("yesterday", now, &t, err, sizeof(err)), -ERR_BADINPUT);
	CHECK_INT(time_parse("", now, &t, err, sizeof(err)), -ERR_BADINPUT);
	CHECK_INT(time_parse("-5", now, &t, err, sizeof(err)), -ERR_BADINPUT);
	CHECK_INT(time_parse("1e300", now, &t, err, sizeof(err)), -ERR_BADINPUT);
	/* past the int64 range of nanoseconds: refused, not a signed overflow (fuzz_selector) */
	CHECK_INT(time_parse("now+15200w", now, &t, err, sizeof(err)), -ERR_BADINPUT);
	CHECK(strstr(err, "out of range"));
	CHECK_INT(time_parse("now-15200w", -now, &t, err, sizeof(err)), -ERR_BADINPUT);
	CHECK_INT(parse_duration("10s", &t), 0);
	CHECK_INT(t, 10LL * 1000000000);
	CHECK_INT(parse_duration("7d", &t), 0);
	CHECK_INT(t, 7 * 86400LL * 1000000000);
	CHECK_INT(parse_duration("90", &t), 0);
	CHECK_INT(t, 90LL * 1000000000);
	CHECK_INT(parse_duration("5x", &t), -ERR_BADINPUT);
	CHECK_INT(parse_duration("", &t), -ERR_BADINPUT);
}

/* Mutated selectors never crash and either parse or fail with a message. */
TEST(mutations)
{
	static const char seed[] = "{service=\"checkout\",version=~\"v2.*\",env!~\"dev|test\"}";
	static const char alphabet[] = "{}=!~\"'`,\\()[]|*+?.a_1 ";
	char buf[sizeof(seed) + 8], err[256];
	unsigned x = 12345;

	for (int i = 0; i < 20000; i++) {
		struct selector *s = NULL;
		int rc;

		memcpy(buf, seed, sizeof(seed));
		for (int k = 0; k < 3; k++) {
			x = x * 1103515245 + 12345;
			buf[(x >> 8) % (sizeof(seed) - 1)] =
			    alphabet[(x >> 20) % (sizeof(alphabet) - 1)];
		}
		err[0] = '\0';
		rc = selector_parse(buf, &s, err, sizeof(err));
		CHECK(rc == 0 || (rc == -ERR_BADINPUT && err[0]));
		if (s)
			selector_match_one(s, 0, "checkout");
		selector_free(s);
	}
}
