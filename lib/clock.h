/*
 * clock - the two clocks the service reads: monotonic for durations and deadlines, the wall
 * clock for timestamps that are stored or shown.
 */
#ifndef FLEETSYM_CLOCK_H
#define FLEETSYM_CLOCK_H

#include <stdint.h>
#include <time.h>

/* Monotonic seconds, for measuring how long something took. */
static inline double clock_mono_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Monotonic milliseconds, for deadlines. */
static inline int64_t clock_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Unix nanoseconds (the wall clock). */
static inline int64_t clock_wall_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

#endif
