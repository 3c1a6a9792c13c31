/*
 * bpfprof - loads bpf/profile.bpf.c (through its skeleton), opens one CPU-clock perf event per
 * online CPU in frequency mode, attaches the program to each, and hands every ring-buffer
 * record to a callback when polled.
 *
 * When loading fails it logs what is missing (privileges, BTF, kernel version, the sample rate
 * the kernel allows), once, through log_msg().
 */
#ifndef FLEETSYM_AGENT_BPFPROF_H
#define FLEETSYM_AGENT_BPFPROF_H

#include "bpf/profile.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct bpfprof;

/* Called for each record (a struct prof_hdr first; see bpf/profile.h). DATA is borrowed for
 * the call. A negative return stops this poll and is returned by bpfprof_poll(). */
typedef int (*bpfprof_record_fn)(void *ctx, const void *data, size_t size);

/* Zero-init means defaults. */
struct bpfprof_opts {
	unsigned int frequency; /* samples per second per CPU; 0: 19 */
	uint32_t pid;		/* only this process (thread group); 0: all */
	int cgroup_fd;		/* > 0: only tasks in this cgroup v2 directory or below */
	bool no_kernel;		/* skip kernel stacks */
	bool no_notices;	/* skip the exec/exit tracepoints */
	uint32_t unwind_rows;	/* > 0: load the table unwinder with room for this many rows;
				 * falls back to frame pointers if the kernel refuses it */
};

/* Load, attach and start sampling. Sets *OUT (stop and free with bpfprof_close()). */
int bpfprof_open(const struct bpfprof_opts *opts, bpfprof_record_fn fn, void *ctx,
		 struct bpfprof **out) __attribute__((warn_unused_result));
void bpfprof_close(struct bpfprof *p);

/* Wait up to TIMEOUT_MS (less if the ring buffer fills up) and consume every record waiting.
 * Returns the number of records, or a negative errno (the callback's, or the ring buffer's). */
int bpfprof_poll(struct bpfprof *p, int timeout_ms);

/* The counters summed over all CPUs. */
int bpfprof_counters(struct bpfprof *p, uint64_t out[PROF_CNT_MAX]);

/* CPUs sampled, and the ring buffer's size in bytes. */
int bpfprof_ncpus(const struct bpfprof *p);
size_t bpfprof_ring_size(const struct bpfprof *p);

/* The unwinder's maps (bpf/profile.h: unw_rows, an mmap-able array of struct unw_row, and
 * unw_files). Borrowed until bpfprof_close(). -ENOTSUP when the unwinder is not loaded. */
int bpfprof_unwind_maps(const struct bpfprof *p, int *rows_fd, int *files_fd);

/* Name of counter I ("ringbuf_full", ...). */
const char *bpfprof_counter_name(int i);

#endif
