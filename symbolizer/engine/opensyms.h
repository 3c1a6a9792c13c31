/*
 * opensyms - the open symbol indexes of the build IDs the service is asked about, shared by all
 * request threads.
 *
 * Debug files are other people's bytes: fleetsymd never opens them with libdw or libelf. The
 * first request for a build ID queues a job; a builder thread starts fleetsym-worker
 * (symbolizer/worker_main.c: rlimits, Landlock, seccomp) under a wall-clock deadline, and the
 * worker writes the index into a private temp dir and answers the file's PT_LOAD maps on
 * stdout. The service checks the answer, opens the index through symindex's verifying loader,
 * renames it into the index dir and switches the entry to it with one atomic store. A dwz
 * file's alt file is looked up by the build ID its .gnu_debugaltlink names, through
 * opts->find_alt (the store), and handed to the worker as a path of the store's; the path the
 * file names is never opened.
 *
 * A worker that crashes, hangs, runs out of memory or CPU, or calls the file unusable marks
 * that build ID bad, with the reason: until the store's file for it changes (an upload) or
 * the service restarts it is answered at once as bad and no worker runs for it again.
 *
 * The entry remembers which store entry it was built from (path, size, time, quality); when
 * the store's entry changed the stale entry is dropped, and so is any index it published. An
 * index can never be published for a file that is no longer the store's: publishing and
 * dropping hold the same lock.
 *
 * Thread-safe.
 */
#ifndef FLEETSYM_OPENSYMS_H
#define FLEETSYM_OPENSYMS_H

#include <stddef.h>
#include <stdint.h>

#include "cache/debugstore.h"
#include "cache/symindex.h"
#include "symbolizer/engine/loadmap.h"
#include "symbolizer/engine/loadrebuild.h"

struct opensyms;
struct opensyms_file;

struct opensyms_opts {
	const char *index_dir; /* where published indexes live; required */
	const char *tmp_dir;   /* private build dirs go here (same file system); required */
	size_t max_entries;    /* open indexes kept; 0 = 64. Entries in use are never closed */
	int build_threads;     /* concurrent workers; 0 = 2 */
	/* fleetsym-worker; NULL: beside the running program, else ../bin/ from it. Borrowed. */
	const char *worker;
	int worker_timeout_ms;	/* wall clock per build ID; 0 = 300 s */
	uint64_t worker_memory; /* its address space limit; 0 = 4 GiB */
	uint64_t worker_fsize;	/* its largest index file; 0 = 2 GiB */
	int wait_ms;		/* how long opensyms_get() waits for a build; 0 = 2 s, <0 none */
	/* The store's file for BUILD_ID (a dwz alt file): 0 and its path in PATH, or -ENOENT.
	 * Called from builder threads. NULL: alt files are not looked up. */
	int (*find_alt)(void *ctx, const char *build_id, char *path, size_t len);
	void *find_alt_ctx;
};

int opensyms_new(const struct opensyms_opts *opts, struct opensyms **out)
    __attribute__((warn_unused_result));

/* Stops the builders (running workers are killed), then closes every entry. No
 * opensyms_file may be held by a caller any more. */
/* Stop C's index builders (joined; workers in flight, index builds and ELF checks, are
 * killed within 0.2 s) without freeing C: what still calls opensyms_check_elf() may finish
 * first. opensyms_free() stops it too. */
void opensyms_stop(struct opensyms *c);
void opensyms_free(struct opensyms *c);

/* The index for store entry E (its path and build ID), built by a worker on first use. Waits
 * for a running build at most opts->wait_ms. Sets *OUT (release with opensyms_put()) and
 * returns 0; else *REASON (static) says why: -EAGAIN the index is still being built,
 * -ERR_BADDEBUG the build ID is marked bad, or another error starting the build. */
int opensyms_get(struct opensyms *c, const struct dstore_entry *e, struct opensyms_file **out,
		 const char **reason) __attribute__((warn_unused_result));
void opensyms_put(struct opensyms *c, struct opensyms_file *f);

/* Start building E's index if nobody has (no wait): a caller about to ask for many build IDs
 * lets the workers run side by side rather than one opensyms_get() wait after another. */
void opensyms_prefetch(struct opensyms *c, const struct dstore_entry *e);

/* Close the entry of BUILD_ID (its file was replaced by an upload), remove an index it
 * published and forget a bad mark. Callers holding it keep a working (old) copy until they
 * put it. */
void opensyms_drop(struct opensyms *c, const char *build_id);

/* A dstore_elf_checker (cache/debugstore.h) for the debug store: dstore_elf_check() run in a
 * fleetsym-worker with the limits of C's workers (memory, CPU seconds, its deadline; the file it
 * may read, or read and write when it inflates it in place, and nothing else), so that libelf
 * never reads outside bytes inside fleetsymd. A worker that crashes, runs out of memory or past
 * its deadline makes the file -ERR_BADELF. CTX is the struct opensyms. Logs event=elf_check. */
int opensyms_check_elf(void *ctx, const char *path, int decompress, uint64_t max_inflated,
		       struct dstore_elf_facts *out) __attribute__((warn_unused_result));

/* Called once per address with its frames, innermost first; FRAMES and their strings are
 * valid only during the call. A nonzero return stops the batch and is returned by
 * opensyms_lookup_batch(). */
typedef int (*opensyms_emit_fn)(void *ctx, size_t i, uint64_t addr, const struct sym_frame *frames,
				int n);

/* Resolve ADDRS[0..N) (ELF virtual addresses) in order, from the index. 0 or the emitter's
 * return. */
int opensyms_lookup_batch(struct opensyms *c, struct opensyms_file *f, const uint64_t *addrs,
			  size_t n, opensyms_emit_fn emit, void *ctx);

/* The file's offset → address map (its PT_LOAD headers, as the worker read them). Borrowed
 * until opensyms_put(). */
const struct loadmap *opensyms_file_loadmap(const struct opensyms_file *f);

/* The same map rebuilt where objcopy zeroed it (loadrebuild.h), and how. Borrowed likewise. */
const struct loadmap *opensyms_file_rebuilt(const struct opensyms_file *f,
					    enum loadrebuild_how *how);

/* 1 and *REASON (static) when BUILD_ID is marked bad, else 0. */
int opensyms_bad(struct opensyms *c, const char *build_id, const char **reason);

#define OPENSYMS_BUILD_BUCKETS 12
extern const double opensyms_build_bounds[OPENSYMS_BUILD_BUCKETS - 1];

struct opensyms_stats {
	uint64_t hits, misses, evictions, open, indexed;
	uint64_t index_builds, index_failures, build_usec_sum;
	uint64_t bad;					/* build IDs marked bad now */
	uint64_t build_buckets[OPENSYMS_BUILD_BUCKETS]; /* per bucket, not cumulative */
};
void opensyms_stats(struct opensyms *c, struct opensyms_stats *st);

#endif
