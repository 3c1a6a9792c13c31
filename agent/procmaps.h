/*
 * procmaps - per-process caches of executable mappings (/proc/PID/maps) with the build IDs of
 * the mapped files, for user frames the kernel could not resolve to (build ID, file offset)
 * itself (it hands back a raw IP then).
 *
 * A process's maps are read on the first miss and again on a later miss (rate-limited), after
 * an exec notice, and kept PROCMAPS_KEEP_EXITED_NS after the process exits so that samples
 * still queued in the ring buffer resolve. Build IDs are read once per file (device, inode) by a
 * worker thread (up to 4 when earlier ones are stuck), so that a slow or hung file (FUSE, NFS)
 * never stalls sampling: a new file's frames wait for it 20 ms at most (none while the readers
 * are stuck), and go without a build ID until it comes. Files are opened as agent/mapfile.h says
 * (map_files, else the path inside the process's root, never a FIFO or another file). The vDSO's
 * build ID is the agent's own vDSO's. procmaps_free() leaves readers stuck for good behind after 2
 * s, so the agent still exits.
 */
#ifndef FLEETSYM_AGENT_PROCMAPS_H
#define FLEETSYM_AGENT_PROCMAPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PROCMAPS_KEEP_EXITED_NS (10ULL * 1000000000)
#define PROCMAPS_KEEP_IDLE_NS	(120ULL * 1000000000)

struct procmaps;

/* One executable mapping. */
struct pm_mapping {
	uint64_t start, end; /* [start, end) in the process */
	uint64_t offset;     /* file offset mapped at start */
	const char *path; /* the file, or "[vdso]", "[anon]", "[anon:NAME]", "/x (deleted)", ... */
	const char *build_id; /* lowercase hex, "" when unknown */
	bool special;	      /* not a regular file: vdso, anonymous (JIT), memfd, ... */
};

struct procmaps_stats {
	uint64_t reads;		/* /proc/PID/maps reads */
	uint64_t read_errors;	/* process gone, or not allowed */
	uint64_t buildid_reads; /* files asked of the build-ID reader thread */
	uint64_t buildid_late;	/* ... not answered in time for the frame that asked (unknown) */
	uint64_t buildid_queue_full;	/* not asked: the readers are stuck on slow files */
	uint64_t buildid_workers_added; /* readers started because all were stuck (at most 3) */
	uint64_t buildid_errors;
	uint64_t files_refused; /* not a regular file, or not the file mapped (a FIFO put in its
				 * place): never read */
	size_t procs;		/* processes cached now */
};

/* Sets *OUT (free with procmaps_free()). MAX_PROCS caps the cached processes (0: 16384). */
int procmaps_new(size_t max_procs, struct procmaps **out) __attribute__((warn_unused_result));
void procmaps_free(struct procmaps *pm);

/* The executable mapping of PID that contains IP, its build ID read if not yet known. NOW_NS is
 * CLOCK_MONOTONIC. *M is borrowed until the next call into PM. -ENOENT if none. */
int procmaps_lookup(struct procmaps *pm, uint32_t pid, uint64_t ip, uint64_t now_ns,
		    const struct pm_mapping **m);

/* Read PID's maps (if not cached) and the build IDs of its files, so that procmaps_path_of()
 * knows them. At most once per PID until it execs. */
void procmaps_learn(struct procmaps *pm, uint32_t pid, uint64_t now_ns);

/* A path seen for a file with build ID HEX, or NULL. Borrowed until the next call into PM. */
const char *procmaps_path_of(struct procmaps *pm, const char *hex);

/* PID exec'd: its cached maps are stale. */
void procmaps_exec(struct procmaps *pm, uint32_t pid);
/* PID exited at NOW_NS: forget it PROCMAPS_KEEP_EXITED_NS later. */
void procmaps_exit(struct procmaps *pm, uint32_t pid, uint64_t now_ns);
/* Drop processes that exited long enough ago or were not looked up for a long time. */
void procmaps_expire(struct procmaps *pm, uint64_t now_ns);

void procmaps_get_stats(const struct procmaps *pm, struct procmaps_stats *st);

#endif
