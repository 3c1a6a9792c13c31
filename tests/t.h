/*
 * t.h - the tiny test harness. One binary per module; each TEST() registers itself (a linked
 * list, so there is no limit on the count), main() runs them all, or those named on the command
 * line, and ends with "N passed, N failed, N skipped".
 *
 * A failed CHECK ends its test only. Whatever the test set up that must not outlive it (child
 * servers, threads, temp dirs) is registered with t_defer() as soon as it exists; the harness
 * runs those cleanups, last registered first, after the test, whether it passed, failed or
 * skipped. A cleanup must not CHECK.
 *
 * Skips are honest: under CI (CI=true) a skipped test counts as failed unless its name is in
 * tests/skips.allowed (under $FLEETSYM_TOP, default the current dir), where each line is
 * "NAME reason". A name on the command line that matches no test is an error (exit 2).
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
	struct t_case *next;
};

static struct t_case *t_head, **t_tail = &t_head;
static jmp_buf t_jmp;
static int t_skipped_flag, t_in_cleanup;

#define TEST(name)                                                                                 \
	static void t_##name(void);                                                                \
	static struct t_case t_case_##name = {#name, t_##name, NULL};                              \
	__attribute__((constructor)) static void t_reg_##name(void)                                \
	{                                                                                          \
		*t_tail = &t_case_##name;                                                          \
		t_tail = &t_case_##name.next;                                                      \
	}                                                                                          \
	static void t_##name(void)

#define T_FAIL_(...)                                                                               \
	do {                                                                                       \
		fprintf(stderr, "  %s:%d: ", __FILE__, __LINE__);                                  \
		fprintf(stderr, __VA_ARGS__);                                                      \
		fputc('\n', stderr);                                                               \
		if (t_in_cleanup) {                                                                \
			fprintf(stderr, "  a cleanup failed a CHECK: giving up\n");                \
			abort();                                                                   \
		}                                                                                  \
		longjmp(t_jmp, 1);                                                                 \
	} while (0)

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond))                                                                       \
			T_FAIL_("CHECK(%s)", #cond);                                               \
	} while (0)

#define CHECK_INT(a, b)                                                                            \
	do {                                                                                       \
		long long t_a_ = (long long)(a), t_b_ = (long long)(b);                            \
		if (t_a_ != t_b_)                                                                  \
			T_FAIL_("%s == %lld, expected %s == %lld", #a, t_a_, #b, t_b_);            \
	} while (0)

#define CHECK_STR(a, b)                                                                            \
	do {                                                                                       \
		const char *t_a_ = (a), *t_b_ = (b);                                               \
		if (!t_a_ || !t_b_ || strcmp(t_a_, t_b_) != 0)                                     \
			T_FAIL_("%s == \"%s\", expected \"%s\"", #a, t_a_ ? t_a_ : "(null)",       \
				t_b_ ? t_b_ : "(null)");                                           \
	} while (0)

#define SKIP(why)                                                                                  \
	do {                                                                                       \
		fprintf(stderr, "  skipped: %s\n", why);                                           \
		t_skipped_flag = 1;                                                                \
		longjmp(t_jmp, 1);                                                                 \
	} while (0)

/* ---- cleanups ---- */

struct t_cleanup {
	void (*fn)(void *);
	void *arg;
	struct t_cleanup *next;
};

static struct t_cleanup *t_cleanups;

/* Run FN(ARG) when the current test ends, however it ends. Call it right after the thing to
 * undo exists. If memory runs out, FN(ARG) runs at once and the test fails. */
static __attribute__((unused)) void t_defer(void (*fn)(void *), void *arg)
{
	struct t_cleanup *c = malloc(sizeof(*c));

	if (!c) {
		fn(arg);
		T_FAIL_("t_defer: out of memory");
	}
	*c = (struct t_cleanup){fn, arg, t_cleanups};
	t_cleanups = c;
}

static void t_run_cleanups(void)
{
	t_in_cleanup = 1;
	while (t_cleanups) {
		struct t_cleanup *c = t_cleanups;

		t_cleanups = c->next;
		c->fn(c->arg);
		free(c);
	}
	t_in_cleanup = 0;
}

/* ---- skips under CI ---- */

static int t_skip_allowed(const char *name)
{
	const char *top = getenv("FLEETSYM_TOP");
	char path[4096], line[512];
	size_t n = strlen(name);
	int ok = 0;
	FILE *f;

	snprintf(path, sizeof(path), "%s/tests/skips.allowed", top ? top : ".");
	f = fopen(path, "r");
	while (f && !ok && fgets(line, sizeof(line), f))
		ok = line[0] != '#' && strncmp(line, name, n) == 0 &&
		     (line[n] == ' ' || line[n] == '\t');
	if (f)
		fclose(f);
	return ok;
}

static int t_under_ci(void)
{
	const char *ci = getenv("CI");

	return ci && (strcmp(ci, "true") == 0 || strcmp(ci, "1") == 0);
}

static int t_selected(int argc, char **argv, const char *name)
{
	if (argc < 2)
		return 1;
	for (int i = 1; i < argc; i++)
		if (strcmp(argv[i], name) == 0)
			return 1;
	return 0;
}

int main(int argc, char **argv)
{
	volatile int passed = 0, failed = 0, skipped = 0;

	for (int i = 1; i < argc; i++) {
		struct t_case *c = t_head;

		while (c && strcmp(c->name, argv[i]) != 0)
			c = c->next;
		if (!c) {
			fprintf(stderr, "%s: no test named '%s'\n", argv[0], argv[i]);
			return 2;
		}
	}
	for (struct t_case *volatile c = t_head; c; c = c->next) {
		if (!t_selected(argc, argv, c->name))
			continue;
		t_skipped_flag = 0;
		if (setjmp(t_jmp) == 0) {
			c->fn();
			t_run_cleanups();
			printf("ok   %s\n", c->name);
			passed++;
		} else if (t_skipped_flag) {
			t_run_cleanups();
			if (t_under_ci() && !t_skip_allowed(c->name)) {
				printf("FAIL %s: skipped under CI and not in tests/skips.allowed\n",
				       c->name);
				failed++;
			} else {
				printf("skip %s\n", c->name);
				skipped++;
			}
		} else {
			t_run_cleanups();
			printf("FAIL %s\n", c->name);
			failed++;
		}
		fflush(stdout);
	}
	printf("%d passed, %d failed, %d skipped\n", passed, failed, skipped);
	return failed ? 1 : 0;
}

#endif
