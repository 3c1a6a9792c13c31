/*
 * workerproc - posix_spawn, then one poll loop over the helper's stdout, stderr and pidfd
 * until the pidfd says it ended or the deadline passes. wait4() gives the status and the peak
 * RSS. Pipes are read non-blocking and drained after the end, so a helper that leaves a child
 * holding them cannot stall us.
 */
#include "symbolizer/engine/workerproc.h"

#include "lib/clock.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static int spawn(const char *const argv[], int out_w, int err_w, pid_t *pid)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	sigset_t none, def;
	int err;

	sigemptyset(&none);
	sigfillset(&def);
	posix_spawn_file_actions_init(&fa);
	posix_spawnattr_init(&at);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, out_w, 1);
	posix_spawn_file_actions_adddup2(&fa, err_w, 2);
	/* the service blocks SIGTERM/SIGINT for sigwait and may ignore SIGPIPE: not the helper */
	posix_spawnattr_setsigmask(&at, &none);
	posix_spawnattr_setsigdefault(&at, &def);
	posix_spawnattr_setpgroup(&at, 0);
	posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF |
					  POSIX_SPAWN_SETPGROUP);
	err = -posix_spawn(pid, argv[0], &fa, &at, (char *const *)argv, environ);
	posix_spawnattr_destroy(&at);
	posix_spawn_file_actions_destroy(&fa);
	return err;
}

/* Read what FD has now into BUF (LEN used of CAP). KEEP_END: keep the last bytes rather than
 * the first. Returns 0 at EOF, 1 when more may come. */
static int drain(int fd, char *buf, size_t *len, size_t cap, int keep_end, int *truncated)
{
	char tmp[4096];

	for (;;) {
		ssize_t n = read(fd, tmp, sizeof(tmp));
		size_t k;

		if (n == 0)
			return 0;
		if (n < 0)
			return errno == EINTR ? 1 : errno == EAGAIN ? 1 : 0;
		k = (size_t)n;
		if (keep_end && k >= cap) {
			memcpy(buf, tmp + k - cap, cap);
			*len = cap;
		} else if (keep_end && *len + k > cap) {
			size_t drop = *len + k - cap;

			memmove(buf, buf + drop, *len - drop);
			memcpy(buf + *len - drop, tmp, k);
			*len = cap;
		} else {
			size_t room = cap - *len;

			if (k > room) {
				k = room;
				*truncated = 1;
			}
			memcpy(buf + *len, tmp, k);
			*len += k;
		}
	}
}

static int make_pipe(int p[2])
{
	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	fcntl(p[0], F_SETFL, O_NONBLOCK);
	return 0;
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

static void watch(pid_t pid, int pidfd, int outfd, int errfd, int timeout_ms, const int *cancel,
		  struct workerproc_result *r)
{
	int64_t deadline = clock_mono_ms() + timeout_ms;
	size_t olen = 0, elen = 0;
	int ended = 0, dummy = 0;

	while (!ended) {
		struct pollfd p[3] = {{.fd = pidfd, .events = POLLIN},
				      {.fd = outfd, .events = POLLIN},
				      {.fd = errfd, .events = POLLIN}};
		int64_t left = deadline - clock_mono_ms();

		if (left <= 0 || (cancel && __atomic_load_n(cancel, __ATOMIC_ACQUIRE))) {
			killpg(pid, SIGKILL);
			kill(pid, SIGKILL);
			r->end = WORKERPROC_TIMEOUT;
			break;
		}
		if (poll(p, 3, left > 200 ? 200 : (int)left) < 0 && errno != EINTR)
			break;
		if (p[1].revents &&
		    !drain(outfd, r->out, &olen, WORKERPROC_OUT_MAX, 0, &r->out_truncated))
			outfd = -1;
		if (p[2].revents && !drain(errfd, r->err, &elen, WORKERPROC_ERR_MAX, 1, &dummy))
			errfd = -1;
		ended = p[0].revents != 0;
	}
	if (outfd >= 0)
		drain(outfd, r->out, &olen, WORKERPROC_OUT_MAX, 0, &r->out_truncated);
	if (errfd >= 0)
		drain(errfd, r->err, &elen, WORKERPROC_ERR_MAX, 1, &dummy);
	r->out[olen] = '\0';
	r->err[elen] = '\0';
}

int workerproc_run(const char *const argv[], int timeout_ms, const int *cancel,
		   struct workerproc_result *r)
{
	int outp[2] = {-1, -1}, errp[2] = {-1, -1}, pidfd = -1, st = 0, err;
	double t0 = clock_mono_s();
	struct rusage ru = {0};
	pid_t pid = -1;

	memset(r, 0, sizeof(*r));
	err = make_pipe(outp);
	if (!err)
		err = make_pipe(errp);
	if (!err)
		err = spawn(argv, outp[1], errp[1], &pid);
	close_fd(&outp[1]);
	close_fd(&errp[1]);
	if (err)
		goto out;
	pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (pidfd < 0) {
		err = -errno;
		killpg(pid, SIGKILL);
		kill(pid, SIGKILL);
	} else {
		watch(pid, pidfd, outp[0], errp[0], timeout_ms, cancel, r);
	}
	/* whatever it left behind in its group; the group lives while the zombie is unreaped */
	killpg(pid, SIGKILL);
	while (wait4(pid, &st, 0, &ru) < 0 && errno == EINTR)
		;
	r->maxrss_kb = (uint64_t)ru.ru_maxrss;
	r->seconds = clock_mono_s() - t0;
	if (r->end != WORKERPROC_TIMEOUT) {
		r->end = WIFSIGNALED(st) ? WORKERPROC_SIGNALED : WORKERPROC_EXITED;
		r->code = WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st);
	}
out:
	close_fd(&pidfd);
	close_fd(&outp[0]);
	close_fd(&errp[0]);
	return err;
}
