/*
 * agent_shares - a CPU-bound workload with six hot functions of known, different shares of
 * the time, for tests/run-agent-perf.sh (fleetsym-agent against perf) and bench/agent.sh
 * (overhead). Built with -O2 -g -fno-omit-frame-pointer -pthread.
 *
 *   agent_shares secs SECS              rounds until SECS have passed (at most 120)
 *   agent_shares rounds N [THREADS [GATE]]
 *        exactly N rounds in each of THREADS threads (default 1; a fixed amount of work),
 *        started once the file GATE exists (polled every 10 ms, at most 60 s), so that
 *        profilers attached to the pid see all of it; then one line: "rounds=N threads=T
 *        cpu_ns=... wall_ns=... sum=..." (its own CPU time from CLOCK_PROCESS_CPUTIME_ID and
 *        its wall time, both from the gate on), "round_cpu_ns=A,B,..." (the CPU time of
 *        each round of the main thread, CLOCK_THREAD_CPUTIME_ID).
 *
 * One round calls hot40(), hot25(), hot15(), hot10(), hot06(), hot04(), each running the
 * same loop, instruction for instruction (a different salt before it), for 40, 25, 15, 10, 6
 * and 4 units: their shares of the CPU time are 40/25/15/10/6/4 %, whatever the CPU. A unit is
 * ~5 ms, a round ~0.5 s: long stretches that a regular sampler (perf's per-task cpu-clock
 * timer) hits in proportion to their length with an error of at most one sample each,
 * rather than the binomial error of randomly placed samples.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define UNIT 1500000 /* loop iterations in one unit, ~5 ms */

static uint64_t now_ns(clockid_t clk)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline __attribute__((always_inline)) uint64_t step(uint64_t x)
{
	x ^= x >> 31;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 27;
	return x;
}

/* Not inlined: the hot functions are no leaf functions and keep their frame (see agent_work.c). */
__attribute__((noinline)) uint64_t sink(uint64_t x)
{
	__asm__ volatile("" : "+r"(x));
	return x;
}

/* noipa: not inlined, not cloned (no .constprop names), not folded into one another. */
#define HOT(name, salt)                                                                            \
	__attribute__((noipa)) uint64_t name(uint64_t n, uint64_t acc)                             \
	{                                                                                          \
		acc ^= (salt); /* outside the loop: the loops are the same instructions */         \
		for (uint64_t i = 0; i < n; i++)                                                   \
			acc = step(acc + i);                                                       \
		return sink(acc) ^ n; /* no tail call: the frame must exist */                     \
	}
HOT(hot40, 1)
HOT(hot25, 2)
HOT(hot15, 3)
HOT(hot10, 4)
HOT(hot06, 5)
HOT(hot04, 6)

__attribute__((noinline)) static uint64_t one_round(uint64_t acc)
{
	acc = hot40(40 * UNIT, acc);
	acc = hot25(25 * UNIT, acc);
	acc = hot15(15 * UNIT, acc);
	acc = hot10(10 * UNIT, acc);
	acc = hot06(6 * UNIT, acc);
	acc = hot04(4 * UNIT, acc);
	return acc;
}

static uint64_t nrounds, round_ns[10000]; /* the CPU time of each round of the main thread */

static void *worker(void *arg)
{
	uint64_t acc = (uintptr_t)arg, c = now_ns(CLOCK_THREAD_CPUTIME_ID), c1;

	for (uint64_t i = 0; i < nrounds; i++) {
		acc = one_round(acc);
		if (arg == (void *)1) {
			c1 = now_ns(CLOCK_THREAD_CPUTIME_ID);
			round_ns[i] = c1 - c;
			c = c1;
		}
	}
	return (void *)(uintptr_t)acc;
}

int main(int argc, char **argv)
{
	uint64_t acc = 1, t0, c0;
	pthread_t th[16];
	int nth = 1;

	if (argc < 3)
		return 2;
	if (!strcmp(argv[1], "secs")) {
		double secs = atof(argv[2]);
		uint64_t end = now_ns(CLOCK_MONOTONIC) + (uint64_t)(secs * 1e9);

		if (secs <= 0 || secs > 120)
			return 2;
		do
			acc = one_round(acc);
		while (now_ns(CLOCK_MONOTONIC) < end);
		return (int)(acc & 1) * 0;
	}
	if (strcmp(argv[1], "rounds"))
		return 2;
	nrounds = strtoull(argv[2], NULL, 10);
	if (argc > 3)
		nth = atoi(argv[3]);
	if (nrounds == 0 || nrounds > 10000 || nth < 1 || nth > 16)
		return 2;
	if (argc > 4) {
		struct timespec ms10 = {0, 10000000};

		for (int i = 0; access(argv[4], F_OK); i++) {
			if (i >= 6000)
				return 3;
			nanosleep(&ms10, NULL);
		}
	}
	t0 = now_ns(CLOCK_MONOTONIC);
	c0 = now_ns(CLOCK_PROCESS_CPUTIME_ID);
	for (int i = 1; i < nth; i++)
		if (pthread_create(&th[i], NULL, worker, (void *)(uintptr_t)(i + 1)))
			return 1;
	acc = (uintptr_t)worker((void *)1);
	for (int i = 1; i < nth; i++) {
		void *r;

		pthread_join(th[i], &r);
		acc += (uintptr_t)r;
	}
	printf("rounds=%llu threads=%d cpu_ns=%llu wall_ns=%llu sum=%llu round_cpu_ns=",
	       (unsigned long long)nrounds, nth,
	       (unsigned long long)(now_ns(CLOCK_PROCESS_CPUTIME_ID) - c0),
	       (unsigned long long)(now_ns(CLOCK_MONOTONIC) - t0), (unsigned long long)acc);
	for (uint64_t i = 0; i < nrounds; i++)
		printf("%s%llu", i ? "," : "", (unsigned long long)round_ns[i]);
	printf("\n");
	return 0;
}
