/*
 * debugstore - the on-disk store of debug files, keyed by build ID, under <data-dir>/debuginfo.
 *
 * One entry per build ID: the ELF file (debug sections stored decompressed, so libdw never
 * inflates them again), a small JSON metadata file (source, quality, sizes, times), and the
 * symbol index beside them (<bid>.symidx, written by the symbolizer into the dir returned by
 * dstore_index_dir()). A file whose debug sections were inflated keeps its bytes as received in
 * <bid>.orig, which is what is served back (byte for byte, its SHA-256 is in the metadata).
 * Files: <bid>.debug, <bid>.orig, <bid>.meta.json, <bid>.symidx; each is installed by
 * writing a temp file under <data-dir>/tmp and rename()ing it, so a crash leaves either the old
 * entry or the new one, never half of one; leftover temp files are removed at open.
 *
 * Uploaded entries are the source of truth and are never evicted. Entries fetched from
 * debuginfod or copied from local debug dirs are a cache: when the total size of cached
 * entries passes the cap, the least recently used go first (their index with them).
 *
 * Thread-safe: one mutex around the in-memory table; file I/O of an install happens outside it.
 */
#ifndef FLEETSYM_DEBUGSTORE_H
#define FLEETSYM_DEBUGSTORE_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "lib/buildid.h"

struct dstore;

enum dstore_source {
	DSTORE_SRC_UPLOAD,
	DSTORE_SRC_LOCAL,
	DSTORE_SRC_DEBUGINFOD,
	DSTORE_SRC_PEER, /* another fleetsymd replica (--peer); cached like a debuginfod fetch */
};

/* Quality bits of a debug file, from its section table. */
enum {
	DSTORE_Q_SYMTAB = 1 << 0,  /* .symtab or .dynsym with function symbols */
	DSTORE_Q_DWARF = 1 << 1,   /* .debug_info */
	DSTORE_Q_LINES = 1 << 2,   /* .debug_line */
	DSTORE_Q_EXEC = 1 << 3,	   /* code is present (.text not NOBITS): servable as /executable */
	DSTORE_Q_PCLNTAB = 1 << 4, /* Go's .gopclntab: functions, lines and inline frames */
};

/* Rank for "better replaces worse": DWARF with lines > DWARF > Go pclntab > symtab only >
 * nothing. */
int dstore_quality_rank(unsigned quality);

/* The best of QUALITY in words ("DWARF with line tables", ..., "no symbols"); static. */
const char *dstore_quality_name(unsigned quality);

struct dstore_entry {
	char build_id[BUILDID_HEX_MAX];
	enum dstore_source source;
	unsigned quality;   /* DSTORE_Q_* */
	uint64_t size;	    /* bytes on disk (decompressed) */
	uint64_t orig_size; /* bytes as received */
	time_t added;
	time_t last_used;
	char path[4096]; /* the ELF file; valid while the entry is not evicted or replaced */
	/* the bytes as received, to serve: path itself, or, when the store inflated the file's
	 * debug sections, the compressed original kept beside it (<bid>.orig) */
	char served_path[4096];
};

struct dstore_opts {
	const char *data_dir; /* required; created if missing */
	uint64_t cache_size;  /* cap on non-upload entries in bytes; 0 = no cap */
	/* cap on the decompressed size of one file (fleetsymd: DSTORE_INFLATE_PER_UPLOAD times its
	 * upload limit); 0 or more than 4 GiB = 4 GiB. Whatever the cap, a file never inflates to
	 * more than DSTORE_INFLATE_RATIO times the bytes received. */
	uint64_t max_inflated;
	uint64_t reserve; /* free bytes an install must leave on the file system; 0 = none */
};

#define DSTORE_INFLATE_PER_UPLOAD 8
#define DSTORE_INFLATE_RATIO	  64

/* Open (and scan) the store. Sets *OUT, free with dstore_close(). */
int dstore_open(const struct dstore_opts *opts, struct dstore **out)
    __attribute__((warn_unused_result));
void dstore_close(struct dstore *s);

/* Directory for temp files of this store (same file system as the entries). Borrowed. */
const char *dstore_tmp_dir(const struct dstore *s);

/* opts.data_dir as given at open (the resolver keeps libdebuginfod's cache under it). Borrowed. */
const char *dstore_data_dir(const struct dstore *s);

/* Directory where symbol indexes of entries live (for symfile_opts.index_dir). Borrowed. */
const char *dstore_index_dir(const struct dstore *s);

