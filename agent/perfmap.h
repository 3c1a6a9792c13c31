/*
 * perfmap - names for JIT-compiled code from the perf map files that JITs write
 * (/tmp/perf-PID.map: one "START SIZE name" line per function, hex; Node.js with
 * --perf-basic-prof, the JVM with perf-map-agent, .NET, LuaJIT, ...), read inside the
 * process's own root (its mount namespace) and under its own pid there.
 *
 * One table per process, kept while it lives (at most PERFMAP_MAX_PROCS, least recently used
 * dropped first). A file is read again only when it has grown, and at most once a second per
 * process; it is capped at PERFMAP_MAX_BYTES and PERFMAP_MAX_ENTRIES. JITs only append, and
 * code moved by a GC gets a new line at its new address: for an address covered by several
 * lines, the last one written wins. Files are opened as mapfile_open_path() does: no links
 * followed, never blocking, regular files only.
 */
#ifndef FLEETSYM_AGENT_PERFMAP_H
#define FLEETSYM_AGENT_PERFMAP_H

#include <stddef.h>
#include <stdint.h>

#define PERFMAP_MAX_PROCS   256
#define PERFMAP_MAX_BYTES   ((size_t)64 << 20)
#define PERFMAP_MAX_ENTRIES (1u << 20)

struct perfmaps;

struct perfmaps_stats {
	uint64_t reads;	  /* perf map files (re)read */
	uint64_t refused; /* not a regular file, or past the caps */
	uint64_t bad_lines;
	uint64_t named; /* lookups answered */
};

int perfmaps_new(struct perfmaps **out) __attribute__((warn_unused_result));

/* The function at IP in PID's JIT code, or NULL. NOW_NS is CLOCK_MONOTONIC. Borrowed until
 * the next call into PM. */
const char *perfmaps_lookup(struct perfmaps *pm, uint32_t pid, uint64_t ip, uint64_t now_ns);

/* PID exited, or exec'd: its table goes. */
void perfmaps_forget(struct perfmaps *pm, uint32_t pid);

/* Parse the perf map text P (LEN bytes) into a fresh table, for lookups with
 * perfmap_table_lookup(); the same parser perfmaps_lookup() uses (exposed for tests and
 * fuzzing). 0, -ENOMEM, -E2BIG past PERFMAP_MAX_ENTRIES. *BAD counts lines that were not
 * "HEX HEX name". */
struct perfmap_table;
int perfmap_table_parse(const char *p, size_t len, struct perfmap_table **out, size_t *bad)
    __attribute__((warn_unused_result));
const char *perfmap_table_lookup(const struct perfmap_table *t, uint64_t ip);
size_t perfmap_table_count(const struct perfmap_table *t);
void perfmap_table_free(struct perfmap_table *t);

void perfmaps_get_stats(const struct perfmaps *pm, struct perfmaps_stats *st);
void perfmaps_free(struct perfmaps *pm);

#endif
