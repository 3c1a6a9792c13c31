/*
 * fuzz_selector - selector_parse() and time_parse() (symbolizer/store/selector.c) on the text of
 * a URL parameter: a parsed selector must format back to text that parses to the same canonical
 * text, and match values (the input itself among them) without tripping a sanitizer.
 */
#include "tests/fuzz/fuzz.h"

#include "symbolizer/store/selector.h"

#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char buf[SELECTOR_MAX_TEXT * 4], again[SELECTOR_MAX_TEXT * 4];
	char *text = fuzz_str(data, size), err[256], value[257];
	struct selector *s = NULL, *s2 = NULL;
	int64_t t;

	(void)!time_parse(text, INT64_C(1717252200) * 1000000000, &t, err, sizeof(err));
	if (selector_parse(text, &s, err, sizeof(err)) == 0) {
		size_t n = selector_count(s);

		snprintf(value, sizeof(value), "%.*s", (int)(size < 256 ? size : 256), text);
		for (size_t i = 0; i < n; i++) {
			const char *name = selector_name(s, i);

			(void)selector_op(s, i);
			(void)selector_match_one(s, i, NULL);
			(void)selector_match_one(s, i, "");
			(void)selector_match_one(s, i, value);
			(void)selector_match(s, &name, (const char *const *)&text, 1);
		}
		if (selector_format(s, buf, sizeof(buf)) == 0) {
			if (selector_parse(buf, &s2, err, sizeof(err)) != 0) {
				fprintf(stderr, "canonical text %s does not parse: %s\n", buf, err);
				abort();
			}
			if (selector_format(s2, again, sizeof(again)) != 0 || strcmp(buf, again)) {
				fprintf(stderr, "canonical text %s formats as %s\n", buf, again);
				abort();
			}
			selector_free(s2);
		}
		selector_free(s);
	}
	free(text);
	return 0;
}
