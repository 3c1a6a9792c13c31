/*
 * Unit tests of symbolizer/engine/sandbox and workerproc: a child that entered the sandbox
 * reads the file it was given and writes in its dir, but cannot open any other path (a FIFO
 * among them: refused at once, not blocked), create a socket, or exec; its rlimits hold. And
 * workerproc kills a helper at its deadline and reports a crash by its signal.
 */
#include "tests/t.h"

#include "symbolizer/engine/sandbox.h"
#include "symbolizer/engine/workerproc.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char dir[64], allowed[128], other[128], fifo[128], outdir[128];

static void setup(void)
{
	FILE *f;

	snprintf(dir, sizeof(dir), "/tmp/test_sandbox.XXXXXX");
	CHECK(mkdtemp(dir));
	snprintf(allowed, sizeof(allowed), "%s/allowed", dir);
	snprintf(other, sizeof(other), "%s/other", dir);
	snprintf(fifo, sizeof(fifo), "%s/fifo", dir);
	snprintf(outdir, sizeof(outdir), "%s/out", dir);
	CHECK((f = fopen(allowed, "w")) != NULL);
	fputs("yes\n", f);
	fclose(f);
	CHECK((f = fopen(other, "w")) != NULL);
	fputs("no\n", f);
	fclose(f);
	CHECK_INT(mkfifo(fifo, 0600), 0);
	CHECK_INT(mkdir(outdir, 0700), 0);
}

static void cleanup(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
}

/* Bits the child sets for each expectation that held; all set = exit 0. */
enum {
	R_READ_ALLOWED = 1,
	R_OTHER_REFUSED = 2,
	R_FIFO_REFUSED = 4,
	R_WRITE_DIR = 8,
	R_NO_SOCKET = 16,
	R_NO_EXEC = 32,
	R_LIMITS = 64,
	R_ALL = 127
};

static int child(void)
{
	const char *files[] = {allowed, NULL};
	struct sandbox_opts o = {.max_cpu_s = 5,
				 .max_fsize = 1 << 20,
				 .max_files = 32,
				 .read_files = files,
				 .write_dir = outdir};
	struct sandbox_report rep;
	struct rlimit rl;
	char path[160];
	int ok = 0, fd, landlock;

	if (sandbox_enter(&o, &rep) != 0)
		return 100;
	landlock = rep.landlock_abi > 0;
	fd = open(allowed, O_RDONLY);
	ok |= fd >= 0 ? R_READ_ALLOWED : 0;
	if (fd >= 0)
		close(fd);
	fd = open(other, O_RDONLY);
	ok |= (fd < 0 && errno == EACCES) || !landlock ? R_OTHER_REFUSED : 0;
	if (fd >= 0)
		close(fd);
	/* without Landlock this open would block for good: only tried with it */
	if (landlock) {
		fd = open(fifo, O_RDONLY);
		ok |= fd < 0 && errno == EACCES ? R_FIFO_REFUSED : 0;
	} else {
		ok |= R_FIFO_REFUSED;
	}
	snprintf(path, sizeof(path), "%s/x", outdir);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	ok |= fd >= 0 && write(fd, "ok", 2) == 2 ? R_WRITE_DIR : 0;
	if (fd >= 0)
		close(fd);
	ok |= socket(AF_INET, SOCK_STREAM, 0) < 0 && errno == EACCES ? R_NO_SOCKET : 0;
	execl("/bin/true", "true", (char *)NULL);
	ok |= errno == EACCES ? R_NO_EXEC : 0;
	ok |= getrlimit(RLIMIT_CPU, &rl) == 0 && rl.rlim_cur == 5 &&
		      getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur == 32
		  ? R_LIMITS
		  : 0;
	return ok == R_ALL ? 0 : ok;
}

