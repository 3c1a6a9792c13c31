/*
 * cgnames - cgroup v2 ids (what bpf_get_current_cgroup_id() returns: the inode number of the
 * cgroup's directory) to cgroup paths such as "/system.slice/nginx.service".
 *
 * An unknown id is looked up through /proc/PID/cgroup of a process that was in it, checked
 * against the inode of that directory under the cgroup2 mount; failures are remembered for a
 * while so that a busy unknown cgroup costs one lookup per CGNAMES_RETRY_NS.
 */
#ifndef FLEETSYM_AGENT_CGNAMES_H
#define FLEETSYM_AGENT_CGNAMES_H

#include <stddef.h>
#include <stdint.h>

#define CGNAMES_RETRY_NS (5ULL * 1000000000)

struct cgnames;

/* Finds the cgroup2 mount. Sets *OUT (free with cgnames_free()); without cgroup v2 every
 * lookup answers NULL. */
int cgnames_new(struct cgnames **out) __attribute__((warn_unused_result));
void cgnames_free(struct cgnames *c);

/* The path of cgroup ID, PID a process seen in it; NULL if unknown. Borrowed until the next
 * call into C. */
const char *cgnames_name(struct cgnames *c, uint64_t id, uint32_t pid, uint64_t now_ns);

/* The cgroup2 mount point into BUF; -ENOENT without cgroup v2. */
int cgnames_find_root(char *buf, size_t len);

/* The cgroup2 mount point ("" if none), borrowed until cgnames_free(). */
const char *cgnames_root(const struct cgnames *c);

#endif
