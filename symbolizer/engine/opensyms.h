/*
 * opensyms - the open symbols of the build IDs the service is asked about, shared by all
 * request threads.
 *
 * One refcounted entry per build ID, opened from the debug store's file on first use. An
 * entry starts "cold": lookups go to DWARF through a symfile that is not thread-safe, so they
 * take the entry's mutex. After the first cold use a background thread builds the symbol
 * index from a second, private symfile (so cold lookups go on meanwhile), writes it into a
 * private temp dir, and publishes it: rename into the store's index dir, then one atomic
 * pointer swap. From then on lookups read the mmap'd index with no lock at all.
 *
 * The entry remembers which store entry it was opened from (path, size, time, quality); when
 * the store's entry changed (a better upload replaced it) the stale entry is dropped, and so
 * is any index it published, before the new file is opened. An index can never be published
 * for a file that is no longer the store's: publishing and dropping hold the same lock.
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

struct opensyms;
struct opensyms_file;

struct opensyms_opts {
	/* Debug dirs for symfile (separate debug files, dwz alt files); NULL-terminated, NULL
	 * = symfile's default. Borrowed for the cache's life. */
	const char *const *debug_dirs;
	const char *index_dir; /* where published indexes live; NULL: never build one */
	const char *tmp_dir;   /* private build dirs go here (same file system); required
				  with index_dir */
	size_t max_entries;    /* open files kept; 0 = 64. Entries in use are never closed */
	int build_threads;     /* background index builders; 0 = 1 */
};

int opensyms_new(const struct opensyms_opts *opts, struct opensyms **out)
    __attribute__((warn_unused_result));

/* Stops the builders (a running build finishes first), then closes every entry. No
 * opensyms_file may be held by a caller any more. */
void opensyms_free(struct opensyms *c);

/* The open symbols for store entry E (its path and build ID). Opens the file on a miss.
 * Sets *OUT (release with opensyms_put()). Errors as symfile_open(). */
int opensyms_get(struct opensyms *c, const struct dstore_entry *e, struct opensyms_file **out)
    __attribute__((warn_unused_result));
void opensyms_put(struct opensyms *c, struct opensyms_file *f);

/* Close the entry of BUILD_ID (its file was replaced by an upload) and remove an index it
 * published. Callers holding it keep a working (old) copy until they put it. */
void opensyms_drop(struct opensyms *c, const char *build_id);

/* Called once per address with its frames, innermost first; FRAMES and their strings are
 * valid only during the call (a cold file's lock is held). A nonzero return stops the batch
 * and is returned by opensyms_lookup_batch(). */
typedef int (*opensyms_emit_fn)(void *ctx, size_t i, uint64_t addr, const struct sym_frame *frames,
				int n);

/* Resolve ADDRS[0..N) (ELF virtual addresses) in order. 0 or the emitter's return. The first
 * call on a cold file queues its index build. */
int opensyms_lookup_batch(struct opensyms *c, struct opensyms_file *f, const uint64_t *addrs,
			  size_t n, opensyms_emit_fn emit, void *ctx);

/* The file's offset → address map (its PT_LOAD headers). Borrowed until opensyms_put(). */
const struct loadmap *opensyms_file_loadmap(const struct opensyms_file *f);

int opensyms_file_is_indexed(const struct opensyms_file *f);

/* Wait until F is indexed or its build failed, at most TIMEOUT_MS; 1 when indexed. For
 * tests and benchmarks. */
int opensyms_wait_indexed(struct opensyms *c, struct opensyms_file *f, int timeout_ms);

#define OPENSYMS_BUILD_BUCKETS 12
extern const double opensyms_build_bounds[OPENSYMS_BUILD_BUCKETS - 1];

struct opensyms_stats {
	uint64_t hits, misses, evictions, open, indexed;
	uint64_t index_builds, index_failures, build_usec_sum;
	uint64_t build_buckets[OPENSYMS_BUILD_BUCKETS]; /* per bucket, not cumulative */
};
void opensyms_stats(struct opensyms *c, struct opensyms_stats *st);

#endif