TEST(sandbox_confines_a_child)
{
	pid_t pid;
	int st = 0;

	setup();
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0)
		_exit(child());
	CHECK_INT(waitpid(pid, &st, 0), pid);
	CHECK(WIFEXITED(st));
	/* the bits that did NOT hold, if any, are R_ALL minus the exit code */
	CHECK_INT(WEXITSTATUS(st), 0);
	cleanup();
}

TEST(workerproc_deadline_and_signals)
{
	const char *sleeper[] = {"/bin/sh", "-c", "echo started; exec sleep 30", NULL};
	const char *crasher[] = {"/bin/sh", "-c", "echo bye >&2; kill -SEGV $$", NULL};
	const char *talker[] = {"/bin/sh", "-c", "echo one; echo two; exit 3", NULL};
	struct workerproc_result *r = calloc(1, sizeof(*r));

	CHECK(r);
	CHECK_INT(workerproc_run(sleeper, 300, NULL, r), 0);
	CHECK_INT(r->end, WORKERPROC_TIMEOUT);
	CHECK(r->seconds < 10);
	CHECK(strcmp(r->out, "started\n") == 0);
	CHECK_INT(workerproc_run(crasher, 10000, NULL, r), 0);
	CHECK_INT(r->end, WORKERPROC_SIGNALED);
	CHECK_INT(r->code, SIGSEGV);
	CHECK(strcmp(r->err, "bye\n") == 0);
	CHECK_INT(workerproc_run(talker, 10000, NULL, r), 0);
	CHECK_INT(r->end, WORKERPROC_EXITED);
	CHECK_INT(r->code, 3);
	CHECK(strcmp(r->out, "one\ntwo\n") == 0);
	free(r);
}

/* In a subreaper A: B starts C, C enters the sandbox naming B its parent, B exits: C must
 * be killed at once (a fleetsymd killed with SIGKILL leaves no worker behind). And a process
 * naming a parent it does not have gets -ESRCH. Exit code 0 when both hold. */
static int parent_death(void)
{
	pid_t b, c = -1, d;
	int st = 0, cpipe[2], ready[2];

	if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0 || pipe(cpipe) < 0 || pipe(ready) < 0)
		return 10;
	alarm(60); /* bound on everything below */
	b = fork();
	if (b == 0) {
		pid_t me = getpid();
		char r;

		c = fork();
		if (c == 0) {
			struct sandbox_opts o = {.parent = me};
			struct sandbox_report rep;

			if (sandbox_enter(&o, &rep) != 0)
				_exit(20);
			if (write(ready[1], "r", 1) != 1)
				_exit(21);
			sleep(50); /* killed long before: B is gone */
			_exit(22);
		}
		if (c < 0 || write(cpipe[1], &c, sizeof(c)) != sizeof(c))
			_exit(23);
		if (read(ready[0], &r, 1) != 1) /* C is in the sandbox */
			_exit(24);
		_exit(0);
	}
	if (b < 0 || waitpid(b, &st, 0) != b || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
		return 11;
	if (read(cpipe[0], &c, sizeof(c)) != sizeof(c))
		return 12;
	/* C is ours now (subreaper): it must have been killed with SIGKILL */
	if (waitpid(c, &st, 0) != c || !WIFSIGNALED(st) || WTERMSIG(st) != SIGKILL)
		return 13;
	d = fork();
	if (d == 0) {
		struct sandbox_opts o = {.parent = getppid() + 1000000};
		struct sandbox_report rep;

		_exit(sandbox_enter(&o, &rep) == -ESRCH ? 0 : 30);
	}
	if (d < 0 || waitpid(d, &st, 0) != d || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
		return 14;
	return 0;
}

TEST(worker_dies_with_its_parent)
{
	pid_t a = fork();
	int st = 0;

	CHECK(a >= 0);
	if (a == 0)
		_exit(parent_death());
	CHECK_INT(waitpid(a, &st, 0), a);
	CHECK(WIFEXITED(st));
	CHECK_INT(WEXITSTATUS(st), 0);
}
