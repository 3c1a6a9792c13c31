/*
 * unw_work - a workload with known call chains for tests/run-agent-unwind.sh, built at test
 * time with -O2 and without frame pointers. Every function on a chain is noinline and does
 * work after its call returns, so that no call becomes a tail call (which would drop the
 * frame for any unwinder). Modes, each burning CPU for SECONDS (default 5):
 *   chain     main -> chain_a -> chain_b -> chain_c -> burn
 *   recurse   main -> recurse x 200 -> burn
 *   qsort     main -> sort_loop -> qsort (libc) -> cmp_slow; and memcpy from copy_loop
 *   signal    main -> sig_wait; SIGALRM's handler on_alarm burns inside the handler
 *   dlopen    main -> dl_run -> (after 1.5 s) dlopen(LIB) -> lib_burn -> burn_cb
 *   short     main -> chain_a ... for 50 ms, then exit (run many times)
 *   churn     dlopen(LIB), call into it, dlclose: code unmapped while sampled, over and over
 *   jit       burn in anonymous executable memory (a 3-instruction loop): no table there
 */
#include <dlfcn.h>
#include <sys/mman.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define NOINLINE __attribute__((noinline))

static double seconds = 5;
static volatile unsigned long sink;

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

NOINLINE unsigned long burn(unsigned long n)
{
	unsigned long x = n;

	for (unsigned long i = 0; i < 200000; i++)
		x = x * 6364136223846793005UL + i;
	return x;
}

NOINLINE unsigned long chain_c(unsigned long n)
{
	unsigned long r = burn(n + 3);

	sink += r;
	return r ^ n;
}

NOINLINE unsigned long chain_b(unsigned long n)
{
	unsigned long r = chain_c(n + 2);

	sink += r;
	return r ^ n;
}

NOINLINE unsigned long chain_a(unsigned long n)
{
	unsigned long r = chain_b(n + 1);

	sink += r;
	return r ^ n;
}

NOINLINE unsigned long recurse(int depth, unsigned long n)
{
	unsigned long r;
	char pad[32];

	memset(pad, depth, sizeof(pad));
	r = depth ? recurse(depth - 1, n + pad[depth % 32]) : burn(n);
	sink += r;
	return r ^ (unsigned long)depth;
}

NOINLINE int cmp_slow(const void *a, const void *b)
{
	unsigned long x = *(const unsigned long *)a, y = *(const unsigned long *)b;

	for (int i = 0; i < 50; i++)
		sink += x * (unsigned long)i;
	return x < y ? -1 : x > y;
}

NOINLINE void sort_loop(void)
{
	static unsigned long v[4096];

	for (size_t i = 0; i < 4096; i++)
		v[i] = (i * 2654435761u) % 100003;
	qsort(v, 4096, sizeof(v[0]), cmp_slow);
	sink += v[7];
}

NOINLINE void copy_loop(void)
{
	static char a[1 << 20], b[1 << 20];

	for (int i = 0; i < 20; i++) {
		memcpy(a, b, sizeof(a));
		b[i] = a[i + 1] + 1;
	}
	sink += (unsigned long)a[5];
}

static volatile sig_atomic_t alarms;

NOINLINE void on_alarm(int sig)
{
	sink += chain_a((unsigned long)sig);
	sink += chain_a((unsigned long)sig + 1);
	alarms++;
}

NOINLINE void sig_wait(void)
{
	while (alarms < 1000000) {
		pause();
		if (now() > seconds)
			break;
	}
}

typedef unsigned long (*lib_burn_fn)(unsigned long (*cb)(unsigned long), unsigned long);

NOINLINE unsigned long burn_cb(unsigned long n)
{
	unsigned long r = burn(n);

	sink += r;
	return r ^ n;
}

NOINLINE int dl_run(const char *lib, double until)
{
	lib_burn_fn f;
	void *h;

	while (now() < until - seconds + 1.5)
		usleep(10000);
	h = dlopen(lib, RTLD_NOW);
	if (!h || !(f = (lib_burn_fn)dlsym(h, "lib_burn"))) {
		fprintf(stderr, "unw_work: %s\n", dlerror());
		return 1;
	}
	while (now() < until)
		sink += f(burn_cb, 1);
	return 0;
}

NOINLINE int churn(const char *lib, double until)
{
	while (now() < until) {
		void *h = dlopen(lib, RTLD_NOW | RTLD_LOCAL);
		lib_burn_fn f;

		if (!h || !(f = (lib_burn_fn)dlsym(h, "lib_burn"))) {
			fprintf(stderr, "unw_work: %s\n", dlerror());
			return 1;
		}
		for (int i = 0; i < 20; i++)
			sink += f(burn_cb, (unsigned long)i);
		dlclose(h);
	}
	return 0;
}

NOINLINE int jit(double until)
{
	/* dec rdi; jnz .-3; ret */
	static const unsigned char code[] = {0x48, 0xff, 0xcf, 0x75, 0xfb, 0xc3};
	void (*fn)(unsigned long);
	void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS,
		       -1, 0);

	if (p == MAP_FAILED)
		return 1;
	memcpy(p, code, sizeof(code));
	fn = (void (*)(unsigned long))p;
	while (now() < until)
		fn(10000000);
	munmap(p, 4096);
	return 0;
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "chain";
	double until;
	int rc = 0;

	if (argc > 2)
		seconds = atof(argv[2]);
	until = now() + seconds;
	if (!strcmp(mode, "chain")) {
		while (now() < until)
			sink += chain_a(1);
	} else if (!strcmp(mode, "short")) {
		until = now() + 0.05;
		while (now() < until)
			sink += chain_a(1);
	} else if (!strcmp(mode, "recurse")) {
		while (now() < until)
			sink += recurse(200, 1);
	} else if (!strcmp(mode, "qsort")) {
		while (now() < until) {
			sort_loop();
			copy_loop();
		}
	} else if (!strcmp(mode, "signal")) {
		struct sigaction sa = {.sa_handler = on_alarm};
		struct itimerval it = {{0, 2000}, {0, 2000}};

		seconds = until;
		sigaction(SIGALRM, &sa, NULL);
		setitimer(ITIMER_REAL, &it, NULL);
		sig_wait();
	} else if (!strcmp(mode, "dlopen") && argc > 3) {
		rc = dl_run(argv[3], until);
	} else if (!strcmp(mode, "churn") && argc > 3) {
		rc = churn(argv[3], until);
	} else if (!strcmp(mode, "jit")) {
		rc = jit(until);
	} else {
		fprintf(stderr, "usage: unw_work MODE [SECONDS] [LIB]\n");
		return 2;
	}
	return rc;
}
