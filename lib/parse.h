/*
 * parse - the one reader of durations and sizes, so every option, query argument and
 * selector takes the same units: "--retention 2d", "--negative-ttl 1d" and "step=10s" alike.
 */
#ifndef FLEETSYM_PARSE_H
#define FLEETSYM_PARSE_H

#include <stdint.h>

/* A duration: a non-negative decimal number and one of ms, s, m, h, d, w ("500ms", "10s",
 * "1.5h", "7d", "2w"); a plain number is seconds. Sets *OUT_NS; 0 or -ERR_BADINPUT. */
int parse_duration(const char *s, int64_t *out_ns) __attribute__((warn_unused_result));

/* The same, but the unit is required ("now-1h" in time expressions). */
int parse_duration_unit(const char *s, int64_t *out_ns) __attribute__((warn_unused_result));

/* A size in bytes: a number and an optional k, M, G, T (powers of 1024), then an optional "i"
 * and "B" ("10G", "512MiB", "100k", "1234"). Sets *OUT; 0 or -ERR_BADINPUT. */
int parse_size(const char *s, uint64_t *out) __attribute__((warn_unused_result));

#endif
