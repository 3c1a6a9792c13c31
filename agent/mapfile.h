/*
 * mapfile - opens the file a process has mapped, for reading its build ID or its CFI, without
 * trusting the process. The agent is privileged; the process may not be: it can rename its
 * mapped file and put a FIFO, a device or a symlink to another file at that path.
 *
 * First /proc/PID/map_files/START-END, the kernel's own link to the mapped file (no path
 * resolution). Else the path from /proc/PID/maps, resolved inside the process's root with
 * openat2(RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS) (on kernels without
 * openat2: openat() from that root with O_NOFOLLOW). Every open is O_NONBLOCK, so a FIFO never
 * blocks, and what was opened must be a regular file with the device and inode that maps
 * shows, or it is closed and refused.
 */
#ifndef FLEETSYM_AGENT_MAPFILE_H
#define FLEETSYM_AGENT_MAPFILE_H

#include <stdint.h>

/* What /proc/PID/maps says of one mapping. */
struct mapfile_id {
	uint64_t start, end;
	const char *path; /* as in maps; may end in " (deleted)" */
	uint32_t dev_major, dev_minor;
	uint64_t ino; /* 0: anonymous or unknown; the identity check is then skipped */
};

/* A read-only fd of the file PID maps at M (the caller closes it). -ENOENT when it cannot be
 * reached (deleted, no path), -ENODEV when it is not a regular file, -ESTALE when it is
 * another file than the one mapped, else -errno from open. */
int mapfile_open(uint32_t pid, const struct mapfile_id *m);

/* PATH (absolute, as PID sees it) opened read-only inside PID's root the same way: no symlinks,
 * non-blocking, a regular file or -ENODEV. For files a process names by convention, such as a
 * JIT's /tmp/perf-PID.map. */
int mapfile_open_path(uint32_t pid, const char *path);

#endif
