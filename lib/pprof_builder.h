/*
 * pprof_builder - assembles a pprof Profile (lib/profile.proto) piece by piece and encodes it.
 *
 * Strings, functions, locations and samples are interned: adding one that is already there
 * returns the existing id (for a sample: adds its values to the existing one), so callers can
 * feed raw events without deduplicating themselves. Mappings are not interned; callers key
 * them (a mapping's limit may grow while the profile is built). Everything lives in a few
 * growable arrays with open-addressing hash indexes, all counted against one byte cap.
 * Encoding goes through the protobuf-c code generated from lib/profile.proto.
 */
#ifndef FLEETSYM_PPROF_BUILDER_H
#define FLEETSYM_PPROF_BUILDER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct pprofb;

/* Default cap on a builder's memory (-E2BIG beyond) and on an encoded profile. */
#define PPROFB_DEFAULT_MAX_BYTES ((size_t)256 << 20)

/* Zero-init means defaults. */
struct pprofb_opts {
	size_t max_bytes; /* cap on the builder's memory; 0: PPROFB_DEFAULT_MAX_BYTES */
};

/* A mapping as callers describe it; strings are copied (NULL is ""). */
struct pprofb_mapping {
	uint64_t memory_start;
	uint64_t memory_limit;
	uint64_t file_offset;
	const char *filename;
	const char *build_id;
	bool has_functions;
	bool has_filenames;
	bool has_line_numbers;
	bool has_inline_frames;
};

/* One Line of a location. */
struct pprofb_line {
	uint64_t function_id;
	int64_t line;
	int64_t column;
};

/* A sample label: a string label when STR is not NULL, else numeric (NUM, NUM_UNIT or NULL). */
struct pprofb_label {
	const char *key;
	const char *str;
	int64_t num;
	const char *num_unit;
};

/* New empty profile (string 0 is ""). OPTS may be NULL. Sets *OUT (free with pprofb_free()). */
int pprofb_new(const struct pprofb_opts *opts, struct pprofb **out)
    __attribute__((warn_unused_result));
void pprofb_free(struct pprofb *b);

/* Intern S; sets *IDX to its string-table index. */
int pprofb_string(struct pprofb *b, const char *s, int64_t *idx)
    __attribute__((warn_unused_result));

/* Append a sample type (before the first sample: every sample has one value per type); at most
 * PPROFB_MAX_TYPES (-E2BIG). */
#define PPROFB_MAX_TYPES 16
int pprofb_add_sample_type(struct pprofb *b, const char *type, const char *unit)
    __attribute__((warn_unused_result));

int pprofb_set_period(struct pprofb *b, const char *type, const char *unit, int64_t period)
    __attribute__((warn_unused_result));
void pprofb_set_time(struct pprofb *b, int64_t time_nanos, int64_t duration_nanos);
int pprofb_add_comment(struct pprofb *b, const char *text) __attribute__((warn_unused_result));

/* Append a mapping; sets *ID (1, 2, ...). */
int pprofb_add_mapping(struct pprofb *b, const struct pprofb_mapping *m, uint64_t *id)
    __attribute__((warn_unused_result));

/* Raise mapping ID's memory_limit to LIMIT if below. -ENOENT for an unknown ID. */
int pprofb_extend_mapping(struct pprofb *b, uint64_t id, uint64_t limit);

/* Intern a function; names may be NULL (""). Sets *ID. */
int pprofb_function(struct pprofb *b, const char *name, const char *system_name,
		    const char *filename, int64_t start_line, uint64_t *id)
    __attribute__((warn_unused_result));

/* Intern a location (MAPPING_ID 0: none; LINES innermost first, N may be 0). Sets *ID. */
int pprofb_location(struct pprofb *b, uint64_t mapping_id, uint64_t address,
		    const struct pprofb_line *lines, size_t n, uint64_t *id)
    __attribute__((warn_unused_result));

/* Add a sample: LOCS leaf first, VALUES one per sample type. A sample with the same locations
 * and the same labels (in the same order) gets VALUES added instead; -ERANGE (and no value
 * changed) when a sum would pass 64 bits. -EINVAL without sample types. */
int pprofb_add_sample(struct pprofb *b, const uint64_t *locs, size_t nlocs, const int64_t *values,
		      const struct pprofb_label *labels, size_t nlabels)
    __attribute__((warn_unused_result));

/* Distinct samples so far, and the sum of value[0] over them. */
size_t pprofb_sample_count(const struct pprofb *b);
int64_t pprofb_value_total(const struct pprofb *b);

/* Encode the profile; sets *OUT (malloc'd, owned by the caller) and *LEN. */
int pprofb_encode(struct pprofb *b, uint8_t **out, size_t *len) __attribute__((warn_unused_result));

/* Gzip IN (N bytes) into *OUT (malloc'd, owned by the caller), at most MAX bytes (-E2BIG). */
int pprofb_gzip(const void *in, size_t n, size_t max, uint8_t **out, size_t *outlen)
    __attribute__((warn_unused_result));

#endif
