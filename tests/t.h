/*
 * t.h - the tiny test harness. One binary per module; each TEST() registers itself, main() runs
 * them all and ends with "N passed, N failed, N skipped". A failed CHECK ends its test only.
 */
#ifndef FLEETSYM_T_H
#define FLEETSYM_T_H

#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct t_case {
	const char *name;
	void (*fn)(void);
};

#define T_MAX 256
static struct t_case t_cases[T_MAX];
static int t_ncases;
static jmp_buf t_jmp;
static int t_skipped_flag;

#define TEST(name)                                                         \
	static void t_##name(void);                                        \
	__attribute__((constructor)) static void t_reg_##name(void)        \
	{                                                                  \
		if (t_ncases < T_MAX)                                      \
			t_cases[t_ncases++] = (struct t_case){ #name, t_##name }; \
	}                                                                  \
	static void t_##name(void)

#define T_FAIL_(...)                                                          \
	do {                                                                  \
		fprintf(stderr, "  %s:%d: ", __FILE__, __LINE__);             \
		fprintf(stderr, __VA_ARGS__);                                 \
		fputc('\n', stderr);                                          \
		longjmp(t_jmp, 1);                                            \
	} while (0)

#define CHECK(cond)                                 \
	do {                                        \
		if (!(cond))                        \
			T_FAIL_("CHECK(%s)", #cond); \
	} while (0)

#define CHECK_INT(a, b)                                                                  \
	do {                                                                             \
		long long t_a_ = (long long)(a), t_b_ = (long long)(b);                  \
		if (t_a_ != t_b_)                                                        \
			T_FAIL_("%s == %lld, expected %s == %lld", #a, t_a_, #b, t_b_); \
	} while (0)

#define CHECK_STR(a, b)                                                                      \
	do {                                                                                 \
		const char *t_a_ = (a), *t_b_ = (b);                                         \
		if (!t_a_ || !t_b_ || strcmp(t_a_, t_b_) != 0)                               \
			T_FAIL_("%s == \"%s\", expected \"%s\"", #a, t_a_ ? t_a_ : "(null)", \
				t_b_ ? t_b_ : "(null)");                                     \
	} while (0)

#define SKIP(why)                                       \
	do {                                            \
		fprintf(stderr, "  skipped: %s\n", why); \
		t_skipped_flag = 1;                     \
		longjmp(t_jmp, 1);                      \
	} while (0)

int main(int argc, char **argv)
{
	volatile int passed = 0, failed = 0, skipped = 0;

	for (volatile int i = 0; i < t_ncases; i++) {
		if (argc > 1 && strcmp(argv[1], t_cases[i].name) != 0)
			continue;
		t_skipped_flag = 0;
		if (setjmp(t_jmp) == 0) {
			t_cases[i].fn();
			printf("ok   %s\n", t_cases[i].name);
			passed++;
		} else if (t_skipped_flag) {
			printf("skip %s\n", t_cases[i].name);
			skipped++;
		} else {
			printf("FAIL %s\n", t_cases[i].name);
			failed++;
		}
		fflush(stdout);
	}
	printf("%d passed, %d failed, %d skipped\n", passed, failed, skipped);
	return failed ? 1 : 0;
}

#endif
