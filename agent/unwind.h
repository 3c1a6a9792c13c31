/*
 * unwind - the user-space half of table unwinding: two worker threads that answer the BPF
 * program's table requests (PROF_REC_UNW_NEED) off the sampling path.
 *
 * For a requested file (device, inode as the kernel sees the VMA) it opens the file through
 * /proc/PID/map_files/ (else /proc/PID/root + path), reads its build ID, and looks the table up
 * in a cache keyed by build ID, so that each binary's table is built once (unwtab) and shared
 * by every process and container that maps it. The rows go into the BPF row array (through a
 * mapping of the table's pages only) by a first-fit allocator of row ranges; when the array is
 * full the least recently used tables are evicted (the BPF program stamps a file's entry when
 * it walks through it; an evicted table's entries are deleted, so a later sample asks again).
 * Then the file's entry in unw_files becomes READY. Files without usable CFI become NO_TABLE
 * (frame pointers). The vDSO's table is built at start from the agent's own vDSO.
 */
#ifndef FLEETSYM_AGENT_UNWIND_H
#define FLEETSYM_AGENT_UNWIND_H

#include "bpf/profile.h"

#include <stddef.h>
#include <stdint.h>

struct unwind;

struct unwind_stats {
	uint64_t requests;	   /* table requests received */
	uint64_t requests_dropped; /* the queue was full */
	uint64_t tables;	   /* tables built */
	uint64_t tables_shared;	   /* requests answered from the cache (same build ID) */
	uint64_t tables_failed;	   /* files without usable CFI: frame pointers only */
	uint64_t tables_evicted;   /* evicted for room (--unwind-memory) */
	uint64_t tables_refused;   /* larger than the whole row array */
	uint64_t open_errors;	   /* file could not be opened (process gone): asked again later */
	uint64_t build_us;	   /* time spent building tables */
	uint64_t rows_used, rows_max;
	uint64_t tables_cached;
};

/* Start the worker over the BPF maps ROWS_FD (MAX_ROWS rows, mmap-able) and FILES_FD (both
 * borrowed; they must outlive unwind_free()). Sets *OUT (stop with unwind_free()). */
int unwind_new(int rows_fd, int files_fd, uint32_t max_rows, struct unwind **out)
    __attribute__((warn_unused_result));
/* Stops the workers and frees U. A worker stuck for 2 s in a file that never answers (a hung FUSE
 * or NFS server) is left behind with U, so the agent can still exit. */
void unwind_free(struct unwind *u);

/* Queue a request (a PROF_REC_UNW_NEED record of SIZE bytes). Never blocks on the build. */
void unwind_need(struct unwind *u, const void *rec, size_t size);

void unwind_get_stats(struct unwind *u, struct unwind_stats *st);

#endif
