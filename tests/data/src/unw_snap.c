/*
 * unw_snap - records stack snapshots for the unwinder's replay test (fleetsym-agent --replay):
 * while call chains burn CPU (some through libc's qsort), a SIGPROF handler takes, up to N times, the
 * interrupted registers (rip, rsp, rbp from the ucontext), the stack bytes from rsp up (at most
 * 32 KiB) and, as the reference, glibc's backtrace() at the same moment (libgcc's unwinder
 * reading .eh_frame), then the executable mappings. Output (text, to FILE):
 *   snap RIP RSP RBP
 *   stack ADDR HEX            the bytes at [ADDR, ADDR + len)
 *   ref PC PC ...             backtrace() after the signal frame (the interrupted pc first)
 *   map START END OFFSET PATH (after all snapshots)
 */
#define _GNU_SOURCE /* REG_RIP & co */
#include <execinfo.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <ucontext.h>
#include <unistd.h>

#define NOINLINE  __attribute__((noinline))
#define STACK_MAX (32 << 10)

static volatile unsigned long sink;
static volatile int taken, want = 50;
static unsigned long stack_end;
static FILE *out;

NOINLINE unsigned long burn(unsigned long n)
{
	unsigned long x = n;

	for (unsigned long i = 0; i < 100000; i++)
		x = x * 6364136223846793005UL + i;
	return x;
}

NOINLINE unsigned long level3(unsigned long n)
{
	unsigned long r = burn(n + 3);

	sink += r;
	return r ^ n;
}

NOINLINE unsigned long level2(unsigned long n)
{
	unsigned long r = level3(n + 2);

	sink += r;
	return r ^ n;
}

NOINLINE int cmp_burn(const void *a, const void *b)
{
	unsigned long x = *(const unsigned long *)a, y = *(const unsigned long *)b;

	sink += burn(x & 7) & 1;
	return x < y ? -1 : x > y;
}

NOINLINE unsigned long sorted(unsigned long n)
{
	unsigned long v[16];

	for (int i = 0; i < 16; i++)
		v[i] = (n + (unsigned long)i * 2654435761u) % 1000;
	qsort(v, 16, sizeof(v[0]), cmp_burn); /* libc calling back: frames in libc too */
	return v[3];
}

NOINLINE unsigned long level1(unsigned long n)
{
	unsigned long r = n % 3 == 0 ? sorted(n) : n & 1 ? level2(n + 1) : level3(n);

	sink += r;
	return r ^ n;
}

/* The test's own process, interrupting its own burn loop: stdio is safe enough here. */
static void on_prof(int sig, siginfo_t *si, void *uc_)
{
	ucontext_t *uc = uc_;
	unsigned long rip = (unsigned long)uc->uc_mcontext.gregs[REG_RIP];
	unsigned long rsp = (unsigned long)uc->uc_mcontext.gregs[REG_RSP];
	unsigned long rbp = (unsigned long)uc->uc_mcontext.gregs[REG_RBP];
	unsigned long len = stack_end > rsp ? stack_end - rsp : 0;
	void *bt[128];
	int n, i;

	if (taken >= want)
		return;
	taken++;
	if (len > STACK_MAX)
		len = STACK_MAX;
	fprintf(out, "snap %lx %lx %lx\nstack %lx ", rip, rsp, rbp, rsp);
	for (unsigned long k = 0; k < len; k++)
		fprintf(out, "%02x", ((unsigned char *)rsp)[k]);
	n = backtrace(bt, 128);
	/* bt: on_prof, __restore_rt, then the interrupted frame (its exact pc) and its callers */
	for (i = 0; i < n && (unsigned long)bt[i] != rip; i++)
		;
	fprintf(out, "\nref");
	for (; i < n; i++)
		fprintf(out, " %lx", (unsigned long)bt[i]);
	fprintf(out, "\n");
}

int main(int argc, char **argv)
{
	struct sigaction sa = {.sa_sigaction = on_prof, .sa_flags = SA_SIGINFO | SA_RESTART};
	struct itimerval it = {{0, 3000}, {0, 3000}};
	char line[4096];
	void *warm[4];
	FILE *maps;

	if (argc < 2) {
		fprintf(stderr, "usage: unw_snap FILE [N]\n");
		return 2;
	}
	if (argc > 2)
		want = atoi(argv[2]);
	out = fopen(argv[1], "w");
	maps = fopen("/proc/self/maps", "r");
	if (!out || !maps)
		return 1;
	while (fgets(line, sizeof(line), maps)) {
		unsigned long s, e;

		if (strstr(line, "[stack]") && sscanf(line, "%lx-%lx", &s, &e) == 2)
			stack_end = e;
	}
	backtrace(warm, 4); /* loads libgcc_s now, not in the handler */
	sigaction(SIGPROF, &sa, NULL);
	setitimer(ITIMER_PROF, &it, NULL);
	for (unsigned long k = 0; taken < want; k++)
		sink += level1(k);
	it = (struct itimerval){0};
	setitimer(ITIMER_PROF, &it, NULL);
	rewind(maps);
	while (fgets(line, sizeof(line), maps)) {
		unsigned long s, e, off;
		char perms[8], path[2048];

		if (sscanf(line, "%lx-%lx %7s %lx %*s %*s %2047s", &s, &e, perms, &off, path) == 5 &&
		    perms[2] == 'x' && path[0] == '/')
			fprintf(out, "map %lx %lx %lx %s\n", s, e, off, path);
	}
	fclose(maps);
	return fclose(out) ? 1 : 0;
}
