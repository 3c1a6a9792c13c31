/*
 * Tests of the harness itself (tests/t.h), each by running this binary again as a child with
 * T_HARNESS_CHILD set, so that the child's failure is the thing observed:
 * - a failed CHECK still runs the test's cleanups, last registered first: the child's server
 *   no longer listens and is gone, its thread is joined, its temp dir is removed;
 * - under CI=true a skip not in tests/skips.allowed counts as a failure; without CI, a skip;
 * - a name on the command line that matches no test is an error.
 */
#include "tests/t.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- the child's side: things to clean up, then a failed CHECK ---- */

static FILE *child_log;
static pid_t server_pid;
static char tmp_dir[64];
static int thread_stop[2] = {-1, -1};
static pthread_t thread;

static void log_line(const char *what)
{
	fprintf(child_log, "%s\n", what);
	fflush(child_log);
}

static void stop_server(void *unused)
{
	kill(server_pid, SIGKILL);
	waitpid(server_pid, NULL, 0);
	log_line("cleanup server");
}

static void remove_dir(void *unused)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp_dir);
	if (system(cmd) == 0)
		log_line("cleanup dir");
}

static void *waiter(void *unused)
{
	char c;

	while (read(thread_stop[0], &c, 1) < 0 && errno == EINTR)
		;
	return NULL;
}

static void join_thread(void *unused)
{
	close(thread_stop[1]);
	pthread_join(thread, NULL);
	close(thread_stop[0]);
	log_line("cleanup thread");
}

/* A loopback server in a child process; its port goes to the log. */
static void start_server(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	CHECK(fd >= 0);
	CHECK_INT(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	CHECK_INT(listen(fd, 8), 0);
	CHECK_INT(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	server_pid = fork();
	CHECK(server_pid >= 0);
	if (server_pid == 0) {
		int null = open("/dev/null", O_WRONLY);

		/* the parent test reads our stdout to its end: don't hold it open */
		dup2(null, 1);
		dup2(null, 2);
		for (;;) {
			int c = accept(fd, NULL, NULL);

			if (c >= 0)
				close(c);
		}
	}
	close(fd);
	t_defer(stop_server, NULL);
	fprintf(child_log, "port %d pid %d\n", ntohs(a.sin_port), (int)server_pid);
}

static void child_fails_with_resources(void)
{
	child_log = fopen(getenv("T_HARNESS_CHILD"), "w");
	CHECK(child_log);
	start_server();
	strcpy(tmp_dir, "/tmp/test_harness.XXXXXX");
	CHECK(mkdtemp(tmp_dir));
	t_defer(remove_dir, NULL);
	fprintf(child_log, "dir %s\n", tmp_dir);
	CHECK_INT(pipe(thread_stop), 0);
	CHECK_INT(pthread_create(&thread, NULL, waiter, NULL), 0);
	t_defer(join_thread, NULL);
	fflush(child_log);
	CHECK(1 + 1 == 3); /* the deliberate failure */
}

/* ---- the parent's side ---- */

static char log_path[64];

static void remove_log(void *unused)
{
	unlink(log_path);
}

/* Run this binary with ARGS (one shell word each) and ENV; its exit status; stdout in OUT. */
static int run_self(const char *env, const char *args, char *out, size_t cap)
{
	char cmd[512], exe[256];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	size_t len = 0;
	FILE *p;
	int st;

	CHECK(n > 0);
	exe[n] = '\0';
	snprintf(cmd, sizeof(cmd), "env %s '%s' %s 2>/dev/null", env, exe, args);
	p = popen(cmd, "r");
	CHECK(p);
	while (len < cap - 1 && fgets(out + len, (int)(cap - len), p))
		len += strlen(out + len);
	out[len] = '\0';
	st = pclose(p);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int port_listens(int port)
{
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_port = htons((uint16_t)port),
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int fd = socket(AF_INET, SOCK_STREAM, 0), ok;

	ok = connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
	close(fd);
	return ok;
}

TEST(failed_check_runs_cleanups)
{
	char env[128], out[4096], line[256], dir[64] = "";
	int port = 0, pid = 0, order = 0;
	struct stat st;
	FILE *f;

	if (getenv("T_HARNESS_CHILD")) {
		child_fails_with_resources();
		return;
	}
	strcpy(log_path, "/tmp/test_harness_log.XXXXXX");
	CHECK(mkstemp(log_path) >= 0);
	t_defer(remove_log, NULL);
	snprintf(env, sizeof(env), "CI= T_HARNESS_CHILD=%s", log_path);
	CHECK_INT(run_self(env, "failed_check_runs_cleanups", out, sizeof(out)), 1);
	CHECK(strstr(out, "FAIL failed_check_runs_cleanups\n"));
	CHECK(strstr(out, "0 passed, 1 failed, 0 skipped\n"));
	f = fopen(log_path, "r");
	CHECK(f);
	while (fgets(line, sizeof(line), f)) {
		sscanf(line, "port %d pid %d", &port, &pid);
		sscanf(line, "dir %63s", dir);
		/* cleanups run last registered first: thread, dir, server */
		if (!strcmp(line, "cleanup thread\n") && order == 0)
			order = 1;
		else if (!strcmp(line, "cleanup dir\n") && order == 1)
			order = 2;
		else if (!strcmp(line, "cleanup server\n") && order == 2)
			order = 3;
	}
	fclose(f);
	printf("  child: server on port %d (pid %d), dir %s; after its failed CHECK the server is "
	       "%s, the dir %s\n",
	       port, pid, dir, port_listens(port) ? "LISTENING" : "gone",
	       stat(dir, &st) == 0 ? "STILL THERE" : "removed");
	CHECK(port > 0 && pid > 0 && dir[0]);
	if (kill(pid, 0) == 0) {
		kill(pid, SIGKILL);
		T_FAIL_("the child's server %d outlived its test", pid);
	}
	CHECK(!port_listens(port));
	CHECK(stat(dir, &st) != 0 && errno == ENOENT);
	CHECK_INT(order, 3);
}

TEST(skip_under_ci_fails)
{
	char out[4096];

	if (getenv("T_HARNESS_CHILD"))
		SKIP("a deliberate skip");
	CHECK_INT(run_self("CI= T_HARNESS_CHILD=1", "skip_under_ci_fails", out, sizeof(out)), 0);
	CHECK(strstr(out, "0 passed, 0 failed, 1 skipped\n"));
	CHECK_INT(run_self("CI=true T_HARNESS_CHILD=1 FLEETSYM_TOP=/nonexistent",
			   "skip_under_ci_fails", out, sizeof(out)),
		  1);
	CHECK(strstr(out, "FAIL skip_under_ci_fails: skipped under CI"));
	CHECK(strstr(out, "0 passed, 1 failed, 0 skipped\n"));
}

TEST(unknown_name_is_an_error)
{
	char out[4096];

	CHECK_INT(run_self("CI=", "no_such_test", out, sizeof(out)), 2);
	CHECK_INT(run_self("CI=", "skip_under_ci_fails no_such_test", out, sizeof(out)), 2);
}
