/*
 * ksyms - kernel function names from /proc/kallsyms, for naming kernel stack frames.
 *
 * Text symbols only, sorted by address; a lookup is one binary search. Reloaded by
 * ksyms_refresh() when /proc/modules changes (modules loaded or unloaded).
 */
#ifndef FLEETSYM_AGENT_KSYMS_H
#define FLEETSYM_AGENT_KSYMS_H

#include <stddef.h>
#include <stdint.h>

struct ksyms;

/* Load /proc/kallsyms. Sets *OUT (free with ksyms_free()). -EPERM when the addresses read as
 * zeros (kptr_restrict: CAP_SYSLOG is missing), -errno when the file cannot be read. */
int ksyms_load(struct ksyms **out) __attribute__((warn_unused_result));
void ksyms_free(struct ksyms *k);

/* Reload *K if /proc/modules changed since it was loaded. 1 if reloaded, 0 if unchanged,
 * negative errno (and *K kept) if reloading failed. */
int ksyms_refresh(struct ksyms **k);

/* The function containing ADDR, or NULL. *MODULE is set to its module ("" for vmlinux).
 * Both strings are borrowed until ksyms_free(). */
const char *ksyms_lookup(const struct ksyms *k, uint64_t addr, const char **module);

size_t ksyms_count(const struct ksyms *k);

#endif
