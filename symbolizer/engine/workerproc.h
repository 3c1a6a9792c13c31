/*
 * workerproc - run one helper process to its end, or to a wall-clock deadline, and collect
 * what it said.
 *
 * The helper is started with posix_spawn (no work between fork and exec in a threaded
 * service), stdin on /dev/null, stdout and stderr on pipes, in a process group of its own. The
 * parent reads both pipes (each kept up to a cap) and watches a pidfd; when the deadline
 * passes the helper's group is killed with SIGKILL. Thread-safe: one call per helper.
 */
#ifndef FLEETSYM_WORKERPROC_H
#define FLEETSYM_WORKERPROC_H

#include <stddef.h>
#include <stdint.h>

#define WORKERPROC_OUT_MAX 8192 /* bytes of stdout kept */
#define WORKERPROC_ERR_MAX 1024 /* bytes of stderr kept (the last ones) */

enum workerproc_end {
	WORKERPROC_EXITED,   /* exit(code) */
	WORKERPROC_SIGNALED, /* killed by a signal it got (crash, rlimit) */
	WORKERPROC_TIMEOUT,  /* killed by us at the deadline */
};

struct workerproc_result {
	enum workerproc_end end;
	int code;			  /* exit code, or the signal */
	uint64_t maxrss_kb;		  /* its peak RSS */
	double seconds;			  /* wall clock */
	char out[WORKERPROC_OUT_MAX + 1]; /* stdout, NUL-terminated, truncated at the cap */
	int out_truncated;
	char err[WORKERPROC_ERR_MAX + 1]; /* the end of stderr, NUL-terminated */
};

/* Run ARGV[0] (a path) with ARGV, killed after TIMEOUT_MS, or within 0.2 s of *CANCEL (if not
 * NULL) becoming nonzero (then it ends as WORKERPROC_TIMEOUT too). 0 and *R filled (whatever
 * way it ended), or a negative errno when it could not be started or watched. */
int workerproc_run(const char *const argv[], int timeout_ms, const int *cancel,
		   struct workerproc_result *r) __attribute__((warn_unused_result));

#endif
