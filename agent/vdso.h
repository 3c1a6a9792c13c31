/*
 * vdso - names for frames in the vDSO. The kernel maps the same vDSO image into every process
 * of a host, so the agent's own copy names everyone's vDSO frames, as kallsyms names kernel
 * frames: its dynamic symbols (functions with a size), from the image in memory, bounded by
 * the [vdso] mapping.
 */
#ifndef FLEETSYM_AGENT_VDSO_H
#define FLEETSYM_AGENT_VDSO_H

#include <stddef.h>
#include <stdint.h>

struct vdso;

/* [START, END) of this process's [vdso] mapping, from /proc/self/maps. 0 or -ENOENT. */
int vdso_self_range(uint64_t *start, uint64_t *end);

/* The function symbols of this process's vDSO. Sets *OUT (free with vdso_free()).
 * -ENOENT without a vDSO, -ERR_BADELF when its image makes no sense, -ENOMEM. */
int vdso_open(struct vdso **out) __attribute__((warn_unused_result));

/* The function at OFF bytes into the vDSO mapping, or NULL. Borrowed until vdso_free(). */
const char *vdso_lookup(const struct vdso *v, uint64_t off);

/* Number of functions (for the agent's stats). */
size_t vdso_count(const struct vdso *v);

void vdso_free(struct vdso *v);

#endif
