/*
 * agg - turns ring-buffer records into a pprof profile: every sample's frames become pprof
 * locations in the mappings that the "Addresses" section of ARCHITECTURE.md describes, every
 * interval the profile is encoded, gzip'd and started over.
 *
 * User frames the kernel resolved to (build ID, file offset) go into one mapping per build ID
 * with memory_start = file_offset = 0, so that the location's address is the file offset.
 * Raw-IP frames are looked up in the process's mappings (procmaps) and keep their virtual
 * address in a mapping with the real start, limit, offset, file name and build ID; those that
 * no mapping covers stay in a mapping named "[unknown]" with no build ID. Kernel frames are
 * named from /proc/kallsyms and live in the mapping "[kernel.kallsyms]". Return addresses
 * (every frame but the innermost of each stack) are decremented by 1 so that they point into
 * the call instruction.
 */
#ifndef FLEETSYM_AGENT_AGG_H
#define FLEETSYM_AGENT_AGG_H

#include "agent/procmaps.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct agg;

/* Zero-init means defaults. */
struct agg_opts {
	unsigned int frequency; /* Hz; the period is 1e9 / frequency ns. 0: 19 */
	bool no_kernel;		/* do not load kallsyms (the BPF side skips kernel stacks) */
	size_t max_bytes;	/* cap on one profile's memory; 0: AGG_DEFAULT_MAX_BYTES */
};

#define AGG_DEFAULT_MAX_BYTES ((size_t)32 << 20)

struct agg_stats {
	uint64_t records;      /* ring-buffer records consumed */
	uint64_t bad_records;  /* malformed (never expected) */
	uint64_t samples;      /* samples added to a profile */
	uint64_t empty;	       /* samples with neither user nor kernel frames: left out */
	uint64_t profile_full; /* samples lost because a profile hit max_bytes */
	uint64_t frames_kernel, frames_kernel_unnamed;
	uint64_t frames_vdso;			 /* named from the agent's own vDSO */
	uint64_t frames_jit;			 /* named from a JIT's /tmp/perf-PID.map */
	uint64_t jit_map_reads, jit_map_refused; /* perf map files read; refused (caps, FIFO) */
	uint64_t frames_buildid;		 /* resolved by the kernel at sample time */
	uint64_t frames_mapped;			 /* raw IP, resolved through /proc/PID/maps */
	uint64_t frames_unresolved;		 /* raw IP that no known mapping covers */
	uint64_t ksyms_reloads;
	size_t ksyms; /* kernel symbols loaded (0: none, see the log) */
};

/* Sets *OUT (free with agg_free()). Logs a warning and goes on without kernel names when
 * /proc/kallsyms is unusable. */
int agg_new(const struct agg_opts *o, struct agg **out) __attribute__((warn_unused_result));
void agg_free(struct agg *a);

/* One ring-buffer record (a struct prof_hdr first). NOW_NS is CLOCK_MONOTONIC. Never fails:
 * what cannot be used is counted. */
int agg_record(struct agg *a, const void *data, size_t size, uint64_t now_ns);

/* Encode the profile gathered so far as gzip'd pprof covering [START_NS, END_NS) (Unix time):
 * sets *OUT (malloc'd, owned by the caller) and *LEN. With RESET the next samples start a new
 * profile; without, they add to this one. Also drops stale caches and reloads kallsyms if
 * modules changed. */
int agg_flush(struct agg *a, int64_t start_ns, int64_t end_ns, bool reset, uint8_t **out,
	      size_t *len) __attribute__((warn_unused_result));

/* Samples in the current profile (distinct stacks x labels) and their count. */
size_t agg_pending(const struct agg *a, uint64_t *nsamples);

void agg_get_stats(const struct agg *a, struct agg_stats *st, struct procmaps_stats *pst);

#endif
