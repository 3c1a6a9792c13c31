/*
 * agent_work - workloads for the agent tests (tests/run-agent-*.sh), built at test time with
 * -O2 -g and frame pointers (the agent unwinds user stacks the way perf -g does).
 *
 *   agent_work burn SECS            burn CPU in burn_hot(), called through the inlined drive()
 *   agent_work fork SECS CHILD_MS   fork children one after another, each burning CHILD_MS in
 *                                   burn_hot() and exiting (short-lived processes)
 *   agent_work sys SECS             syscall-heavy: read /dev/zero, write /dev/null in sys_hot()
 *   agent_work vdso SECS            clock_gettime() in a loop: time spent in the vDSO
 *   agent_work jit SECS             a spin loop in anonymous executable memory (like JIT code)
 *
 * Every loop ends after SECS whatever happens.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static inline __attribute__((always_inline)) uint64_t mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 29;
	return x;
}

/* Not inlined, so that burn_hot() is no leaf function: GCC sets up no frame pointer in leaf
 * functions even with -fno-omit-frame-pointer, and its caller would vanish from stacks. */
__attribute__((noinline)) uint64_t sink(uint64_t x)
{
	__asm__ volatile("" : "+r"(x));
	return x;
}

/* The hot function: nearly all samples of "burn" land here (in the inlined mix()). */
__attribute__((noinline)) uint64_t burn_hot(uint64_t n)
{
	uint64_t acc = 1;

	for (uint64_t i = 0; i < n; i++)
		acc = mix(acc + i);
	return sink(acc) ^ n; /* no tail call: the frame must exist */
}

/* The inlined helper through which burn_hot() is reached. */
static inline __attribute__((always_inline)) uint64_t drive(double secs)
{
	double end = now_s() + secs;
	uint64_t sum = 0;

	do
		sum += burn_hot(200000);
	while (now_s() < end);
	return sum;
}

__attribute__((noinline)) static int sys_hot(double secs)
{
	static char buf[65536];
	int in = open("/dev/zero", O_RDONLY), out = open("/dev/null", O_WRONLY);
	double end = now_s() + secs;

	if (in < 0 || out < 0)
		return 1;
	do {
		if (read(in, buf, sizeof(buf)) != sizeof(buf) || write(out, buf, 1) != 1)
			return 1;
	} while (now_s() < end);
	close(in);
	close(out);
	return 0;
}

__attribute__((noinline)) static int vdso_hot(double secs)
{
	struct timespec ts;
	double end = now_s() + secs;
	long n = 0;

	do
		for (int i = 0; i < 1000; i++, n++)
			clock_gettime(CLOCK_MONOTONIC, &ts);
	while (now_s() < end);
	return n < 0;
}

/* x86-64: mov rcx, rdi; 1: dec rcx; jnz 1b; ret */
static const unsigned char spin_code[] = {0x48, 0x89, 0xf9, 0x48, 0xff, 0xc9, 0x75, 0xfb, 0xc3};

__attribute__((noinline)) static int jit_hot(double secs)
{
	void (*spin)(long);
	double end = now_s() + secs;
	void *mem = mmap(NULL, 4096, PROT_READ | PROT_WRITE | PROT_EXEC,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (mem == MAP_FAILED)
		return 1;
	memcpy(mem, spin_code, sizeof(spin_code));
	spin = (void (*)(long))mem;
	do
		spin(1000000);
	while (now_s() < end);
	return 0;
}

static int fork_many(double secs, double child_s)
{
	double end = now_s() + secs;
	int n = 0;

	while (now_s() < end && n < 100000) {
		pid_t pid = fork();

		if (pid < 0)
			return 1;
		if (pid == 0)
			_exit((int)(drive(child_s) & 1));
		waitpid(pid, NULL, 0);
		fprintf(stderr, "%d\n", (int)pid); /* the children's pids, for the test */
		n++;
	}
	printf("%d children\n", n);
	return 0;
}

int main(int argc, char **argv)
{
	double secs = argc > 2 ? atof(argv[2]) : 3;

	if (argc < 2 || secs <= 0 || secs > 120)
		return 2;
	if (!strcmp(argv[1], "burn"))
		return (int)(drive(secs) & 1) * 0;
	if (!strcmp(argv[1], "fork"))
		return fork_many(secs, (argc > 3 ? atof(argv[3]) : 50) / 1000);
	if (!strcmp(argv[1], "sys"))
		return sys_hot(secs);
	if (!strcmp(argv[1], "vdso"))
		return vdso_hot(secs);
	if (!strcmp(argv[1], "jit"))
		return jit_hot(secs);
	return 2;
}
