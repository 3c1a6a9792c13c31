/*
 * parse - strtod and a table of units; numbers past what int64_t or uint64_t hold are refused.
 */
#include "lib/parse.h"

#include "lib/err.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static int duration(const char *s, int64_t *out, int plain_ok)
{
	static const struct {
		const char *unit;
		double ns;
	} units[] = {{"ms", 1e6},   {"s", 1e9},	    {"m", 60e9},
		     {"h", 3600e9}, {"d", 86400e9}, {"w", 604800e9}};
	char *end;
	double v;

	if (!isdigit((unsigned char)*s) && *s != '.')
		return -ERR_BADINPUT;
	v = strtod(s, &end);
	if (end == s || !isfinite(v) || v < 0)
		return -ERR_BADINPUT;
	if (!*end && plain_ok) {
		v *= 1e9;
	} else {
		size_t i;

		for (i = 0; i < sizeof(units) / sizeof(units[0]); i++)
			if (!strcmp(end, units[i].unit))
				break;
		if (i == sizeof(units) / sizeof(units[0]))
			return -ERR_BADINPUT;
		v *= units[i].ns;
	}
	if (v > 9.2e18)
		return -ERR_BADINPUT;
	*out = (int64_t)(v + 0.5);
	return 0;
}

int parse_duration(const char *s, int64_t *out_ns)
{
	return duration(s, out_ns, 1);
}

int parse_duration_unit(const char *s, int64_t *out_ns)
{
	return duration(s, out_ns, 0);
}

int parse_size(const char *s, uint64_t *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || v < 0)
		return -ERR_BADINPUT;
	switch (tolower((unsigned char)*end)) {
	case 'k': v *= 1024.0, end++; break;
	case 'm': v *= 1024.0 * 1024, end++; break;
	case 'g': v *= 1024.0 * 1024 * 1024, end++; break;
	case 't': v *= 1024.0 * 1024 * 1024 * 1024, end++; break;
	}
	if (tolower((unsigned char)*end) == 'i')
		end++;
	if (tolower((unsigned char)*end) == 'b')
		end++;
	if (*end || v > 1.8e19)
		return -ERR_BADINPUT;
	*out = (uint64_t)v;
	return 0;
}
