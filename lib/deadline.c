/*
 * deadline - one thread-local CLOCK_MONOTONIC time in milliseconds (0: none).
 */
#include "lib/deadline.h"

#include "lib/clock.h"

static __thread int64_t until_ms;

void deadline_set_in(int64_t ms)
{
	until_ms = ms > 0 ? clock_mono_ms() + ms : 0;
}

int deadline_passed(void)
{
	return until_ms && clock_mono_ms() >= until_ms;
}