/* Look up BUILD_ID; on success fills *E and marks the entry used. -ENOENT if absent,
 * -ERR_BADBUILDID if BUILD_ID is not 2-64 hex digits. */
int dstore_get(struct dstore *s, const char *build_id, struct dstore_entry *e);

/* Inspect the ELF file at PATH: -ERR_NOTELF / -ERR_BADELF / -ERR_NOBUILDID, else its build ID
 * and quality. Runs libelf here: for files of one's own (fleetsym-upload); see dstore_check(). */
int dstore_inspect(const char *path, char build_id[BUILDID_HEX_MAX], unsigned *quality)
    __attribute__((warn_unused_result));

/* What reading an ELF file found. */
struct dstore_elf_facts {
	char build_id[BUILDID_HEX_MAX];
	unsigned quality;  /* DSTORE_Q_* */
	int nzlib;	   /* sections compressed with zlib (what the store inflates) */
	uint64_t inflated; /* the bytes those sections declare inflated */
};

/* Read the ELF file at PATH into *OUT, as dstore_inspect() does. With DECOMPRESS, first rewrite
 * it in place with its zlib sections inflated, refused (-ERR_TOOBIG) when they declare more
 * than MAX_INFLATED bytes, then read the result. This is the libelf work an install does on
 * outside bytes; fleetsym-worker runs it for fleetsymd (dstore_set_elf_checker()). */
int dstore_elf_check(const char *path, int decompress, uint64_t max_inflated,
		     struct dstore_elf_facts *out) __attribute__((warn_unused_result));

/* Runs dstore_elf_check() with the same arguments somewhere else (a sandboxed process), with
 * its return values; CTX as given to dstore_set_elf_checker(). */
typedef int (*dstore_elf_checker)(void *ctx, const char *path, int decompress,
				  uint64_t max_inflated, struct dstore_elf_facts *out);

/* From now on S reads every file it installs (and dstore_check() reads) through CHECK, not in
 * this process. Set once, before S is shared between threads. */
void dstore_set_elf_checker(struct dstore *s, dstore_elf_checker check, void *ctx);

/* dstore_elf_check(PATH, 0, 0, OUT) as S runs it (through its checker, if it has one). */
int dstore_check(struct dstore *s, const char *path, struct dstore_elf_facts *out)
    __attribute__((warn_unused_result));

enum dstore_put_result {
	DSTORE_PUT_CREATED,   /* new entry */
	DSTORE_PUT_IDENTICAL, /* same bytes already stored: nothing changed */
	DSTORE_PUT_REPLACED,  /* replaced a worse entry (or forced) */
};

/*
 * Install the file at TMP_PATH (which must be under dstore_tmp_dir(); consumed: renamed or
 * unlinked in every case) as the entry for BUILD_ID from SOURCE. Checks it is ELF and carries
 * BUILD_ID (-ERR_NOTELF, -ERR_BADELF, -ERR_BUILDID_MISMATCH, -ERR_NOBUILDID). When an entry
 * exists: identical content (same size and SHA-256 as received) → DSTORE_PUT_IDENTICAL; the
 * new file is better (higher quality rank, or an upload of equal rank over a cached entry) or
 * FORCE → replaced (old index removed); otherwise -EEXIST and nothing changes. Identical bytes
 * uploaded over a cached entry make it an upload entry (never evicted); still IDENTICAL.
 * Compressed (zlib) debug sections are decompressed on the way in; -ERR_TOOBIG past the
 * inflation caps of dstore_opts (checked from the section headers before anything is inflated),
 * -ENOSPC when the inflated file, or the file at all, would leave less than opts.reserve free.
 * -EINVAL (and TMP_PATH is left alone) if TMP_PATH is not directly in dstore_tmp_dir(). Fills *E
 * and *RESULT when not NULL.
 */
int dstore_put(struct dstore *s, const char *build_id, const char *tmp_path,
	       enum dstore_source source, int force, enum dstore_put_result *result,
	       struct dstore_entry *e) __attribute__((warn_unused_result));

/* Counters for /metrics. bytes and cached_bytes count the ELF files (indexes not included);
 * cached_bytes is what the cap applies to. */
struct dstore_stats {
	uint64_t entries, bytes, cached_bytes, evictions, evicted_bytes;
};
void dstore_stats(struct dstore *s, struct dstore_stats *st);

const char *dstore_source_name(enum dstore_source src);

#endif
