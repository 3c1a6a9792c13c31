/*
 * sandbox - what the DWARF worker (symbolizer/worker_main.c) does to itself before it reads a
 * byte of an untrusted debug file: resource limits, no new privileges, file system access cut
 * down to the files it was given (Landlock), and no network or exec (seccomp, libseccomp).
 *
 * The limits are set by the worker itself, after exec, not by the parent between fork and exec:
 * an ASan build needs terabytes of address space to start, so only the worker knows whether an
 * RLIMIT_AS can apply to it. Everything here happens before the input is opened, so the
 * result is the same as if the parent had set it.
 *
 * Landlock is what keeps libdw from following a path taken from the file (a dwz
 * .gnu_debugaltlink, a split-DWARF dwo name): such an open() fails with EACCES at once, even
 * on a FIFO. Without Landlock (kernel < 5.13, or not enabled) the worker still runs, with
 * rlimits and seccomp, and says so in its answer.
 */
#ifndef FLEETSYM_SANDBOX_H
#define FLEETSYM_SANDBOX_H

#include <stdint.h>
#include <sys/types.h>

struct sandbox_opts {
	uint64_t max_as;    /* RLIMIT_AS in bytes; 0: none (also skipped in ASan builds) */
	uint64_t max_cpu_s; /* RLIMIT_CPU soft limit in seconds (hard = soft + 1); 0: none */
	uint64_t max_fsize; /* RLIMIT_FSIZE in bytes; 0: none */
	uint64_t max_files; /* RLIMIT_NOFILE; 0: none */
	/* Files the worker may read, NULL-terminated; borrowed. */
	const char *const *read_files;
	/* Files it may read and write in place (not create or remove), NULL-terminated. */
	const char *const *rw_files;
	const char *write_dir; /* the one dir it may create, write and rename files in */
	/* The process that started the worker; non-zero: the worker is killed (SIGKILL) when it
	 * ends, so a fleetsymd killed with SIGKILL leaves no worker running on, and
	 * sandbox_enter() fails with -ESRCH if it has ended already. */
	pid_t parent;
};

/* What sandbox_enter() could apply, for the worker's answer. */
struct sandbox_report {
	int landlock_abi; /* 0: file system not restricted */
	int seccomp;	  /* 1: network, exec and namespace calls denied */
	int as_limited;	  /* 0 in ASan builds */
};

/* Apply O to the calling process (single-threaded; irreversible). 0, or a negative errno when
 * a limit or filter that the kernel supports could not be applied. */
int sandbox_enter(const struct sandbox_opts *o, struct sandbox_report *rep)
    __attribute__((warn_unused_result));

#endif
