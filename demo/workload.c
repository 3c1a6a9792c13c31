/*
 * workload - the program `make demo` profiles: a toy request server that burns CPU in a few
 * recognisable places, built with clang -O2 -g and otherwise default flags, i.e. without frame
 * pointers (the agent unwinds user stacks from .eh_frame tables), stripped, its debug info
 * uploaded to fleetsymd.
 *
 *   demo-workload SECONDS [v1|v2]
 *
 * Per request: parse_request() (tokenize() inlined into it), hash_block() (mix() and rotl()
 * inlined: most samples land in them), compress_reply() (into libdemocodec.so, which has no
 * debug info on the server), log_line() (snprintf in libc). "v2" is the "new release" with a
 * regression: hash_block() does twice the rounds, so the diff view of v2 against v1 shows it
 * red and everything else a little blue.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

size_t codec_compress(const uint8_t *in, size_t n, uint8_t *out, size_t cap);

static int rounds = 24;

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static inline __attribute__((always_inline)) uint64_t rotl(uint64_t x, int r)
{
	return (x << r) | (x >> (64 - r));
}

static inline __attribute__((always_inline)) uint64_t mix(uint64_t h, uint64_t v)
{
	h ^= v * 0x9e3779b97f4a7c15ULL;
	h = rotl(h, 27) * 0xff51afd7ed558ccdULL;
	return h ^ (h >> 31);
}

/* The hottest function: every byte of the request, ROUNDS times. */
__attribute__((noinline)) uint64_t hash_block(const uint8_t *p, size_t n)
{
	uint64_t h = 0x243f6a8885a308d3ULL;

	for (int r = 0; r < rounds; r++)
		for (size_t i = 0; i + 8 <= n; i += 8) {
			uint64_t v;

			memcpy(&v, p + i, 8);
			h = mix(h, v + (uint64_t)r);
		}
	return h;
}

static inline __attribute__((always_inline)) size_t tokenize(const char *s, size_t n,
							     size_t *starts, size_t max)
{
	size_t k = 0;

	for (size_t i = 0; i < n && k < max; i++)
		if ((i == 0 || s[i - 1] == ' ') && s[i] != ' ')
			starts[k++] = i;
	return k;
}

/* Second: splits the request into words and checks them. */
__attribute__((noinline)) unsigned parse_request(const char *req, size_t n)
{
	size_t starts[512];
	unsigned sum = 0;

	for (int pass = 0; pass < 4; pass++) {
		size_t k = tokenize(req, n, starts, 512);

		for (size_t i = 0; i < k; i++)
			sum += (unsigned char)req[starts[i]] * (unsigned)(pass + 1);
	}
	return sum;
}

__attribute__((noinline)) size_t compress_reply(const uint8_t *p, size_t n)
{
	static uint8_t out[8192];
	size_t len = codec_compress(p, n, out, sizeof(out));

	return len + out[0]; /* not a tail call: this frame stays on the stack */
}

__attribute__((noinline)) int log_line(char *buf, size_t cap, unsigned id, uint64_t h)
{
	return snprintf(buf, cap, "request %u hash %016llx ok", id, (unsigned long long)h);
}

__attribute__((noinline)) uint64_t handle_request(unsigned id, uint8_t *req, size_t n)
{
	char line[128];
	uint64_t h;

	req[id % n] = (uint8_t)('a' + id % 26);
	h = hash_block(req, n);
	h += parse_request((const char *)req, n);
	h += compress_reply(req, n);
	h += (uint64_t)log_line(line, sizeof(line), id, h);
	return h;
}

int main(int argc, char **argv)
{
	static uint8_t req[4096];
	double secs = argc > 1 ? atof(argv[1]) : 20, end;
	uint64_t acc = 0;
	unsigned id = 0;

	if (argc > 2 && !strcmp(argv[2], "v2"))
		rounds *= 2;
	for (size_t i = 0; i < sizeof(req); i++)
		req[i] = (uint8_t)(i % 7 == 0 ? ' ' : i % 3 == 0 ? 'x' : 'a' + i % 26);
	end = now_s() + secs;
	while (now_s() < end)
		acc += handle_request(id++, req, sizeof(req));
	printf("%u requests (%s), checksum %llx\n", id, rounds > 24 ? "v2" : "v1",
	       (unsigned long long)acc);
	return 0;
}
